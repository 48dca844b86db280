"""Bound a server's temporary files in age and in size: the copies a web framework keeps of what it served.

The app hands :func:`bound_files` the files Gradio made for it (uploads, the copies of photos it showed) every few
minutes: those older than the age limit go, then the oldest go until the rest fit the size limit. It knows nothing of
Gradio, so it is tested on plain files. Settings: ``SEARCH_CACHE_MAX_MINUTES`` and ``SEARCH_CACHE_MAX_MB``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CacheLimits:
    max_age_seconds: float = 3600.0
    max_bytes: int = 500_000_000

    @classmethod
    def from_env(cls) -> CacheLimits:
        d = cls()
        try:
            minutes = float(os.environ.get("SEARCH_CACHE_MAX_MINUTES", d.max_age_seconds / 60))
            megabytes = float(os.environ.get("SEARCH_CACHE_MAX_MB", d.max_bytes / 1e6))
        except ValueError:
            return d
        return cls(max(60.0, 60.0 * minutes), max(1_000_000, int(megabytes * 1e6)))


def delete_file(path: str | os.PathLike) -> bool:
    """Delete ``path`` and, when that leaves it empty, its folder (Gradio gives each file a folder of its own);
    False when it was already gone."""
    path = Path(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    with contextlib.suppress(OSError):  # not empty (another file), or already gone
        path.parent.rmdir()
    return True


def bound_files(files: Iterable[str | os.PathLike], limits: CacheLimits, now: float | None = None) -> list[Path]:
    """Delete the ``files`` older than ``limits.max_age_seconds``, then the oldest until the rest total at most
    ``limits.max_bytes``; returns the deleted ones. Files already gone are skipped. Age is by ``st_ctime``: Gradio
    touches a copy when it hands it out again, so a photo still being shown counts as new."""
    now = time.time() if now is None else now
    alive: list[tuple[float, int, Path]] = []
    for name in set(files):
        path = Path(name)
        try:
            stat = path.stat()
        except OSError:
            continue
        alive.append((stat.st_ctime, stat.st_size, path))
    alive.sort(key=lambda row: row[0])  # oldest first
    deleted = [path for made, _, path in alive if now - made > limits.max_age_seconds and delete_file(path)]
    gone = set(deleted)
    rest = [(size, path) for _, size, path in alive if path not in gone]
    total = sum(size for size, _ in rest)
    for size, path in rest:
        if total <= limits.max_bytes:
            break
        if delete_file(path):
            deleted.append(path)
        total -= size
    return deleted
