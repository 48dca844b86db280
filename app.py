"""semantic-search: the Gradio demo. Search a photo collection, and words, by meaning.

    pip install -r requirements.txt && python app.py        # then open http://127.0.0.1:7860

The page's wiring: :data:`SEARCH_TABS` lists the searches (Image → Image, by ImageNet class, Text → Text,
Image → Tags, Text → Image, and Photo + words: a photo and words in one query), each answered by :mod:`searchcore`
and each also an API endpoint and an MCP tool of its handler's name (the handler's docstring is the tool's
description); "Your photos" gives each browser session or API client a private collection
(:mod:`searchcore.personal`); "Map" draws the collection's map stored in its bundle (:mod:`searchcore.serve.map`).
Which bundle is served and how the engine is loaded: :mod:`searchcore.serve.lifecycle`;
the "Your photos" handlers' work: :mod:`searchcore.serve.my_photos`; Gradio's components, request checks and
errors: :mod:`searchcore.serve.page`.

Importing this module builds nothing: :func:`build_demo` builds the page (``app.demo`` builds it on first use, for
``gradio app.py``), and the settings below can be read without it.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
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


def _photos_folder() -> Path:
    """Where the visitors' photos are kept: inside Gradio's upload folder, so that a gallery serves them from there
    instead of copying them into its cache. Their files are then the only copies, and a cleared or expired photo's
    URL no longer serves it (the folder's name is random, and so is each collection's inside it)."""
    import secrets

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

from searchcore import SearchError, pagetext  # noqa: E402
from searchcore.inputs import check_k_sent  # noqa: E402
from searchcore.pagetext import describe  # noqa: E402 (tests use describe)
from searchcore.serve import map as map_view  # noqa: E402
from searchcore.serve import my_photos, page  # noqa: E402

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


# ---- your photos: a private collection per browser session or API client (searchcore.personal) ----------------------
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


def banner(served: Served) -> str:
    return pagetext.banner(served.engine.info, served.why)


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
@dataclass(frozen=True)
class SearchTab:
    """One of the five search tabs: its inputs (a k slider is added), its button, its results and its examples."""

    id: str  # the tab's id and the search's API name
    title: str  # (its opening line: pagetext.TAB_INTROS[id])
    search: Callable[..., Any]
    inputs: Callable[[], list[Any]]
    button: str
    results: Callable[[], Any]
    k: int
    examples: tuple[str, ...] = ()  # words to click; none: the example photos
    photo_words: bool = False  # its examples are (photo, words) pairs, the collection's joining once it is loaded


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


def _search_tab(tab: SearchTab, photos: list[list[str]]) -> tuple[list[Any], gr.Examples]:
    """Lay out one search tab (inputs and examples on the left, results on the right) and wire its search."""
    with gr.Tab(tab.title, id=tab.id):
        gr.Markdown(pagetext.TAB_INTROS[tab.id])
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                inputs = [*tab.inputs(), page.k_slider(tab.k, MAX_K)]
                go = gr.Button(tab.button, variant="primary")
                samples = (page.photo_word_samples(PHOTO_WORDS_EXAMPLES) if tab.photo_words
                           else [[w] for w in tab.examples] if tab.examples else photos)
                examples = gr.Examples(samples, inputs=inputs[:2 if tab.photo_words else 1],
                                       label="Examples (click one)", api_visibility="private")
            with gr.Column(scale=2):
                results = tab.results()
        typed = [box.submit for box in inputs if isinstance(box, gr.Textbox)]
        gr.on([go.click, *typed], tab.search, inputs=inputs, outputs=results, api_name=tab.id, preprocess=False)
        page.run_example_search(examples, tab.search, inputs, results)
    return inputs, examples


def _my_photos_tab() -> None:
    """"Your photos": a visitor's upload, their searches, tags and clear."""
    with gr.Tab("Your photos", id="my_photos"):
        from searchcore.personal import Limits  # the limits this server is started with

        gr.Markdown(pagetext.my_intro(Limits.from_env()))
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                files = page.files_input()
                status = gr.Markdown("No photos of yours yet.", elem_classes=["my-status"])
                summary = gr.JSON(label="Summary (as the API returns it)", open=False, visible=False)
                clear = gr.Button("Clear my photos", variant="stop")
            with gr.Column(scale=2):
                with gr.Row():
                    query = page.words_input("bird", scale=3)
                    k = page.k_slider(GALLERY_K, MAX_K)
                go = gr.Button("Search my photos", variant="primary")
                with gr.Accordion("Search with a photo, or tag it", open=False):
                    photo = page.image_input("A photo")
                    with gr.Row():
                        similar = gr.Button("Find similar in my photos")
                        tag = gr.Button("Tag this photo")
                    tags = page.words_table("Tags")
                results = page.results_gallery("Your matching photos")
        # its own concurrency group: reading uploads never takes a search's place in the queue
        gr.on([files.upload], add_photos, inputs=[files], outputs=summary, api_name="add_photos", preprocess=False,
              concurrency_limit=MY_INDEXING, concurrency_id="my_photos_indexing", show_progress_on=[status]).then(
            my_photos.status_update, inputs=[summary], outputs=[status, results], api_visibility="private")
        gr.on([go.click, query.submit], search_my_photos, inputs=[query, k], outputs=results,
              api_name="search_my_photos", preprocess=False)
        gr.on([similar.click], similar_my_photos, inputs=[photo, k], outputs=results, api_name="similar_my_photos",
              preprocess=False)
        gr.on([tag.click], tag_image, inputs=[photo, k], outputs=tags, preprocess=False, api_visibility="private")
        gr.on([clear.click], clear_my_photos, outputs=summary, api_name="clear_my_photos").then(
            my_photos.status_update, inputs=[summary], outputs=[status, results], api_visibility="private")


def _map_tab() -> None:
    """"Map": the collection in 2-D by the word space, drawn when the tab is opened; a clicked point's look-alikes."""
    with gr.Tab("Map", id="map") as tab:
        gr.Markdown(map_view.INTRO)
        with gr.Row():
            with gr.Column(scale=3):
                plot = gr.Plot(label="The collection in the word space", elem_id="map-plot")
                note = gr.Markdown("The map appears here once the search engine is ready.", elem_classes=["map-note"])
            with gr.Column(scale=2, min_width=280):
                gr.HTML(map_view.PREVIEW_HTML)
                with gr.Row():
                    photo = gr.Textbox(label="Photo number", placeholder="click a point", max_lines=1, scale=2,
                                       elem_id="map-choice")
                    k = page.k_slider(GALLERY_K, MAX_K)
                go = gr.Button("Find photos like it", variant="primary", elem_id="map-go")
                chosen = gr.Markdown("")
                results = page.results_gallery("Photos that look like it")
        # drawn on opening the tab (not at page load: a few thousand points), so the visitor's latest photos show
        tab.select(draw_map, outputs=[plot, note], api_visibility="private").then(
            None, js=map_view.MAP_JS, api_visibility="private")
        gr.on([go.click, photo.submit], map_similar, inputs=[photo, k], outputs=[results, chosen],
              api_visibility="private")


def build_demo() -> gr.Blocks:
    """The page: an intro and a banner, the five search tabs, "Your photos" and "How it works"."""
    photos = [[p] for p in page.sample_photos(PHOTO_EXAMPLES)]
    with page.SearchBlocks(title="Semantic search: photos and words by meaning") as demo:
        gr.Markdown(pagetext.INTRO, elem_classes=["intro"])
        status = gr.Markdown(pagetext.STARTING, elem_classes=["banner"])
        # where the engine's build shows its progress (the bar would hide the banner's text); gone once it is ready
        building = gr.Markdown("", min_height=56, elem_classes=["building"])
        with gr.Tabs():
            tabs = {tab.id: _search_tab(tab, photos) for tab in SEARCH_TABS}
            _my_photos_tab()
            _map_tab()
            with gr.Tab("How it works", id="about"):
                about = gr.Markdown("The details of the served bundle appear here once the search engine is ready.")
        photo_examples = [tabs[tab.id][1] for tab in SEARCH_TABS if not tab.examples and not tab.photo_words]
        pair_examples = [tabs[tab.id][1] for tab in SEARCH_TABS if tab.photo_words]
        cached_pairs = page.cached_samples(pair_examples[0]) if pair_examples else []
        # the "any photo" examples, as Gradio cached them at start-up; the collection's photos join them once loaded
        cached = page.cached_samples(photo_examples[0]) if photo_examples else []
        class_dropdown = tabs["similar_images_by_class"][0][1]

        def on_page_load(progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
            """Fill in what needs the engine: the banner, the "How it works" panel, the class list, photo examples."""
            try:
                served = _get_served(progress)
            except Exception as exc:  # shown in the banner; the searches report it too
                message = str(exc) if isinstance(exc, SearchError) else "see the server log"
                # (an update, even gr.skip(), rebuilds a Dataset from its arguments: give it samples Gradio may serve)
                return (f"**The search engine could not start:** {message}", gr.Markdown(visible=False), gr.skip(),
                        gr.skip(), *(gr.Dataset(samples=cached) for _ in photo_examples),
                        *(gr.Dataset(samples=cached_pairs) for _ in pair_examples))
            _loader.prepare_images()  # a visitor with a page may search with a photo next
            engine = served.engine
            classes = [f"{i}: {name}" for i, name in enumerate(engine.class_names)]
            samples = [[p] for p in page.collection_photos(engine, N_COLLECTION_EXAMPLES)] + cached
            pairs = page.collection_photo_words(engine, COLLECTION_PHOTO_WORDS) + cached_pairs
            return (banner(served), gr.Markdown(visible=False), describe(engine, served.name),
                    gr.Dropdown(choices=classes), *(gr.Dataset(samples=samples) for _ in photo_examples),
                    *(gr.Dataset(samples=pairs) for _ in pair_examples))

        demo.load(on_page_load, outputs=[status, building, about, class_dropdown,
                                         *(ex.dataset for ex in photo_examples),
                                         *(ex.dataset for ex in pair_examples)],
                  show_progress_on=[building], api_visibility="private", concurrency_limit=None,
                  concurrency_id="page_load")
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
