"""Resumable feature extraction over a whole collection.

Features are computed in chunks, each saved atomically under ``WORK/.extract/`` as soon as it is done, so a
stopped build picks up at the first missing chunk and yields the same features (the backbone runs in eval mode
and chunks are fixed slices of the item list). A plan file records the backbone and the item list; if either
changes, the old chunks are discarded. Unreadable images are skipped and reported, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import storage
from ..collection import Collection, Item
from ..errors import ImageError
from ..images import load_image
from ..models.backbone import Backbone, Features

Progress = Callable[[int, int], None]
#: Items per chunk: the unit of resumption (a stopped build redoes at most one chunk per worker).
CHUNK_SIZE = 64


class Extraction(NamedTuple):
    collection: Collection  # the readable items only, renumbered 0..n-1
    features: Features
    skipped: list[tuple[Item, str]]  # (item, why) for every unreadable image


def _plan(backbone: Backbone, collection: Collection, chunk_size: int) -> dict:
    # path, size and modification time: a photo replaced in place must not keep its old features
    stats = ((it.path, collection.path(it).stat()) for it in collection.items)
    listing = "\n".join(f"{path}\t{st.st_size}\t{st.st_mtime_ns}" for path, st in stats)
    return {"backbone": backbone.spec, "chunk_size": chunk_size, "count": len(collection),
            "items_sha256": hashlib.sha256(listing.encode()).hexdigest()}


def prepare(backbone: Backbone, collection: Collection, work_dir: str | Path, chunk_size: int) -> Path:
    """The chunk folder ``work_dir/.extract`` for this plan, emptied first if its old plan differs; returns it.

    Every extractor (this module's and :mod:`searchcore.build.ray_extract`) goes through here, so their chunks are
    interchangeable: a build stopped under one resumes under the other.
    """
    folder = Path(work_dir) / ".extract"
    plan = _plan(backbone, collection, chunk_size)
    plan_file = folder / "plan.json"
    if plan_file.is_file() and json.loads(plan_file.read_text(encoding="utf-8")) != plan:
        shutil.rmtree(folder)  # other backbone or other photos: old chunks would be wrong
    folder.mkdir(parents=True, exist_ok=True)
    storage.write_json(plan_file, plan)
    return folder


def chunk_starts(collection: Collection, chunk_size: int) -> list[int]:
    """The first item index of every chunk: chunks are fixed slices of the item list."""
    return list(range(0, len(collection), chunk_size))


def chunk_path(folder: Path, start: int) -> Path:
    return folder / f"chunk-{start:07d}.npz"


def extract_collection(
    backbone: Backbone,
    collection: Collection,
    work_dir: str | Path,
    *,
    chunk_size: int = CHUNK_SIZE,
    progress: Progress | None = None,
    stop_after_chunks: int | None = None,
) -> Extraction:
    """Features and logits for every readable image of ``collection``, resuming from ``work_dir/.extract``.

    ``stop_after_chunks`` stops early (raising :class:`InterruptedError`) after computing that many new chunks; it
    exists so that tests and benchmarks can interrupt a build at a known point.
    """
    folder = prepare(backbone, collection, work_dir, chunk_size)
    n = len(collection)
    starts = chunk_starts(collection, chunk_size)
    done = 0
    computed = 0
    for start in starts:
        chunk_file = chunk_path(folder, start)
        items = collection.items[start : start + chunk_size]
        if not chunk_file.is_file():
            if stop_after_chunks is not None and computed >= stop_after_chunks:
                raise InterruptedError(f"stopped after {computed} chunks, as asked")
            _extract_chunk(backbone, collection, items, chunk_file,
                           lambda d, _t, s=done: progress and progress(s + d, n))
            computed += 1
        done += len(items)
        if progress is not None:
            progress(done, n)
    return assemble(collection, folder, starts)


def _extract_chunk(backbone: Backbone, collection: Collection, items: list[Item], chunk_file: Path,
                   progress: Progress) -> None:
    images, ok, errors = [], np.zeros(len(items), bool), [""] * len(items)
    for i, item in enumerate(items):
        try:
            images.append(load_image(collection.path(item)))
            ok[i] = True
        except ImageError as exc:
            errors[i] = str(exc)
    feats = backbone.extract(images, progress=progress) if images else None
    dim, classes = backbone.feature_dim, backbone.num_classes
    features = np.zeros((len(items), dim), np.float32)
    logits = np.zeros((len(items), classes), np.float32)
    if feats is not None:
        features[ok], logits[ok] = feats.features, feats.logits
    write_chunk(chunk_file, features, logits, ok, errors)


def write_chunk(chunk_file: Path, features: np.ndarray, logits: np.ndarray, ok: np.ndarray, errors: list[str]
                ) -> None:
    """Save one chunk atomically: a row per item, zeros (and ``ok`` False, ``errors`` saying why) where unreadable."""
    with storage.atomic_path(chunk_file) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, features=features, logits=logits, ok=ok, errors=np.asarray(errors))


def assemble(collection: Collection, folder: Path, starts: list[int]) -> Extraction:
    """Join the finished chunks into one :class:`Extraction`, in item order, the unreadable items left out."""
    features, logits, oks, errors = [], [], [], []
    for start in starts:
        with np.load(chunk_path(folder, start)) as chunk:
            features.append(chunk["features"])
            logits.append(chunk["logits"])
            oks.append(chunk["ok"])
            errors.extend(str(e) for e in chunk["errors"])
    ok = np.concatenate(oks) if oks else np.zeros(0, bool)
    kept = [it for it, good in zip(collection.items, ok) if good]
    skipped = [(it, err) for it, good, err in zip(collection.items, ok, errors) if not good]
    readable = Collection(collection.name, collection.root, [it._replace(id=i) for i, it in enumerate(kept)])
    return Extraction(readable, Features(np.concatenate(features)[ok], np.concatenate(logits)[ok]), skipped)


def clear(work_dir: str | Path) -> None:
    """Remove the chunk cache once a bundle is complete."""
    shutil.rmtree(Path(work_dir) / ".extract", ignore_errors=True)
