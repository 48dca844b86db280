"""Read a visitor's upload safely: loose photo files and .zip archives, into named, labelled candidates.

Nothing is decoded here (the backbone's preprocessing decodes each photo once, and refuses a non-image or a corrupt
one there); this module decides which bytes may be read at all:

* a zip entry whose name is absolute, has a drive, or climbs out with ``..`` is refused (zip slip);
* a zip may not unpack to more than the bytes the session has left, nor any entry to more than ``MAX_RATIO`` times
  its compressed size (zip bombs); declared sizes can lie, so every read stops one byte past what is allowed;
* nested zips, folders, macOS resource forks (``__MACOSX/``, ``._name``) are left out, the first two with a reason;
* a zip of class folders (``cats/a.jpg``, ``dogs/b.jpg``, or the same under one top folder) labels each photo with
  its folder's name, as ``build_assets`` reads a folder of class folders; loose files and files at a zip's top
  level have no label.

Every refusal is a :class:`Skipped` with a reason a person can act on; the rest of the upload still goes through.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from ..errors import shorten

#: No zip entry may inflate to more than this many times its compressed size (real photos barely compress).
MAX_RATIO = 100
#: A zip's entries looked at: far more than a collection holds, few enough that a zip of tiny files stays cheap.
MAX_ENTRIES = 5000
ZIP_SUFFIX = ".zip"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


class Candidate(NamedTuple):
    """A file of the upload that may be a photo: its name as the user gave it, its folder label, its bytes."""

    name: str  # the file name (a zip entry: its path inside the zip)
    label: str  # "" when the upload says nothing about what it shows
    data: bytes


class Skipped(NamedTuple):
    name: str
    why: str


class ReadResult(NamedTuple):
    candidates: list[Candidate]
    skipped: list[Skipped]


#: Skipped files an answer lists one by one; the rest are counted, so a zip of thousands of bad entries still gets a
#: short answer.
MAX_SKIPPED_SHOWN = 20


def skipped_summary(skipped: Iterable[Skipped], limit: int = MAX_SKIPPED_SHOWN) -> list[dict[str, str]]:
    """``[{"file": …, "why": …}]`` for the first ``limit`` skipped files (shortened), then one line for the rest."""
    rows = list(skipped)
    shown = [{"file": shorten(s.name, 80), "why": shorten(s.why, 200)} for s in rows[:limit]]
    if len(rows) > limit:
        shown.append({"file": f"{len(rows) - limit} more files", "why": "skipped too; only the first "
                      f"{limit} are listed."})
    return shown


def _unsafe(name: str) -> bool:
    """A zip entry name that could write or read outside the folder it is unpacked into."""
    path = PurePosixPath(name.replace("\\", "/"))
    return (path.is_absolute() or name.startswith(("/", "\\")) or ".." in path.parts
            or (len(name) > 1 and name[1] == ":"))


def _hidden(parts: tuple[str, ...]) -> bool:
    return parts[0] == "__MACOSX" or parts[-1].startswith(".")


def _labels(folders: list[tuple[str, ...]]) -> list[str]:
    """Each entry's class folder: its parent folder, after stripping folders that every entry shares.

    ``trip/a.jpg, trip/b.jpg`` gives no labels (one wrapping folder says nothing); ``photos/cats/a.jpg,
    photos/dogs/b.jpg`` gives ``cats`` and ``dogs``.
    """
    while folders and all(folders) and len({f[0] for f in folders}) == 1:
        folders = [f[1:] for f in folders]
    return [f[-1] if f else "" for f in folders]


def read_zip(path: str | os.PathLike, budget: int, shown: str | None = None) -> ReadResult:
    """The photos of a zip file, at most ``budget`` bytes uncompressed in all; ``shown`` names it in messages."""
    shown = shown or Path(path).name
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return ReadResult([], [Skipped(shown, f"not a readable zip file ({type(exc).__name__}); zip it again.")])
    kept, skipped = [], []
    with archive:
        entries = []
        listing = archive.infolist()
        if len(listing) > MAX_ENTRIES:
            skipped.append(Skipped(shown, f"holds {len(listing)} files; only the first {MAX_ENTRIES} are looked at."))
        for info in listing[:MAX_ENTRIES]:
            name = info.filename
            if info.is_dir():
                continue
            if _unsafe(name):
                skipped.append(Skipped(f"{shown}: {name}", "refused: the name leaves the zip's folder (an absolute "
                                                           "path or '..'); zip the photos from their own folder."))
                continue
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if _hidden(parts):
                continue
            suffix = PurePosixPath(parts[-1]).suffix.lower()
            if suffix == ZIP_SUFFIX:
                skipped.append(Skipped(f"{shown}: {name}", "a zip inside a zip is not opened; upload it on its own."))
                continue
            if suffix not in IMAGE_SUFFIXES:
                skipped.append(Skipped(f"{shown}: {name}", f"not a photo ({suffix or 'no extension'}); upload JPEG, "
                                                           "PNG, WebP, BMP, GIF or TIFF files."))
                continue
            entries.append((info, parts))
        labels = _labels([parts[:-1] for _, parts in entries])
        used = 0
        for (info, parts), label in zip(entries, labels):
            name = f"{shown}: {info.filename}"
            limit = min(budget - used, MAX_RATIO * max(info.compress_size, 1))
            if info.file_size > limit:
                skipped.append(Skipped(name, _too_big(info.file_size, budget - used, info.file_size <= budget - used)))
                continue
            try:
                with archive.open(info) as handle:
                    data = handle.read(limit + 1)  # a lying header cannot make this read more
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
                skipped.append(Skipped(name, f"could not be unpacked ({type(exc).__name__}); zip it again."))
                continue
            if len(data) > limit:  # the header lied about the size
                skipped.append(Skipped(name, _too_big(len(data), budget - used, len(data) <= budget - used)))
                continue
            used += len(data)
            kept.append(Candidate(parts[-1], label, data))
    return ReadResult(kept, skipped)


def _too_big(size: int, left: int, ratio: bool = False) -> str:
    if ratio:
        return (f"refused: it would unpack to {size / 1e6:.1f} MB, more than {MAX_RATIO}× its packed size (a zip "
                "bomb?); zip the photos themselves.")
    return (f"refused: {size / 1e6:.1f} MB, more than your collection has room for ({max(left, 0) / 1e6:.1f} MB "
            "left). Clear your photos or upload fewer or smaller ones.")


def read_uploads(paths: Iterable[tuple[str | os.PathLike, str]], budget: int) -> ReadResult:
    """Candidates from uploaded files, given as (path on the server, the name the user gave it).

    A ``.zip`` is opened (:func:`read_zip`); any other file is a candidate photo, unlabelled. At most ``budget``
    bytes are read in all; what does not fit is skipped with a reason.
    """
    kept: list[Candidate] = []
    skipped: list[Skipped] = []
    used = 0
    for path, shown in paths:
        path = Path(path)
        try:
            size = path.stat().st_size
        except OSError:
            skipped.append(Skipped(shown, "the upload did not arrive; upload it again."))
            continue
        if shown.lower().endswith(ZIP_SUFFIX):
            result = read_zip(path, budget - used, shown)
            kept += result.candidates
            skipped += result.skipped
            used += sum(len(c.data) for c in result.candidates)
            continue
        if size > budget - used:
            skipped.append(Skipped(shown, _too_big(size, budget - used)))
            continue
        kept.append(Candidate(shown, "", path.read_bytes()))
        used += size
    return ReadResult(kept, skipped)
