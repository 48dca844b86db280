"""Bring an existing bundle up to date with its photo folder, extracting only the photos that are new or changed.

The new bundle is written by :func:`searchcore.build.write.write_bundle` into a staging folder beside the bundle
(``.NAME.update``), from the kept photos' stored features and the new photos' fresh ones, then swapped in by
renaming. Until that rename the old bundle stays complete and servable; an interrupted update resumes from the
staging folder's ``.extract`` chunks when it is run again. A trained head is kept: its weights still map features
to word space, so the semantic indexes are rebuilt with it (retrain it to measure it on the new photos). Its figures
were measured on the old photos, so the manifest and the model card drop them, and the card says it was not
measured again. The manifest's build times are the update's own (what it extracted, the indexes it built).
"""

from __future__ import annotations

import filecmp
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .. import bundle as B
from .. import storage
from ..collection import Collection, Item
from ..models.backbone import Backbone, Features
from ..models.backbones import load_backbone
from ..models.clip import tag_embedder
from ..models.head import DeViSEHead, load_head
from ..models.words import load_word_vectors
from .card import write_kept_card
from .extract import clear, extract_collection
from .write import write_bundle

Report = Callable[[float, str], None]
#: Manifest fields that describe how a kept head is served; its measured figures describe the old photos, so they go.
KEPT_HEAD_FIELDS = ("serving",)
#: The head's files that describe its measured figures (the card is written anew, and ``measured/`` is the head the
#: figures were measured with): not carried over.
HEAD_FIGURES = ("README.md", "training.png", B.MEASURED)
#: The build record's times, which describe the run that wrote the bundle: an update records its own.
BUILD_TIMES = ("extract_seconds", "images_per_second", "index_seconds")


class Changes(NamedTuple):
    """How a collection differs from a bundle: items by relative path."""

    kept: dict[str, int]  # path → row in the bundle's features
    added: list[Item]
    changed: list[Item]
    removed: list[str]


def _quiet(_fraction: float, _message: str) -> None:
    pass


def staging_dir(root: Path) -> Path:
    """Where an update of ``root`` is written before it is swapped in (beside it: a rename stays on one disk)."""
    return root.parent / f".{root.name}.update"


def _trash_dir(root: Path) -> Path:
    return root.parent / f".{root.name}.old"


def recover_swap(root: str | Path) -> None:
    """Finish a swap that was interrupted between its two renames, so ``root`` is a bundle again.

    The old bundle sits in the trash folder then; the staged one is taken if it is complete, else the old one returns.
    """
    root = Path(root).resolve()
    trash, staging = _trash_dir(root), staging_dir(root)
    if root.exists() or not trash.is_dir():
        return
    staged_complete = (staging / B.MANIFEST).is_file() and not (staging / ".extract").exists()
    (staging if staged_complete else trash).rename(root)


def diff(bundle: B.Bundle, collection: Collection) -> Changes:
    """Compare photo by photo: same path and same bytes is kept; a new path is added; other bytes is changed."""
    old = {item.path: item.id for item in bundle.items}
    kept, added, changed = {}, [], []
    for item in collection.items:
        row = old.get(item.path)
        if row is None:
            added.append(item)
        elif _same_photo(bundle.image_path(bundle.items[row]), collection.path(item)):
            kept[item.path] = row
        else:
            changed.append(item)
    listed = {item.path for item in collection.items}
    return Changes(kept, added, changed, [path for path in old if path not in listed])


def _same_photo(stored: Path, source: Path) -> bool:
    # the bundle's copy has its own mtime (copyfile), so sizes first, then the bytes: cheap next to the backbone
    return stored.is_file() and stored.stat().st_size == source.stat().st_size and filecmp.cmp(stored, source, False)


def _extract_new(collection: Collection, fresh: list[Item], staging: Path, backbone: Backbone, report: Report
                 ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[tuple[Item, str]]]:
    """Features of the new and changed photos, resumably under ``staging/.extract``; returns (by path, skipped)."""
    if not fresh:
        return {}, []
    sub = Collection(collection.name, collection.root, [it._replace(id=i) for i, it in enumerate(fresh)])
    extraction = extract_collection(backbone, sub, staging,
                                    progress=lambda d, n: report(0.05 + 0.75 * d / max(n, 1), f"features {d}/{n}"))
    rows = {item.path: (extraction.features.features[i], extraction.features.logits[i])
            for i, item in enumerate(extraction.collection.items)}
    return rows, extraction.skipped


def _assemble(bundle: B.Bundle, collection: Collection, changes: Changes,
              fresh: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[Collection, Features]:
    """The updated items in the collection's order, with stored rows for kept photos and fresh rows for the rest."""
    items, features, logits = [], [], []
    for item in collection.items:
        if item.path in changes.kept:
            row = changes.kept[item.path]
            feature, logit = bundle.features[row], bundle.logits[row]
        elif item.path in fresh:
            feature, logit = fresh[item.path]
        else:
            continue  # unreadable: skipped, as a full build skips it
        items.append(item._replace(id=len(items)))
        features.append(feature)
        logits.append(logit)
    feats = Features(np.asarray(features, np.float32).reshape(len(items), bundle.features.shape[1]),
                     np.asarray(logits, np.float32).reshape(len(items), bundle.logits.shape[1]))
    return Collection(collection.name, collection.root, items), feats


def _empty_staging(staging: Path) -> None:
    """Remove what an interrupted write left in the staging folder, keeping the extraction chunks."""
    staging.mkdir(parents=True, exist_ok=True)
    for path in staging.iterdir():
        if path.name != ".extract":
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _swap(root: Path, staging: Path) -> None:
    """Put the staged bundle in place of the old one: two renames, recoverable by :func:`recover_swap`."""
    trash = _trash_dir(root)
    shutil.rmtree(trash, ignore_errors=True)
    root.rename(trash)
    staging.rename(root)
    shutil.rmtree(trash, ignore_errors=True)


def update_bundle(root: str | Path, collection: Collection, *, report: Report = _quiet, command: str = ""
                  ) -> dict[str, Any]:
    """Update the bundle at ``root`` to ``collection``'s photos; return counts (added, changed, removed, kept)."""
    started = time.perf_counter()
    root = Path(root).resolve()  # "." or "bundle/" still name the folder the staging and trash folders go beside
    recover_swap(root)
    bundle = B.open_bundle(root)
    manifest = bundle.manifest
    changes = diff(bundle, collection)
    report(0.0, f"{len(changes.added)} new, {len(changes.changed)} changed, {len(changes.removed)} removed photos")
    staging = staging_dir(root)
    staging.mkdir(exist_ok=True)
    backbone = load_backbone(manifest["backbone"])
    extract_started = time.perf_counter()
    fresh, skipped = _extract_new(collection, changes.added + changes.changed, staging, backbone, report)
    extract_seconds = time.perf_counter() - extract_started
    updated, feats = _assemble(bundle, collection, changes, fresh)
    report(0.85, "building indexes")
    _empty_staging(staging)
    _stage_word_index(root, staging)
    head = _stage_head(bundle, staging)
    counts = {"added": len(changes.added), "changed": len(changes.changed), "removed": len(changes.removed),
              "kept": len(changes.kept), "skipped": [{"path": it.path, "why": why} for it, why in skipped]}
    info = _build_info(manifest, collection, counts, command, len(fresh), extract_seconds)
    words = load_word_vectors(manifest["words"])
    write_bundle(staging, updated, feats, manifest["backbone"], backbone.class_names, words, head=head,
                 word_vocab=int(manifest.get("word_vocab", B.WORD_VOCAB)),
                 use_wordnet=bool(manifest.get("tag_vocab", {}).get("wordnet", True)), build_info=info,
                 shard_size=manifest.get("shard_size"), float16=bool(manifest.get("float16", False)),
                 embed_tags=tag_embedder(backbone))
    if head is not None:
        _keep_serving(staging, manifest)
        write_kept_card(staging / B.HEAD, manifest.get("training") or {}, info["update"], len(updated))
    clear(staging)
    _swap(root, staging)
    counts["seconds"] = round(time.perf_counter() - started, 3)
    report(1.0, f"bundle updated: {len(updated)} photos")
    return counts


def _build_info(manifest: dict[str, Any], collection: Collection, counts: dict[str, Any], command: str,
                extracted: int, extract_seconds: float) -> dict[str, Any]:
    """The manifest's build record: how the bundle was first built, its source now, and what this update did.

    The first build's times go ("How it works" would show them as this bundle's); the extraction time is this
    update's, over the photos it extracted (none: no time), and write_bundle adds the time of the indexes it builds.
    """
    info = {k: v for k, v in manifest.get("build", {}).items() if k not in BUILD_TIMES}
    if extracted:
        info.update(extract_seconds=round(extract_seconds, 3),
                    images_per_second=round(extracted / max(extract_seconds, 1e-9), 2))
    return {**info, "source": str(collection.root), "skipped": counts["skipped"],
            "update": {"command": command, **{k: v for k, v in counts.items() if k != "skipped"},
                       "extracted": extracted}}


def _stage_word_index(root: Path, staging: Path) -> None:
    """Copy the Text → Text index: it depends on the word vectors only, and write_bundle reuses it when they are the
    same (it checks), instead of building it again over 100,000 words (most of an update of a few photos)."""
    (staging / B.INDEXES).mkdir(parents=True, exist_ok=True)
    for suffix in (".hnsw", ".json"):
        source = (root / B.INDEXES / "words").with_suffix(suffix)
        if source.is_file():
            shutil.copyfile(source, (staging / B.INDEXES / "words").with_suffix(suffix))


def _stage_head(bundle: B.Bundle, staging: Path) -> DeViSEHead | None:
    """Copy the bundle's head into the staging folder (before its manifest is written, which vouches for it), without
    the files of its figures, readable by all (a head written before assets were could be 0700)."""
    if bundle.head_dir is None:
        return None
    shutil.copytree(bundle.head_dir, staging / B.HEAD, ignore=lambda folder, _names: HEAD_FIGURES
                    if Path(folder) == bundle.head_dir else ())
    storage.share_tree(staging / B.HEAD)
    return load_head(staging / B.HEAD)


def _keep_serving(staging: Path, old: dict[str, Any]) -> None:
    """Carry over how the kept head is served; rewrite the manifest (it is still the last write)."""
    fields = {k: v for k, v in B.verify(staging, check_sums=False).items() if k not in ("format", "files")}
    fields.update({k: old[k] for k in KEPT_HEAD_FIELDS if k in old})
    B.write_manifest(staging, fields)
