"""The asset bundle: one self-describing folder per collection, the same on disk and in a Hub dataset repo.

Layout (``BUNDLE_FORMAT`` 2)::

    manifest.json            format, backbone spec, word-vector source, dims, counts, sha256 + size of every file
    items.jsonl              one item per line: id, path (under images/), label, caption
    features.npy             (count, feature_dim) float32 penultimate features (float16 if the manifest says so)
    logits.npy               (count, num_classes) float32 ImageNet logits (ConSE and class re-weighting use them)
    images/                  the photos
    indexes/NAME.hnsw|json   images (features), semantic (images in word space: the head's, else ConSE's),
                             conse (images in word space by ConSE), words (Text→Text), tags (the tag phrases);
                             with ``shard_size`` in the manifest the photo indexes are sharded instead:
                             NAME.json + NAME-00000.hnsw|json, … (see searchcore.shards); the word-space ones
                             list near-copies under one node, in NAME.copies.npz (see searchcore.copies); with a
                             head, joint: the head's and ConSE's rows side by side (Text → Image's mixed cosine)
    tags.json                the tag vocabulary: phrases in index order, each ImageNet class's own and broader tag
    semantic.npy, conse.npy  the semantic and conse indexes' rows, for re-ranking
    postings.npz             with a head: per word, every photo the word signals (class hierarchy, exemplars, word
                             classifier) give a score, with its best-first order (searchcore.postings); Text → Image
                             reads them, memory-mapped
    layout.npz               the map (searchcore.layout): at most 5,000 photos in 2-D by their semantic rows, and the
                             words of its regions; a bundle without it loads (its map is missing)
    head/                    optional trained DeViSE head (never in a CLIP bundle): config.json, model.safetensors,
                             README.md; with
                             measured/, the head the figures were measured with when the served one saw every photo

:func:`open_bundle` refuses a bundle whose files disagree with the manifest (missing, truncated or altered files,
wrong dims or counts) with a :class:`BundleError` that names the file and says how to rebuild it. The manifest is
always written last, so a bundle is either complete or refused.

A CLIP bundle (``"space": "clip"`` in the manifest, backbone ``clip:…``; :mod:`searchcore.models.clip`) has the same
files: features are CLIP image embeddings, logits CLIP's zero-shot ImageNet logits, the semantic index holds the
image embeddings again (Text → Image searches them with CLIP text embeddings) and the tags index the tag phrases'
CLIP text embeddings; words and conse stay in word space. Bundles without the field read as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import storage
from .collection import Item
from .errors import AssetSourceError, BundleError
from .hub import download, is_repo_id
from .index import VectorIndex
from .layout import Layout
from .models.tagging import TagVocabulary
from .postings import PartTables
from .shards import ShardedIndex, load_index

BUNDLE_FORMAT = 2  # 2: tags.json (a visual tag vocabulary) and the conse index
WORD_VOCAB = 100_000  # Text→Text searches the 100k most frequent alphabetic words
CONSE_TOP_T = 10
MANIFEST = "manifest.json"
ITEMS = "items.jsonl"
FEATURES = "features.npy"
LOGITS = "logits.npy"
IMAGES = "images"
INDEXES = "indexes"
HEAD = "head"
TAGS = "tags.json"
SEMANTIC = "semantic.npy"  # the semantic index's rows (unit), for re-ranking: the index's own copy is slow to read
CONSE = "conse.npy"  # the conse index's rows (unit), likewise
POSTINGS = "postings.npz"  # the word signals' tables (searchcore.postings), in a bundle with a head
LAYOUT = "layout.npz"  # the collection's map (searchcore.layout)
MEASURED = "measured"  # head/measured/: the head the recorded figures describe, when the served one saw every photo
INDEX_NAMES = ("images", "semantic", "conse", "words", "tags")
#: a bundle with a trained head: the head's and ConSE's rows side by side, for Text → Image's mixed cosine
JOINT = "joint"
REBUILD = "Rebuild it with: python -m training.build_assets --collection ... --out {root}"


def caption_weight(manifest: dict[str, Any]) -> float:
    """The captions' share in the targets the bundle's head was trained on (the training default without one)."""
    from .models.fit import TrainConfig

    config = manifest.get("training", {}).get("config", {}) if isinstance(manifest.get("training"), dict) else {}
    return float(config.get("caption_weight", TrainConfig.caption_weight))


def is_clip(manifest: dict[str, Any]) -> bool:
    """Whether a manifest describes a CLIP bundle (``"space": "clip"``); bundles without the field are DeViSE's."""
    return manifest.get("space") == "clip"


def rebuild_hint(root: Path) -> str:
    return REBUILD.format(root=root)


def resolve(source: str | Path) -> Path:
    """A local bundle folder, or a Hub dataset repo id (``user/repo``) downloaded with ``snapshot_download``."""
    text = str(source).strip()
    if not text:
        raise AssetSourceError("No bundle named: pass a local bundle folder or a Hub dataset repo id.")
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if is_repo_id(text) and not path.exists():
        return download(text, "the bundle", "pass a local bundle folder", repo_type="dataset")
    raise AssetSourceError(f"No bundle at {text!r}: pass a local bundle folder or a Hub dataset repo id like "
                           "'user/my-photos-bundle'.")


def read_items(path: Path) -> list[Item]:
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                items.append(Item(int(row["id"]), row["path"], row["label"], row.get("caption", ""),
                                  tuple(row.get("captions", ()))))
            except (ValueError, KeyError, TypeError) as exc:
                raise BundleError(f"line {n} is not a valid item ({exc}).", path, rebuild_hint(path.parent)) from exc
    return items


def write_items(path: Path, items: list[Item]) -> None:
    storage.write_text(path, "".join(json.dumps(item._asdict(), ensure_ascii=False) + "\n" for item in items))


def data_files(root: Path) -> list[Path]:
    """Every file the manifest vouches for (all but the manifest itself and the photos, which are listed by count)."""
    files = [root / ITEMS, root / FEATURES, root / LOGITS, root / TAGS, root / SEMANTIC, root / CONSE, root / POSTINGS,
             root / LAYOUT]
    files += sorted((root / INDEXES).glob("*.hnsw")) + sorted((root / INDEXES).glob("*.json"))
    for folder in (root / HEAD, root / HEAD / MEASURED):
        if folder.is_dir():
            files += sorted(p for p in folder.iterdir() if p.suffix in (".json", ".safetensors"))
    return [f for f in files if f.is_file()]


def write_manifest(root: Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Record checksums of every data file, then write manifest.json atomically (always the last write)."""
    files = {p.relative_to(root).as_posix(): {"sha256": storage.sha256(p), "bytes": p.stat().st_size}
             for p in data_files(root)}
    manifest = {"format": BUNDLE_FORMAT, **fields, "files": files}
    storage.write_json(root / MANIFEST, manifest)
    return manifest


def _load_npy(path: Path, shape: tuple[int, int], root: Path) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise BundleError(f"cannot be read as a numpy array ({exc}).", path, rebuild_hint(root)) from exc
    if tuple(array.shape) != shape:
        raise BundleError(f"has shape {tuple(array.shape)} but the manifest says {shape}.", path, rebuild_hint(root))
    return np.asarray(array, dtype=np.float32)


@dataclass
class Bundle:
    """A verified bundle in memory: manifest, items, features, logits and the hnswlib indexes."""

    root: Path
    manifest: dict[str, Any]
    items: list[Item]
    features: np.ndarray
    logits: np.ndarray
    indexes: dict[str, VectorIndex | ShardedIndex]
    tags: TagVocabulary
    tables: PartTables = field(default_factory=PartTables)  # the word signals' tables; empty when it has none
    rows: dict[str, np.ndarray] = field(default_factory=dict)  # "semantic", "conse": the indexes' rows
    layout: Layout | None = None  # the map (layout.npz); None in a bundle built before it existed

    def vectors(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` of the ``name`` index ("semantic" or "conse"), from the bundle's arrays where it has them."""
        rows = self.rows.get(name)
        if rows is None:
            return self.indexes[name].get(ids)
        return np.asarray(np.take(rows, ids, axis=0), np.float32)  # np.take: faster than rows[ids] on many rows

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.root.name))

    @property
    def head_dir(self) -> Path | None:
        folder = self.root / HEAD
        return folder if (folder / "config.json").is_file() else None

    def image_path(self, item: Item) -> Path:
        return self.root / IMAGES / item.path


def verify(root: Path, check_sums: bool = True) -> dict[str, Any]:
    """Check the manifest against the files on disk; return the manifest or raise :class:`BundleError`."""
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError("no manifest.json: this folder is not a bundle, or its build did not finish.", root,
                          rebuild_hint(root))
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BundleError(f"is not valid JSON ({exc}).", manifest_path, rebuild_hint(root)) from exc
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"has format {manifest.get('format')!r}; this version reads format {BUNDLE_FORMAT}.",
                          manifest_path, rebuild_hint(root))
    stamps = _read_stamps(root) if check_sums else {}
    checked = {}
    for rel, expected in manifest.get("files", {}).items():
        path = root / rel
        if not path.is_file():
            raise BundleError("is missing.", path, rebuild_hint(root))
        stat = path.stat()
        if stat.st_size != expected["bytes"]:
            raise BundleError(f"is {stat.st_size} bytes but the manifest says {expected['bytes']} (truncated or "
                              "replaced).", path, rebuild_hint(root))
        stamp = [stat.st_size, stat.st_mtime_ns, expected["sha256"]]
        if check_sums and stamps.get(rel) != stamp and storage.sha256(path) != expected["sha256"]:
            raise BundleError("does not match its checksum in manifest.json (the file was changed or damaged).", path,
                              rebuild_hint(root))
        checked[rel] = stamp
    if check_sums and checked != stamps:
        _write_stamps(root, checked)
    return manifest


def _stamps_path(root: Path) -> Path:
    key = hashlib.sha256(str(root.resolve()).encode("utf-8")).hexdigest()[:32]
    return storage.cache_dir() / "verified" / f"{key}.json"


def _read_stamps(root: Path) -> dict[str, Any]:
    """The files of ``root`` whose checksums were verified on this machine, by size and modification time: a
    bundle's gigabytes are hashed once, not at every start (a file that changes since is hashed again)."""
    try:
        stamps = json.loads(_stamps_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def _write_stamps(root: Path, stamps: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # a cache that cannot be written only means hashing again next time
        storage.write_json(_stamps_path(root), stamps)


def open_bundle(source: str | Path, check_sums: bool = True) -> Bundle:
    """Resolve, verify and load a bundle (indexes included)."""
    root = resolve(source)
    manifest = verify(root, check_sums)
    count, feature_dim = int(manifest["count"]), int(manifest["feature_dim"])
    items = read_items(root / ITEMS)
    if len(items) != count or [it.id for it in items] != list(range(count)):
        raise BundleError(f"lists {len(items)} items with ids that are not 0..{count - 1}; the manifest says {count}.",
                          root / ITEMS, rebuild_hint(root))
    features = _load_npy(root / FEATURES, (count, feature_dim), root)
    logits = _load_npy(root / LOGITS, (count, int(manifest["num_classes"])), root)
    word_dim = int(manifest["word_dim"])
    text_dim = feature_dim if is_clip(manifest) else word_dim  # a CLIP bundle's photos and tags share CLIP's space
    expected_dims = {"images": feature_dim, "semantic": text_dim, "conse": word_dim, "words": word_dim,
                     "tags": text_dim}
    indexes = {}
    for name in INDEX_NAMES:
        index = load_index(root / INDEXES / name)
        if index.dim != expected_dims[name]:
            raise BundleError(f"has dimension {index.dim} but the manifest says {expected_dims[name]}.",
                              root / INDEXES / f"{name}.json", rebuild_hint(root))
        if name in ("images", "semantic", "conse") and len(index) != count:
            raise BundleError(f"holds {len(index)} items but the bundle has {count}.",
                              root / INDEXES / f"{name}.json", rebuild_hint(root))
        indexes[name] = index
    tags = _load_tags(root / TAGS, root, len(indexes["tags"]))
    listed = manifest.get("files", {})  # only files the manifest vouches for (and verify checked) are read
    # in memory (a 50-d row per photo): Text → Image reads thousands of scattered rows per query, which a memory
    # map serves several times slower
    rows = {name: np.load(root / file) for name, file in (("semantic", SEMANTIC), ("conse", CONSE)) if file in listed}
    for name, array in rows.items():
        if array.shape != (count, indexes[name].dim):
            raise BundleError(f"has shape {array.shape} but the {name} index holds {count} × {indexes[name].dim}.",
                              root / (SEMANTIC if name == "semantic" else CONSE), rebuild_hint(root))
    if f"{INDEXES}/{JOINT}.json" in listed:
        index = load_index(root / INDEXES / JOINT)
        if (index.dim, len(index)) != (text_dim + word_dim, count):
            raise BundleError(f"holds {len(index)} × {index.dim} but the bundle has {count} photos × "
                              f"{text_dim + word_dim}.", root / INDEXES / f"{JOINT}.json", rebuild_hint(root))
        indexes[JOINT] = index
    tables = _load_tables(root / POSTINGS, root, count) if POSTINGS in listed else PartTables()
    layout = _load_layout(root / LAYOUT, root, count) if LAYOUT in listed else None
    return Bundle(root, manifest, items, features, logits, indexes, tags, tables, rows, layout)


def _load_layout(path: Path, root: Path, count: int) -> Layout:
    import zipfile

    from . import layout

    try:
        return layout.load(path, count)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise BundleError(f"cannot be read as the collection's map ({exc}).", path, rebuild_hint(root)) from exc


def _load_tables(path: Path, root: Path, count: int) -> PartTables:
    import zipfile

    try:
        tables = PartTables.load(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise BundleError(f"cannot be read as the word signals' tables ({exc}).", path, rebuild_hint(root)) from exc
    for table in tables:
        if table is None or not table.entries:
            continue
        # each list is in photo-id order: its first and last entries bound it (no pass over every entry at load)
        starts, ends = table.offsets[:-1], table.offsets[1:]
        nonempty = ends > starts
        if table.ids[starts[nonempty]].min() < 0 or table.ids[ends[nonempty] - 1].max() >= count:
            raise BundleError(f"names photos outside the bundle's {count}.", path, rebuild_hint(root))
    return tables


def _load_tags(path: Path, root: Path, count: int) -> TagVocabulary:
    try:
        tags = TagVocabulary.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"cannot be read as the tag vocabulary ({exc}).", path, rebuild_hint(root)) from exc
    if len(tags.phrases) != count:
        raise BundleError(f"lists {len(tags.phrases)} tags but the tags index holds {count}.", path, rebuild_hint(root))
    return tags
