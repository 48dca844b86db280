"""Nearest-neighbour indexes: hnswlib (approximate, fast) with a JSON sidecar, and exact numpy search beside it.

An index is two files, ``NAME.hnsw`` (hnswlib's own format) and ``NAME.json`` (dim, count, space, M,
ef_construction, ef, what the vectors are, and the near-copy distance and node count below). hnswlib does not store
``ef``, so the sidecar restores it on load. Labels in the index are item ids (rows of the matrix the index was built
from, or ids given at build time).

An index built with ``copies`` (a cosine distance) links only the items that are not near-copies of an earlier one
into its graph, and lists the copies under them in a third file, ``NAME.copies.npz`` (:mod:`searchcore.copies`
says why); a search expands the nodes it finds into their copies, so callers see every item either way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import storage
from .copies import Copies, Expanded, group, unit_rows
from .errors import BadArgumentError, BundleError

SPACES = ("cosine", "l2", "ip")


class Neighbours(NamedTuple):
    ids: np.ndarray  # (q, k) int64
    distances: np.ndarray  # (q, k) float32; cosine distance = 1 - cosine similarity


@dataclass
class IndexInfo:
    dim: int
    count: int
    space: str = "cosine"
    M: int = 16
    ef_construction: int = 200
    ef: int = 64
    vectors: str = ""  # what the vectors are, e.g. "tf_efficientnet_lite0@pypi penultimate features"
    copies: float = 0.0  # the cosine distance within which an item is listed as a copy of a node (0: none is)
    nodes: int = 0  # the items in the graph (0, as a sidecar older than copies says: all of them)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise BadArgumentError(f"k must be a whole number, not {k!r}.")
    if k < 1:
        raise BadArgumentError(f"k must be at least 1 (got {k}).")
    return int(k)


def _as_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        raise BadArgumentError(f"Query vectors must have {dim} dimensions; got shape {tuple(q.shape)}.")
    return q


def exact_search(matrix: np.ndarray, queries: np.ndarray, k: int, space: str = "cosine") -> Neighbours:
    """Brute-force k nearest rows of ``matrix`` with hnswlib's distance definitions, for checks and tiny sets."""
    k = min(_check_k(k), len(matrix))
    data = np.asarray(matrix, dtype=np.float32)
    q = _as_queries(queries, data.shape[1])
    if space == "cosine":
        data, q = unit_rows(data), unit_rows(q)
        dist = np.maximum(1.0 - q @ data.T, 0.0)  # float error can make an identical vector's distance -1e-7
    elif space == "ip":
        dist = 1.0 - q @ data.T
    elif space == "l2":
        dist = (q * q).sum(1)[:, None] - 2.0 * q @ data.T + (data * data).sum(1)[None, :]
    else:
        raise BadArgumentError(f"Unknown space {space!r}; use one of {SPACES}.")
    part = np.argpartition(dist, k - 1, axis=1)[:, :k] if k < data.shape[0] else np.tile(np.arange(k), (len(q), 1))
    order = np.take_along_axis(dist, part, 1).argsort(1, kind="stable")
    ids = np.take_along_axis(part, order, 1)
    return Neighbours(ids.astype(np.int64), np.take_along_axis(dist, ids, 1).astype(np.float32))


class IndexFacts:
    """What a :class:`VectorIndex` and a sharded index both answer from their :class:`IndexInfo`."""

    info: IndexInfo

    @property
    def dim(self) -> int:
        return self.info.dim

    def __len__(self) -> int:
        return self.info.count

    @property
    def ef(self) -> int:
        return self.info.ef


class VectorIndex(IndexFacts):
    """An hnswlib index plus its sidecar metadata. Create with :meth:`build` or :meth:`load`."""

    def __init__(self, index, info: IndexInfo, copies: Copies | None = None) -> None:
        self._index = index
        self.info = info
        self.copies = copies

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        ids: np.ndarray | None = None,
        *,
        space: str = "cosine",
        M: int = 16,
        ef_construction: int = 200,
        ef: int = 64,
        what: str = "",
        threads: int = -1,
        copies: float = 0.0,
    ) -> VectorIndex:
        """The index of ``vectors`` (labels ``ids``, else their rows). ``copies`` > 0 (cosine space only): an item
        within that cosine distance of an earlier node is listed under it, not linked into the graph."""
        import hnswlib

        if space not in SPACES:
            raise BadArgumentError(f"Unknown space {space!r}; use one of {SPACES}.")
        data = np.asarray(vectors, dtype=np.float32)
        if data.ndim != 2 or len(data) == 0:
            raise BadArgumentError(f"Need a non-empty 2-d array of vectors to index; got shape {data.shape}.")
        if copies and space != "cosine":
            raise BadArgumentError(f"Near-copies are found by cosine; an index in {space!r} space cannot list them.")
        labels = np.arange(len(data)) if ids is None else np.asarray(ids, dtype=np.int64)
        index = hnswlib.Index(space=space, dim=data.shape[1])
        index.init_index(max_elements=len(data), M=M, ef_construction=ef_construction, random_seed=100)
        table = None
        if copies > 0:
            table = Copies.of(labels, group(index, data, labels, copies, threads), data)
        else:
            index.add_items(data, labels, num_threads=threads)
        index.set_ef(ef)
        info = IndexInfo(data.shape[1], len(data), space, M, ef_construction, ef, what, float(copies),
                         index.get_current_count())
        return cls(index, info, table)

    @property
    def nodes(self) -> int:
        """The items in the graph: every item, less the copies listed under them."""
        return self.info.nodes or self.info.count

    @IndexFacts.ef.setter
    def ef(self, value: int) -> None:
        self.info.ef = int(value)
        self._index.set_ef(int(value))

    def query(self, queries: np.ndarray, k: int) -> Neighbours:
        """The ``k`` nearest items to each query; ``k`` above the item count returns every item."""
        k = min(_check_k(k), self.info.count)
        q = _as_queries(queries, self.info.dim)
        if self.copies is not None:  # the nodes found, each with those of its copies that may make the top k
            rows = [self._with_copies(row, k) for row in unit_rows(q)]
            labels, dists = np.stack([row.ids for row in rows]), np.stack([1.0 - row.sims for row in rows])
        else:
            # hnswlib searches with max(ef, k) candidates, so k > ef needs no set_ef (which would race between
            # threads)
            labels, dists = self._index.knn_query(q, k=k)
            labels = labels.astype(np.int64)
        if self.info.space == "cosine":
            dists = np.maximum(dists, 0.0)  # float error can make an identical vector's distance -1e-7
        return Neighbours(labels, dists.astype(np.float32))

    def _with_copies(self, query: np.ndarray, k: int) -> Expanded:
        """The ``k`` best items for one unit ``query``: the nodes hnswlib finds and their copies, the nodes read
        four times deeper until no copy of a node not read can make the top k (:meth:`Copies.expand`)."""
        assert self.copies is not None
        depth, found = min(max(k, self.info.ef), self.nodes), None
        while True:
            try:
                labels, dists = self._index.knn_query(query, k=depth)
            except RuntimeError:  # a graph that cannot give that many: the deepest read it gave stands
                if found is None:
                    raise
                return found
            found = self.copies.expand(query, labels[0].astype(np.int64), 1.0 - dists[0], k)
            if found.settled or depth == self.nodes:
                return found
            depth = min(4 * depth, self.nodes)

    def get(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """The stored vectors of items ``ids`` (unit-normalised in cosine space), in the order given."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if len(ids) == 0:
            return np.zeros((0, self.info.dim), np.float32)
        if self.copies is None:
            return np.asarray(self._index.get_items(ids, return_type="numpy"), dtype=np.float32)
        out = np.zeros((len(ids), self.info.dim), np.float32)
        copy, rows = self.copies.find(ids)
        out[copy] = self.copies.vectors[rows]
        if not copy.all():
            out[~copy] = self._index.get_items(ids[~copy], return_type="numpy")
        return out

    def vectors(self) -> np.ndarray:
        """The stored vectors in label order (hnswlib keeps them; cosine space keeps them unit-normalised)."""
        labels = np.asarray(self._index.get_ids_list(), dtype=np.int64)
        if self.copies is not None:
            labels = np.concatenate([labels, self.copies.ids])
        return self.get(np.sort(labels))

    def save(self, path: str | Path) -> None:
        """Write ``path.hnsw`` and ``path.json`` atomically (the index first, the sidecar that vouches for it last)."""
        base = Path(path)
        with storage.atomic_path(base.with_suffix(".hnsw")) as tmp:
            self._index.save_index(str(tmp))
        if self.copies is not None:
            self.copies.save(copies_path(base))
        storage.write_json(base.with_suffix(".json"), asdict(self.info))

    @classmethod
    def load(cls, path: str | Path) -> VectorIndex:
        import hnswlib

        base = Path(path)
        sidecar, data = base.with_suffix(".json"), base.with_suffix(".hnsw")
        for needed in (sidecar, data):
            if not needed.is_file():
                raise BundleError("index file is missing.", needed,
                                  "Rebuild the bundle with python -m training.build_assets.")
        try:
            info = IndexInfo(**json.loads(sidecar.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise BundleError(f"index sidecar is unreadable ({exc}).", sidecar) from exc
        index = hnswlib.Index(space=info.space, dim=info.dim)
        try:
            index.load_index(str(data), max_elements=info.nodes or info.count)
        except RuntimeError as exc:
            raise BundleError(f"hnswlib cannot read the index ({exc}).", data,
                              "Rebuild the bundle with python -m training.build_assets.") from exc
        if index.get_current_count() != (info.nodes or info.count):
            raise BundleError(f"index holds {index.get_current_count()} items but its sidecar says "
                              f"{info.nodes or info.count}.", data)
        table = None
        if info.nodes and info.nodes < info.count:
            table = _load_copies(copies_path(base), info)
        index.set_ef(info.ef)
        return cls(index, info, table)


def copies_path(base: Path) -> Path:
    """Where the index saved at ``base`` lists its near-copies."""
    return base.with_name(f"{base.name}.copies.npz")


def _load_copies(path: Path, info: IndexInfo) -> Copies:
    rebuild, count = "Rebuild the bundle with python -m training.build_assets.", info.count - info.nodes
    if not path.is_file():
        raise BundleError(f"the index's sidecar says {info.count} items, {info.nodes} in its graph and {count} "
                          "near-copies listed here, but this file is missing.", path, rebuild)
    try:
        table = Copies.load(path)
    except (ValueError, OSError) as exc:
        raise BundleError(f"the index's list of near-copies is unreadable ({exc}).", path, rebuild) from exc
    if len(table) != count:
        raise BundleError(f"the index lists {len(table)} near-copies but its sidecar says {count}.", path, rebuild)
    return table
