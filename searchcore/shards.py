"""Sharded nearest-neighbour indexes: several hnswlib indexes over consecutive id ranges, searched as one.

A collection past one index's memory budget is split into shards of ``shard_size`` items; a query goes to every
shard and the per-shard top k are merged into the global top k (each shard returns its own exact-as-hnswlib best,
so the merged list is what one index over all items would give, up to hnswlib's own approximation).

On disk a sharded index ``NAME`` is a sidecar ``NAME.json`` (the whole index's dim, count, space, … plus
``shard_size`` and ``shards``) and one ordinary index per shard, ``NAME-00000.hnsw|json``, … . With one shard
(``shard_size`` None, or at least the item count) nothing changes: :func:`build_index` returns a plain
:class:`~searchcore.index.VectorIndex`, saved exactly as before, and :func:`load_index` reads either kind.

The shards are independent, so they are built by one function mapped over their slices: ``map_fn`` (default the
builtin, sequential ``map``) may run them in parallel instead, e.g. as Ray tasks
(:func:`searchcore.build.ray_extract.ray_map`); the index that comes back is the same either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from . import storage
from .errors import BadArgumentError, BundleError
from .index import IndexFacts, IndexInfo, Neighbours, VectorIndex, _as_queries, _check_k, copies_path

# how the shards are built: ``map_fn(build_one, slices)`` yields one VectorIndex per slice, in order (builtin ``map``)
Map = Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]]


def shard_base(base: Path, number: int) -> Path:
    return base.with_name(f"{base.name}-{number:05d}")


class ShardedIndex(IndexFacts):
    """Several :class:`VectorIndex` shards, shard ``s`` holding ids ``s*shard_size … (s+1)*shard_size - 1``.

    It answers the same calls as a :class:`VectorIndex` (``query``, ``get``, ``vectors``, ``len``, ``dim``,
    ``ef``, ``save``), so the engine uses either without knowing which.
    """

    def __init__(self, shards: list[VectorIndex], shard_size: int, info: IndexInfo) -> None:
        self.shards = shards
        self.shard_size = shard_size
        self.info = info

    @classmethod
    def build(cls, vectors: np.ndarray, shard_size: int, *, what: str = "", map_fn: Map = map,
              **options) -> ShardedIndex:
        """Shards of ``shard_size`` consecutive rows, each labelled with the rows' global ids.

        ``map_fn`` maps the shard builder over the slices (see :data:`Map`): the builtin ``map`` builds them one
        after another here; a parallel map (Ray tasks) gives the same shards.
        """
        data = np.asarray(vectors, dtype=np.float32)
        if shard_size < 1:
            raise BadArgumentError(f"shard_size must be at least 1, not {shard_size}.")
        if data.ndim != 2 or len(data) == 0:
            raise BadArgumentError(f"Need a non-empty 2-d array of vectors to index; got shape {data.shape}.")
        slices = [(data[s : s + shard_size], s) for s in range(0, len(data), shard_size)]
        shards = list(map_fn(partial(_build_shard, what=what, **options), slices))
        if [len(s) for s in shards] != [len(rows) for rows, _ in slices]:
            raise BadArgumentError(f"map_fn returned shards of {[len(s) for s in shards]} items, "
                                   f"not {[len(rows) for rows, _ in slices]}.")
        first = shards[0].info
        info = IndexInfo(data.shape[1], len(data), first.space, first.M, first.ef_construction, first.ef, what)
        return cls(shards, shard_size, info)

    @property
    def nodes(self) -> int:
        """The items in the shards' graphs: every item, less the near-copies each shard lists under them."""
        return sum(shard.nodes for shard in self.shards)

    @IndexFacts.ef.setter
    def ef(self, value: int) -> None:
        self.info.ef = int(value)
        for shard in self.shards:
            shard.ef = value

    def query(self, queries: np.ndarray, k: int) -> Neighbours:
        """Every shard's own top k, merged: the ``k`` nearest over all shards, nearest first."""
        k = min(_check_k(k), self.info.count)
        q = _as_queries(queries, self.info.dim)
        found = [shard.query(q, min(k, len(shard))) for shard in self.shards]
        ids = np.concatenate([f.ids for f in found], axis=1)
        dists = np.concatenate([f.distances for f in found], axis=1)
        # stable: equal distances keep shard order, i.e. the lower id first, as within one index
        order = np.argsort(dists, axis=1, kind="stable")[:, :k]
        return Neighbours(np.take_along_axis(ids, order, 1), np.take_along_axis(dists, order, 1))

    def get(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """The stored vectors of items ``ids``, in the order given, each from the shard that holds it."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        out = np.zeros((len(ids), self.info.dim), np.float32)
        owner = ids // self.shard_size
        for number in np.unique(owner):
            rows = np.flatnonzero(owner == number)
            out[rows] = self.shards[int(number)].get(ids[rows])
        return out

    def vectors(self) -> np.ndarray:
        return np.concatenate([shard.vectors() for shard in self.shards])

    def save(self, path: str | Path) -> None:
        """The shards first, then the sidecar that names them (so a complete sidecar means complete shards)."""
        base = Path(path)
        remove_saved(base)
        for number, shard in enumerate(self.shards):
            shard.save(shard_base(base, number))
        storage.write_json(base.with_suffix(".json"),
                           {**asdict(self.info), "shard_size": self.shard_size, "shards": len(self.shards)})

    @classmethod
    def load(cls, path: str | Path, sidecar: dict) -> ShardedIndex:
        base = Path(path)
        shard_size, count = int(sidecar.pop("shard_size")), int(sidecar.pop("shards"))
        try:
            info = IndexInfo(**sidecar)
        except TypeError as exc:
            raise BundleError(f"index sidecar is unreadable ({exc}).", base.with_suffix(".json")) from exc
        shards = [VectorIndex.load(shard_base(base, number)) for number in range(count)]
        expected = [min(shard_size, info.count - s) for s in range(0, info.count, shard_size)]
        if [len(s) for s in shards] != expected:
            raise BundleError(f"shards hold {[len(s) for s in shards]} items; the sidecar says {expected}.",
                              base.with_suffix(".json"), "Rebuild the bundle with python -m training.build_assets.")
        index = cls(shards, shard_size, info)
        index.ef = info.ef
        return index


def _build_shard(job: tuple[np.ndarray, int], *, what: str = "", **options) -> VectorIndex:
    """One shard: the index over ``rows``, labelled with their global ids ``start, start + 1, …``.

    Module level (and so importable by name), as a Ray task's function must be; a VectorIndex pickles.
    """
    rows, start = job
    return VectorIndex.build(rows, np.arange(start, start + len(rows)), what=what, **options)


def build_index(vectors: np.ndarray, *, shard_size: int | None = None, what: str = "", map_fn: Map = map,
                **options) -> VectorIndex | ShardedIndex:
    """One :class:`VectorIndex` (today's index) unless ``shard_size`` splits the vectors into several shards,
    built by ``map_fn`` (see :meth:`ShardedIndex.build`)."""
    if shard_size is None or shard_size >= len(vectors):
        return VectorIndex.build(vectors, what=what, **options)
    return ShardedIndex.build(vectors, shard_size, what=what, map_fn=map_fn, **options)


def save_index(index: VectorIndex | ShardedIndex, path: str | Path) -> None:
    """Save either kind at ``path``, first removing the files of the other kind a previous build may have left."""
    remove_saved(Path(path))
    index.save(path)


def remove_saved(base: Path) -> None:
    """Delete an index saved at ``base`` (plain or sharded), so no stale file joins the bundle's manifest."""
    for stale in [base.with_suffix(".hnsw"), base.with_suffix(".json"), copies_path(base),
                  *base.parent.glob(f"{base.name}-[0-9][0-9][0-9][0-9][0-9].*")]:
        stale.unlink(missing_ok=True)


def load_index(path: str | Path) -> VectorIndex | ShardedIndex:
    """Load the index saved at ``path``, plain or sharded (its sidecar says which)."""
    base = Path(path)
    sidecar = base.with_suffix(".json")
    if sidecar.is_file():
        try:
            fields = json.loads(sidecar.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BundleError(f"index sidecar is unreadable ({exc}).", sidecar) from exc
        if isinstance(fields, dict) and "shards" in fields:
            return ShardedIndex.load(base, fields)
    return VectorIndex.load(base)
