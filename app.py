"""semantic-search: the Gradio demo. Search a photo collection, and words, by meaning.

    pip install -r requirements.txt && python app.py        # then open http://127.0.0.1:7860

The page's wiring: :data:`SEARCH_TABS` lists the searches (Image → Image, by ImageNet class, Text → Text,
Image → Tags, Text → Image, and Photo + words: a photo and words in one query), each answered by :mod:`searchcore`
and each also an API endpoint and an MCP tool of its handler's name (the handler's docstring is the tool's
description); "Your photos" gives each browser session or API client a private collection
(:mod:`searchcore.serve.personal`); "Map" draws the collection's map stored in its bundle (:mod:`searchcore.serve.map`).
Which bundle is served and how the engine is loaded: :mod:`searchcore.serve.lifecycle`; the tabs' layouts:
:mod:`searchcore.serve.tabs`; the "Your photos" handlers' work: :mod:`searchcore.serve.my_photos`; Gradio's
components, request checks and errors: :mod:`searchcore.serve.page`.

Importing this module builds nothing: :func:`build_demo` builds the page (``app.demo`` builds it on first use, for
``gradio app.py``), and the settings below can be read without it.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Nothing leaves the machine unasked: Gradio's analytics and its version check (both phone home at start) are off
# unless the operator turns them on with GRADIO_ANALYTICS_ENABLED=True. Set before Gradio is imported, which reads it.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from searchcore.serve.lifecycle import EngineLoader, Served, build_served, bundle_name  # noqa: F401 (tests use it)

log = logging.getLogger("semantic-search")

MAX_K = 50  # the most results one search returns here (the slider's range; searchcore itself allows more)
GALLERY_K = 12
WORDS_K = 10
MAX_UPLOAD = "20mb"
DEFAULT_CLASS = "284: Siamese cat, Siamese"
# Text → Image examples: words the offline collection has photos for (bench/bench_quality.py shows their top 6)
TEXT_EXAMPLES = ["bird", "fruit + red", "christmas tree", "guitar", "tool", "hat", "2:bird + penguin"]
WORD_EXAMPLES = ["said", "king - man + woman", "ocean", "cat sofa"]
# scikit-image ships a few real photos; they are the "any photo you might upload" examples (not in the collection)
PHOTO_EXAMPLES = ["chelsea.png", "coffee.png", "astronaut.png", "motorcycle_left.png"]
# Photo + words examples (tried on the offline bundle, tests/test_photo_words.py): collection photos by caption, in
# the served collection when it has them (a red apple + green: green apples and a green pepper, the red apple falls
# back; + yellow: a lemon and a pear), then any photo: espresso + red finds red food, the cat alone big cats and a dog
COLLECTION_PHOTO_WORDS = [("A red apple.", "green"), ("A red apple.", "yellow"), ("A yellow flower.", "red")]
PHOTO_WORDS_EXAMPLES = [("coffee.png", "red"), ("chelsea.png", "")]
N_COLLECTION_EXAMPLES = 4
# uploads read and indexed at once across all visitors (their own queue group; searches keep theirs)
MY_INDEXING = max(1, int(os.environ.get("SEARCH_MY_INDEXING", "1")))


_gradio_imported = threading.Event()  # set once this module has imported Gradio (below)
# Gradio asks matplotlib for its backend on every request; a server draws no window, and naming the backend spares
# the first request matplotlib's search for one
os.environ.setdefault("MPLBACKEND", "agg")


def _photos_folder() -> Path:
    """Where the visitors' photos are kept: inside Gradio's upload folder, so that a gallery serves them from there
    instead of copying them into its cache. Their files are then the only copies, and a cleared or expired photo's
    URL no longer serves it (the folder's name is random, and so is each collection's inside it)."""
    import secrets

    # (called on the loader's thread: a warm engine can be ready before the main thread has imported Gradio, and two
    # threads importing it at once deadlock in Python's import locks)
    _gradio_imported.wait()
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()) / f"search-my-photos-{secrets.token_hex(8)}"


def _log_to_terminal() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)  # our progress lines, without every library's INFO chatter


_loader = EngineLoader(functools.partial(build_served, photos_folder=_photos_folder))
if __name__ == "__main__":
    # Load the engine (torch, the bundle) while Gradio is imported and the page built: a warm start answers sooner
    # (docs/benchmarks.md, section 5).
    _log_to_terminal()
    _loader.start()

import gradio as gr  # noqa: E402

_gradio_imported.set()

from searchcore.inputs import check_k_sent  # noqa: E402
from searchcore.serve import map as map_view  # noqa: E402
from searchcore.serve import my_photos, page, pagetext, tabs  # noqa: E402
from searchcore.serve.pagetext import describe  # noqa: E402, F401 (tests use describe)
from searchcore.serve.tabs import SearchTab, banner  # noqa: E402, F401 (tests use banner)

if TYPE_CHECKING:
    from searchcore import SearchEngine

_pages: list[gr.Blocks] = []  # the pages built (one, in a running app): each may serve the collection's photos


# ---- the engine -----------------------------------------------------------------------------------------------------
def _get_served(progress: gr.Progress | None = None) -> Served:
    served = _loader.wait(progress)
    page.allow_folders(_pages, served.folders)
    return served


def get_engine(progress: gr.Progress | None = None) -> SearchEngine:
    """The app's one SearchEngine (built on first call; later calls return it at once)."""
    return _get_served(progress).engine


# ---- the searches (API endpoints and MCP tools; parameter names are the API's) --------------------------------------
# Gradio builds each MCP tool's description from its handler's docstring: the text before "Args:", then one line per
# argument (a line of its own: Gradio reads no continuation lines) and the "Returns:" lines. Written for an assistant
# that has never seen the page. What several of them say is written once, in TOOL_TEXT.
ImagePayload = dict[str, Any] | str | None  # Gradio's file description ({"path": ..., "url": ..., "meta": ...})
Count = int | float | str  # as sent: a slider gives a float, a hand-written API call may send a string

TOOL_TEXT = {
    "AN_IMAGE": "a public http(s) URL or a data:image/png;base64,... URL (JPEG, PNG, WebP).",
    "K": f"a whole number from 1 to {MAX_K}.",
    "CAPTIONED": "each an image URL with the caption 'label · caption · distance 0.123'",
}
# every handler: its docstring filled from TOOL_TEXT, errors made Gradio's, the image network prepared after answering
endpoint = functools.partial(page.endpoint, text=TOOL_TEXT, then=_loader.prepare_images)


def _k(value: Any) -> int:
    """The number of results: a whole number from 1 to MAX_K (the API's limit too, not only the slider's)."""
    return check_k_sent(value, MAX_K)


@endpoint
def similar_images(image: ImagePayload, k: Count,
                   progress: gr.Progress = gr.Progress()) -> list[tuple[str, str]]:  # noqa: B008
    """Find the photos of the collection that look most like a given image (nearest CNN features, cosine distance).

    Any photo works, not only the collection's; a photo of the collection finds itself first (distance 0).

    Args:
        image: the photo to search with: {AN_IMAGE}
        k: how many photos to return, {K}

    Returns:
        the photos, best first, {CAPTIONED}.
    """
    image, k = page.image(image), _k(k)
    return page.gallery(get_engine(progress).similar_images(image, k))


@endpoint
def similar_images_by_class(image: ImagePayload, imagenet_class: int | str | None, k: Count,
                            progress: gr.Progress = gr.Progress()) -> list[tuple[str, str]]:  # noqa: B008
    """Find the photos of the collection that look like a given image as one ImageNet class sees it.

    The CNN's features are weighted by that class's row of its ImageNet classifier, for the photo and the collection,
    so what the class relies on counts most (a cat photo with class 'Siamese cat' ranks cats by cat features).

    Args:
        image: the photo to search with: {AN_IMAGE}
        imagenet_class: one of the 1000 ImageNet classes: an index 0-999 (284), a name ('Siamese cat') or both.
        k: how many photos to return, {K}

    Returns:
        the photos, best first, {CAPTIONED}.
    """
    image, k = page.image(image), _k(k)
    imagenet_class = "" if imagenet_class is None else imagenet_class  # searchcore then explains how to pick one
    return page.gallery(get_engine(progress).similar_images_by_class(image, imagenet_class, k))


@endpoint
def similar_words(query: str, k: Count, progress: gr.Progress = gr.Progress()) -> list[list[Any]]:  # noqa: B008
    """Find the English words nearest in meaning to a word or a combination of words (GloVe word vectors).

    Several words are averaged; '+' and '-' add and subtract ('king - man + woman' gives queen) and '2:cat' weighs.

    Args:
        query: one or more English words, e.g. 'said', 'ocean', 'cat sofa', 'king - man + woman'.
        k: how many words to return, {K}

    Returns:
        a table with the columns word and distance, nearest first (cosine distance: 0 is the same meaning).
    """
    query, k = page.query(query), _k(k)
    return page.table(get_engine(progress).similar_words(query, k))


@endpoint
def tag_image(image: ImagePayload, k: Count, progress: gr.Progress = gr.Progress()) -> list[list[Any]]:  # noqa: B008
    """Describe a photo in English words: the things one can see in it, best first.

    The words come from what the CNN's ImageNet classifier is sure of, the captions of very similar collection
    photos, and the visual words nearest the photo in word space (a trained DeViSE head, or ConSE). Any photo works.

    Args:
        image: the photo to describe: {AN_IMAGE}
        k: how many words to return, {K}

    Returns:
        a table with the columns word and distance, best first (cosine distance between the word and the photo).
    """
    image, k = page.image(image), _k(k)
    return page.table(get_engine(progress).tag_image(image, k))


@endpoint
def search_images(query: str, k: Count, progress: gr.Progress = gr.Progress()) -> list[tuple[str, str]]:  # noqa: B008
    """Find the photos of the collection that match words, even words no photo is captioned with.

    Several words are averaged ('christmas tree'); '+' and '-' add and subtract, '2:bird' weighs a word.

    Args:
        query: one or more English words, e.g. 'bird', 'christmas tree', 'fruit + red', '2:bird + penguin'.
        k: how many photos to return, {K}

    Returns:
        the photos, best first, {CAPTIONED}.
    """
    query, k = page.query(query), _k(k)
    return page.gallery(get_engine(progress).search_images(query, k))


@endpoint
def search_images_by_photo_and_words(image: ImagePayload, query: str | None, k: Count,
                                     progress: gr.Progress = gr.Progress()) -> list[tuple[str, str]]:  # noqa: B008
    """Find the photos of the collection that match a photo and words together: 'this photo, but green'.

    The photo counts as one more word: a photo of a red apple with 'green' finds green apples; '+' and '-' add and
    subtract ('beach - snow'), '2:green' weighs a word. A photo with no words finds photos of the same kind of thing
    (for words with no photo, use search_images; gradio_client may also send no image here).

    Args:
        image: the photo to start from: {AN_IMAGE}
        query: words to add to the photo, e.g. 'green', '2:yellow', 'beach - snow'; an empty text for the photo alone.
        k: how many photos to return, {K}

    Returns:
        the photos, best first, {CAPTIONED}.
    """
    image, query, k = page.optional_image(image), page.query(query), _k(k)
    return page.gallery(get_engine(progress).search_images_by_photo_and_words(image, query, k))


# ---- your photos: a private collection per browser session or API client (searchcore.serve.personal) -----------------
@endpoint
def add_photos(files: list[Any] | None, request: gr.Request,
               progress: gr.Progress = gr.Progress()) -> dict[str, Any]:  # noqa: B008
    """Add photos to your own private collection, which only you can search (it lasts while your session does).

    Loose photos are captioned with their file names; a .zip of class folders (cats/a.jpg, dogs/b.jpg) labels each
    photo with its folder, and with two or more labels a small head is trained on them and measured against ConSE.

    Args:
        files: a list of image files (JPEG, PNG, WebP, BMP, GIF, TIFF) and/or .zip files of photos or class folders.

    Returns:
        a summary: added (how many), skipped (file and why), photos, labels (photos per label), limits, head (figures).
    """
    key = page.visitor(request)  # first: a call that cannot have a collection is refused whatever it sent
    return my_photos.add(key, page.files(files), functools.partial(_get_served, progress), progress)


@endpoint
def search_my_photos(query: str, k: Count, request: gr.Request,
                     progress: gr.Progress = gr.Progress()) -> list[tuple[str, str]]:  # noqa: B008
    """Find photos of your own private collection (added with add_photos) that match words.

    Several words are averaged; '+' and '-' add and subtract, '2:bird' weighs a word.

    Args:
        query: one or more English words, e.g. 'bird', 'red flower', 'dog - cat'.
        k: how many photos to return, {K}

    Returns:
        your photos, best first, {CAPTIONED} (no label: file name).
    """
    key, query, k = page.visitor(request), page.query(query), _k(k)
    with my_photos.using(_get_served(progress), key) as (engine, mine):
        return page.gallery(engine.search_images(query, k, collection=mine))


@endpoint
def similar_my_photos(image: ImagePayload, k: Count, request: gr.Request,
                      progress: gr.Progress = gr.Progress()) -> list[tuple[str, str]]:  # noqa: B008
    """Find the photos of your own private collection (added with add_photos) that look most like a given image.

    Args:
        image: the photo to search with: {AN_IMAGE}
        k: how many photos to return, {K}

    Returns:
        your photos, best first, {CAPTIONED} (no label: file name).
    """
    key, image, k = page.visitor(request), page.image(image), _k(k)
    with my_photos.using(_get_served(progress), key) as (engine, mine):
        return page.gallery(engine.similar_images(my_photos.query_photo(mine, image), k, collection=mine))


@endpoint
def clear_my_photos(request: gr.Request) -> dict[str, Any]:
    """Remove every photo from your own private collection (and the head trained on them).

    Returns:
        a summary: removed (how many photos), photos (now 0).
    """
    key = page.visitor(request)
    return my_photos.clear(_get_served(), key)


def _forget_my_photos(request: gr.Request) -> None:
    """The browser tab closed: its photos go at once (the idle timeout catches the rest)."""
    my_photos.forget(_loader.ready(), request)


# ---- the map: the collection laid out in the word space when its bundle was built (searchcore.layout) --------------
@endpoint
def draw_map(request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[Any, str]:  # noqa: B008
    """The stored map of the collection with the visitor's own photos placed into it, and the line under it."""
    served = _get_served(progress)
    return map_view.draw(served.engine.bundle, my_photos.peek(served, request))


@endpoint
def map_similar(photo: str | None, k: Count, request: gr.Request,
                progress: gr.Progress = gr.Progress()) -> tuple[list[tuple[str, str]], str]:  # noqa: B008
    """Image → Image from the photo chosen on the map (a collection photo's number, or one of the visitor's)."""
    served, k = _get_served(progress), _k(k)
    hits, what = map_view.similar(served.engine, photo, k, my_photos.peek(served, request))
    return page.gallery(hits), what


# ---- the page -------------------------------------------------------------------------------------------------------
SEARCH_TABS = (
    SearchTab("similar_images", "Image → Image", similar_images, lambda: [page.image_input()],
              "Find similar photos", lambda: page.results_gallery("Similar photos"), GALLERY_K),
    SearchTab("similar_images_by_class", "Image → Image by ImageNet class", similar_images_by_class,
              lambda: [page.image_input(), page.class_dropdown(DEFAULT_CLASS)], "Find similar photos for this class",
              lambda: page.results_gallery("Similar photos, as seen by this class"), GALLERY_K),
    SearchTab("similar_words", "Text → Text", similar_words, lambda: [page.words_input("said")],
              "Find similar words", lambda: page.words_table("Similar words"), WORDS_K, tuple(WORD_EXAMPLES)),
    SearchTab("tag_image", "Image → Tags", tag_image, lambda: [page.image_input()],
              "Tag this photo", lambda: page.words_table("Tags"), WORDS_K),
    SearchTab("search_images", "Text → Image", search_images, lambda: [page.words_input("bird")],
              "Search photos", lambda: page.results_gallery("Matching photos"), GALLERY_K, tuple(TEXT_EXAMPLES)),
    # a tab of its own rather than an optional photo on Text → Image: its examples are pairs, and an empty photo box
    # on every word search would read as a required input
    SearchTab("search_images_by_photo_and_words", "Photo + words", search_images_by_photo_and_words,
              lambda: [page.image_input("Your photo (optional)"), page.words_input("green")],
              "Search with the photo and the words", lambda: page.results_gallery("Matching photos"), GALLERY_K,
              photo_words=True),
)


def build_demo() -> gr.Blocks:
    """The page: an intro and a banner, the search tabs, "Your photos", "Map" and "How it works"."""
    from searchcore.serve.personal import Limits  # the limits this server is started with

    photos = [[p] for p in page.sample_photos(PHOTO_EXAMPLES)]
    with page.SearchBlocks(title="Semantic search: photos and words by meaning") as demo:
        gr.Markdown(pagetext.INTRO, elem_classes=["intro"])
        status = gr.Markdown(pagetext.STARTING, elem_classes=["banner"])
        # where the engine's build shows its progress (the bar would hide the banner's text); gone once it is ready
        building = gr.Markdown("", min_height=56, elem_classes=["building"])
        with gr.Tabs():
            searches = {t.id: tabs.search_tab(t, photos, PHOTO_WORDS_EXAMPLES, MAX_K) for t in SEARCH_TABS}
            tabs.my_photos_tab(tabs.MyPhotos(add_photos, search_my_photos, similar_my_photos, tag_image,
                                             clear_my_photos, my_photos.status_update),
                               pagetext.my_intro(Limits.from_env()), GALLERY_K, MAX_K, MY_INDEXING)
            tabs.map_tab(draw_map, map_similar, GALLERY_K, MAX_K)
            with gr.Tab("How it works", id="about"):
                about = gr.Markdown("The details of the served bundle appear here once the search engine is ready.")
        classes = searches["similar_images_by_class"][0][1]  # its choices come with the engine
        views = tabs.EngineViews(status, building, about, classes, tabs.LoadedExamples(SEARCH_TABS, searches))

        def on_page_load(progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
            """Fill in what needs the engine: the banner, the "How it works" panel, the class list, photo examples."""
            try:
                served = _get_served(progress)
            except Exception as exc:  # shown in the banner; the searches report it too
                return views.failed(exc)
            _loader.prepare_images()  # a visitor with a page may search with a photo next
            return views.ready(served, N_COLLECTION_EXAMPLES, COLLECTION_PHOTO_WORDS)

        demo.load(on_page_load, outputs=views.outputs, show_progress_on=[building], api_visibility="private",
                  concurrency_limit=None, concurrency_id="page_load")
        demo.unload(_forget_my_photos)
    # each search endpoint runs up to 4 requests at once (Gradio gives every event its own concurrency group; the
    # engine is thread-safe); a bounded queue refuses floods instead of piling them up
    demo.queue(default_concurrency_limit=4, max_size=64)
    _pages.append(demo)
    return demo


def __getattr__(name: str) -> Any:
    """``app.demo``: the page, built on first use (``gradio app.py`` and Spaces look for a ``demo``)."""
    if name == "demo":
        demo = globals()["demo"] = build_demo()
        return demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    _log_to_terminal()
    _loader.start()  # (begun already when run as a script) the page shows the build's progress
    demo = globals()["demo"] = build_demo()
    # GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are read by Gradio itself. mcp_server: the searches (the named, public
    # endpoints; the page load and example clicks are private) become MCP tools at /gradio_api/mcp/.
    page.launch(demo, lambda: page.gradio_files(demo, _loader.ready()), max_file_size=MAX_UPLOAD, theme=page.theme(),
                css=page.CSS, mcp_server=True)


if __name__ == "__main__":
    main()
