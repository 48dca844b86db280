"""The Gradio side of the app: its components, how results are shown, and what a request may send.

app.py and :mod:`searchcore.serve.tabs` build the page from these parts; here is everything that knows Gradio's ways:

* the components the tabs share (:func:`image_input`, :func:`k_slider`, :func:`results_gallery`, …) and the look;
* results as Gradio shows them (:func:`gallery`, :func:`table`);
* a handler as Gradio serves it (:func:`endpoint`): searchcore's errors become Gradio's (:func:`user_errors`);
* a request's files, images, words and session read the way Gradio delivers them (:func:`image`, :func:`files`,
  :func:`query`, :func:`visitor`), refused with a message a person can act on (:class:`SearchBlocks`);
  searchcore's own checks (:mod:`searchcore.inputs`) do the rest;
* serving: the folders Gradio may serve photos from (:func:`allow_folders`), and its copies of what it served,
  bounded while it runs and deleted when it stops (:func:`launch`).

Importing this module imports Gradio; searchcore itself never does.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import importlib.util
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from searchcore.errors import BadArgumentError, ImageError, SearchError, shorten
from searchcore.inputs import check_query

if TYPE_CHECKING:
    from searchcore import Hit, SearchEngine, WordHit
    from searchcore.serve.lifecycle import Served

log = logging.getLogger("semantic-search")

CSS = """
.intro p { margin-bottom: 0.25em; }
.banner { border-left: 4px solid var(--color-accent); padding-left: 12px; }
"""


def theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="sky")


# ---- results as the page shows them ---------------------------------------------------------------------------------
def gallery(hits: list[Hit]) -> list[tuple[str, str]]:
    """(photo path, caption) pairs; the caption begins with the label (the public contract)."""
    out = []
    for h in hits:
        caption = h.caption.strip()
        parts = [h.label] + ([caption] if caption and caption.lower() != h.label.lower() else [])
        out.append((str(h.path), " · ".join([*parts, f"distance {h.distance:.3f}"])))
    return out


def table(hits: list[WordHit]) -> list[list[Any]]:
    return [[h.word, round(float(h.distance), 4)] for h in hits]


# ---- errors ---------------------------------------------------------------------------------------------------------
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


def endpoint(fn: Callable[..., Any], text: Mapping[str, str], then: Callable[[], Any]) -> Callable[..., Any]:
    """A handler as Gradio serves it: its docstring's ``{NAME}``s filled from ``text`` (the docstring is its MCP
    tool's description), searchcore's errors turned into Gradio's (:func:`user_errors`), and once it has answered,
    ``then()`` (the app builds the image searches' network there: a warm start answers its first search without it)."""
    fn.__doc__ = (fn.__doc__ or "").format_map(text)
    answer = user_errors(fn)

    @functools.wraps(answer)
    def answered(*args: Any, **kwargs: Any) -> Any:
        try:
            return answer(*args, **kwargs)
        finally:
            then()

    return answered


# ---- what a request sent --------------------------------------------------------------------------------------------
# What a caller must send instead of a path on the server (an API call that names one gets this, from Gradio's
# refusal in SearchBlocks or from image()).
SEND_THE_IMAGE = ("Send the image itself, not a path on the server: this server reads only files uploaded to it. From "
                  "Python, pass gradio_client.handle_file('photo.jpg') (it uploads the file); over MCP, a public "
                  "http(s) URL of the image or a data:image/png;base64,... URL.")

SEND_THE_FILES = ("Send the files themselves, not paths or addresses: from Python, gradio_client.handle_file("
                  "'photo.jpg') for each file (it uploads them); on the page, drop them on 'Your photos'. (Over MCP "
                  "your photos are not offered: every assistant's calls share one session there.)")

# Gradio 6.31's MCP server is stateless: every assistant's calls reach the app through one shared client, with one
# Gradio session and no MCP session id, so a collection kept for "the MCP session" would be every assistant's.
MCP_HAS_NO_SESSION = ("Over MCP your photos cannot be kept private: this server's MCP endpoint has no sessions, so a "
                      "collection would be shared with every other assistant. Use the page's 'Your photos' tab, or "
                      "gradio_client from Python (each Client has its own private collection; see the README).")


def image(value: Any) -> str | bytes:
    """The uploaded image as searchcore takes it: the uploaded file's path (or the bytes of a data: URL).

    The search events run with ``preprocess=False`` so that searchcore, not Gradio, opens the file: a corrupt, huge
    or odd image then gets searchcore's message instead of a Gradio processing error. Gradio checks only the files
    it recognises as such (with their ``meta``): a bare ``{"path": ...}`` reaches this function unchecked, so only
    files inside Gradio's upload folder are read, as Gradio itself would allow.
    """
    if isinstance(value, dict):
        if value.get("path"):
            return uploaded(str(value["path"]))
        url = value.get("url") or ""
        if url.startswith("data:") and "," in url:
            try:
                return base64.b64decode(url.split(",", 1)[1], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ImageError("The image sent as a data: URL is not valid base64; upload the file instead.") from exc
    if value is None or value == {}:
        raise ImageError("No image yet: upload a photo (or paste one, or use the webcam), or click an example.")
    raise ImageError("Could not read the uploaded image; upload it again as a JPEG or PNG file.")


def query(value: Any) -> str:
    """The words as sent, refused at once when they are longer than searchcore reads (:func:`check_query`)."""
    return check_query(value if isinstance(value, str) else "" if value is None else str(value))


def optional_image(value: Any) -> str | bytes | None:
    """:func:`image` for a search whose photo may be left out: ``None`` when none was sent."""
    return None if value in (None, {}, "") else image(value)


def uploaded(path: str) -> str:
    """``path`` when it is a file Gradio received (its upload folder, where uploads, fetched URLs and cached examples
    go); anything else on the server is refused, whether it exists or not, so a caller learns nothing about it."""
    from gradio.utils import get_upload_folder

    try:
        Path(path).resolve().relative_to(Path(get_upload_folder()).resolve())
    except (ValueError, OSError):
        raise ImageError(SEND_THE_IMAGE) from None
    return path


def files(value: Any) -> list[tuple[str, str]]:
    """(path on the server, the name the user gave it) of each uploaded file; only Gradio's own uploads are read."""
    if value is None or value == []:
        raise ImageError("No files yet: drop photos (JPEG, PNG, WebP …) or a .zip of photos, or of class folders.")
    out = []
    for one in value if isinstance(value, list) else [value]:
        if isinstance(one, dict) and one.get("path"):
            path = uploaded(str(one["path"]))
            out.append((path, str(one.get("orig_name") or Path(path).name)))
        elif isinstance(one, str) and one:
            out.append((uploaded(one), Path(one).name))
        else:
            raise ImageError(SEND_THE_IMAGE)
    return out


def visitor(request: gr.Request | None) -> str:
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


def refused_image(components: list[Any], inputs: list[Any]) -> str | None:
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


class SearchBlocks(gr.Blocks):
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
            message = refused_image(list(block_fn.inputs), list(inputs or []))
            if message is None:
                raise
            log.info("refused an image sent to %s: %s: %s", block_fn.api_name, type(exc).__name__, exc)
            raise gr.Error(message, title="Cannot search", print_exception=False) from None


# ---- components -----------------------------------------------------------------------------------------------------
def k_slider(value: int, most: int) -> gr.Slider:
    return gr.Slider(1, most, value=value, step=1, label="Results (k)")


def image_input(label: str = "Your photo") -> gr.Image:
    return gr.Image(label=label, type="filepath", sources=["upload", "clipboard", "webcam"], height=280)


def words_input(placeholder: str, **kwargs: Any) -> gr.Textbox:
    return gr.Textbox(label="Words", placeholder=placeholder, max_lines=1, **kwargs)


def results_gallery(label: str) -> gr.Gallery:
    return gr.Gallery(label=label, columns=4, height=620, object_fit="contain", allow_preview=True,
                      elem_classes=["results"])


def words_table(label: str) -> gr.Dataframe:
    return gr.Dataframe(headers=["word", "distance"], datatype=["str", "number"], label=label, interactive=False,
                        column_count=2, elem_classes=["results"])


def class_dropdown(default: str) -> gr.Dropdown:
    """The 1000 ImageNet classes, filtered by typing; any typed index or name is accepted too."""
    dropdown = gr.Dropdown(choices=[default], value=default, allow_custom_value=True, filterable=True,
                           label="ImageNet class", info="Type a name or an index 0–999")
    # A Dropdown documents its API input as one of the choices it was created with (here, before the engine lists
    # them). Say what it takes instead. On this instance, not a subclass: Gradio writes a .pyi beside any subclass.
    dropdown.api_info = lambda: {  # type: ignore[method-assign]
        "anyOf": [{"type": "string"}, {"type": "integer"}],
        "description": "an ImageNet class: an index 0-999, a name ('Siamese cat') or '284: Siamese cat'",
    }
    return dropdown


def inlined(schema: Any, defs: dict[str, Any] | None = None) -> Any:
    """``schema`` with its ``$ref``s to ``$defs`` replaced by what they name."""
    if isinstance(schema, list):
        return [inlined(x, defs) for x in schema]
    if not isinstance(schema, dict):
        return schema
    defs = {**(defs or {}), **schema.get("$defs", {})}
    if isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/$defs/"):
        named = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
        schema = {**named, **{k: v for k, v in schema.items() if k != "$ref"}}
    return {k: inlined(v, defs) for k, v in schema.items() if k != "$defs"}


def files_input() -> gr.File:
    component = gr.File(label="Drop photos or a .zip here", file_count="multiple", type="filepath", height=180,
                        elem_classes=["my-upload"])
    # Gradio's MCP server moves a file list's "$defs" under the parameter, where its "$ref" no longer reaches them,
    # so the MCP SDK refused every add_photos call with a 1,358-character schema error before the app could answer.
    # The same schema, self-contained (on this instance: Gradio writes a .pyi beside any subclass).
    schema = inlined(gr.File.api_info(component))
    component.api_info = lambda: schema  # type: ignore[method-assign]
    return component


def run_example_search(examples: gr.Examples, fn: Callable[..., Any], inputs: list[Any], outputs: Any) -> None:
    """Clicking an example fills the inputs and runs the search (a UI-only event: no extra API endpoint)."""
    examples.load_input_event.then(fn, inputs=inputs, outputs=outputs, preprocess=False, api_visibility="private")


# ---- example photos -------------------------------------------------------------------------------------------------
def sample_photos(names: list[str]) -> list[str]:
    """scikit-image's bundled photos of these names, found without importing it."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return [str(data / name) for name in names if (data / name).is_file()]


def collection_photos(engine: SearchEngine, n: int) -> list[str]:
    """A few photos of the collection, one from each of its largest labels."""
    by_label: dict[str, list[Any]] = {}
    for item in engine.bundle.items:
        by_label.setdefault(item.label, []).append(item)
    biggest = sorted(by_label.values(), key=len, reverse=True)[:n]
    return [str(engine.bundle.image_path(group[0])) for group in biggest]


def photo_word_samples(pairs: Sequence[tuple[str, str]]) -> list[list[str]]:
    """(photo, words) examples whose photo is one of scikit-image's bundled photos (by file name), as samples."""
    found = {Path(path).name: path for path in sample_photos([name for name, _ in pairs])}
    return [[found[name], words] for name, words in pairs if name in found]


def collection_photo_words(engine: SearchEngine, pairs: Sequence[tuple[str, str]]) -> list[list[str]]:
    """(photo, words) examples whose photo is the collection's photo of that caption (``"A red apple."``): those the
    served collection has, in order (another collection may have none)."""
    by_caption = {item.caption: item for item in reversed(engine.bundle.items)}  # the first of a caption wins
    return [[str(engine.bundle.image_path(by_caption[caption])), words] for caption, words in pairs
            if caption in by_caption]


def cached_samples(examples: gr.Examples) -> list[list[str]]:
    """The examples' photos as Gradio cached them at start-up: copies in its own cache, which it may always serve
    (with the rest of each sample as it is: the words of a photo-and-words example)."""
    samples = []
    for sample in examples.dataset.samples or []:
        value = sample[0] if sample else None
        path = value.get("path") if isinstance(value, dict) else value
        if isinstance(path, str) and path:
            samples.append([path, *sample[1:]])
    return samples


# ---- serving: the collection's folders, and Gradio's copies bounded in age and size and gone when it stops ----------
def allow_folders(pages: list[gr.Blocks], folders: Sequence[str]) -> None:
    """Let Gradio copy the collection's photos (and nothing else) into its cache: the galleries show them. Added once
    the engine is served rather than as launch(allowed_paths=...) because the folders are known only once the bundle
    is resolved (a Hub bundle is downloaded first), and because `gradio app.py` (reload mode) launches without the
    app's arguments."""
    for demo in pages:
        demo.allowed_paths.extend(f for f in folders if f not in demo.allowed_paths)


def launch(demo: gr.Blocks, files: Callable[[], list[str]], **kwargs: Any) -> None:
    """``demo.launch(**kwargs)``, keeping Gradio's copies ``files()`` within their limits while it serves
    (:func:`bound_gradio_files`) and deleting them when it stops (the examples, cached, stay)."""
    # a stop (SIGTERM: a Space restarting, a supervisor) closes the server as Ctrl-C does; then Gradio's copies and
    # (atexit) the visitors' photos are deleted. (`gradio app.py` re-runs app.py on a thread, where it cannot.)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    stopping = threading.Event()
    threading.Thread(target=bound_gradio_files, args=(files, stopping), name="gradio-files", daemon=True).start()
    try:
        demo.launch(**kwargs)
    finally:
        stopping.set()
        delete_files(files())


def gradio_files(demo: gr.Blocks, served: Served | None) -> list[str]:
    """The files Gradio made for ``demo`` (uploads, copies of shown photos), less those it must keep (its examples)
    and the visitors' photos (``served``'s store keeps and deletes them)."""
    own = served.photos.root if served is not None and served.photos is not None else None
    keep: set[str] = set()
    for block in demo.blocks.values():
        keep |= set(getattr(block, "keep_in_cache", ()))
    mine = str(own) + os.sep if own is not None else None
    return [f for files in demo.temp_file_sets for f in list(files)
            if f not in keep and not (mine and f.startswith(mine))]


def bound_gradio_files(files: Callable[[], list[str]], stop: threading.Event, every: float = 300.0) -> None:
    """Until ``stop``: every ``every`` s, delete the oldest of ``files()`` past the limits (``$SEARCH_CACHE_MAX_*``)."""
    from searchcore.tempfiles import CacheLimits, bound_files

    limits = CacheLimits.from_env()
    while not stop.wait(every):
        with contextlib.suppress(Exception):  # a sweep that fails (a file in use) tries again next time
            bound_files(files(), limits)


def delete_files(files: list[str]) -> None:
    from searchcore.tempfiles import delete_file

    for path in files:
        delete_file(path)
