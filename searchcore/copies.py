"""Near-copies in a photo index: items whose vector (almost) equals an earlier item's are listed under it, not linked
into the hnswlib graph.

Why: hnswlib's graph search cannot cross a crowd of near-identical vectors. Each of them spends its links on the
others, the search's beam fills with one crowd and stops there, and a better crowd elsewhere is never reached, at
any search width (hnswlib's author: "does your data have duplicates? deduping should bring a huge gain"). Photos
crowd like that in word space, where the head and ConSE place photos of one meaning within a hair of each other,
and a collection with bursts, re-saves or resized copies has crowds of its own.

So :func:`group` walks the items in order and makes an item a *copy* of the first earlier *node* within ``distance``
(cosine distance) of it, searching the nodes found so far; only nodes go into the graph. :class:`Copies` lists each
node's copies with their vectors and how far the farthest lies (its ``reach``), and :meth:`Copies.expand` turns a
search's nodes into items. A copy's angle to the query is smaller than its node's by at most the angle between them
(:func:`ceiling`), so a node's copies are scored (exactly: their vectors are in the table) only where that bound
reaches the k-th best found, and the index reads its nodes deeper until no copy of a node it has not read can
(:meth:`searchcore.index.VectorIndex.query`). The answer is the top k over every item, up to hnswlib's own
approximation among the nodes, which are now spread apart as its graph needs them to be.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .topk import best_first


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), as float32 (:mod:`searchcore.index` exports it: the
    ground floor's one normalisation, here because the index builds on this module)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=-1, keepdims=True), 1e-12)


def ceiling(sims: np.ndarray, reach: np.ndarray | float) -> np.ndarray:
    """The highest cosine with a unit query that a vector within ``reach`` (Euclidean, on the unit sphere) of one
    with cosines ``sims`` can have: the angle to the query shrinks by at most the angle ``reach`` spans."""
    angle = np.arccos(np.clip(sims, -1.0, 1.0)) - 2.0 * np.arcsin(np.minimum(np.asarray(reach) / 2.0, 1.0))
    return np.cos(np.maximum(angle, 0.0))


class Expanded(NamedTuple):
    ids: np.ndarray
    sims: np.ndarray
    settled: bool  # no copy of a node the search did not give can make the answer


#: items grouped per round of :func:`group`: each round is one batched search of the nodes so far, one
#: block × block product among the round's own items (its cost grows with the block and the dimension), and one
#: insertion of the round's new nodes
BLOCK = 1024


@dataclass(frozen=True)
class Copies:
    """The copies of an index's nodes. ``nodes``: the ids of nodes that have copies, ascending; node ``nodes[i]``'s
    copies are ``ids[offsets[i]:offsets[i + 1]]`` (ascending) with unit vectors ``vectors`` (same rows), the
    farthest of them ``reach[i]`` from it (Euclidean); ``order``: ``ids`` sorted (``ids[order]`` ascending), to
    find a copy by its id."""

    nodes: np.ndarray
    offsets: np.ndarray
    reach: np.ndarray
    ids: np.ndarray
    vectors: np.ndarray
    order: np.ndarray

    @classmethod
    def of(cls, item_ids: np.ndarray, node_of: np.ndarray, data: np.ndarray) -> Copies | None:
        """The table for items ``item_ids`` (rows of ``data``, any length) whose node is ``node_of`` (an id; its own
        id for a node); None when every item is a node."""
        copy = node_of != item_ids
        if not copy.any():
            return None
        rows = np.flatnonzero(copy)
        rows = rows[np.lexsort((item_ids[rows], node_of[rows]))]  # by node, then by id
        nodes, counts = np.unique(node_of[rows], return_counts=True)
        ids = item_ids[rows].astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        vectors = np.ascontiguousarray(unit_rows(data[rows]))
        row_of = np.full(int(item_ids.max()) + 1, -1, np.int64)
        row_of[item_ids] = np.arange(len(item_ids))
        gap = np.linalg.norm(vectors - unit_rows(data[row_of[node_of[rows]]]), axis=1)
        reach = np.maximum.reduceat(gap, offsets[:-1]).astype(np.float32)
        order = np.argsort(ids, kind="stable").astype(np.int64)
        return cls(nodes.astype(np.int64), offsets, reach, ids, vectors, order)

    def __len__(self) -> int:  # the number of copies
        return len(self.ids)

    def save(self, path: Path) -> None:
        from .storage import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **{f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def load(cls, path: Path) -> Copies:
        """The table at ``path``, memory-mapped (a search reads the copies of the few nodes it finds)."""
        import zipfile

        from .storage import load_npz

        try:
            data = load_npz(path)
        except (zipfile.BadZipFile, EOFError) as exc:  # a file cut short: its archive's directory is gone
            raise ValueError(f"not a whole archive ({exc})") from exc
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in data]
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        table = cls(*(data[name] for name in names))
        if len(table.offsets) != len(table.nodes) + 1 or int(table.offsets[-1]) != len(table.ids) or \
                len(table.vectors) != len(table.ids) or len(table.order) != len(table.ids):
            raise ValueError("its arrays disagree in length (a truncated or mixed file)")
        return table

    def find(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For items ``ids``: which are copies, and for those, their rows in ``ids``/``vectors``."""
        ranked = self.ids[self.order]
        at = np.minimum(np.searchsorted(ranked, ids), len(ranked) - 1)
        copy = ranked[at] == ids
        return copy, self.order[at[copy]]

    def expand(self, query: np.ndarray, ids: np.ndarray, sims: np.ndarray, k: int) -> Expanded:
        """The ``k`` best items (ids, cosines; best first, ties by id) among nodes ``ids`` (a search's answer,
        cosines ``sims`` descending) and their copies, each copy scored exactly against the unit ``query``.

        A node's copies are read where one of them could make the top k: a copy's angle to the query is smaller than
        its node's by at most the angle between them, so where the node's cosine raised by its ``reach``
        (:func:`ceiling`) falls below the k-th best found so far, none of its copies can reach it. The answer is
        ``settled`` when that holds for every node the search did not give too (they rank below its last one).
        """
        sims = np.asarray(sims, np.float32)
        at = np.minimum(np.searchsorted(self.nodes, ids), len(self.nodes) - 1)
        has = self.nodes[at] == ids
        found = [(ids, sims)]
        # two products at most: the copies of the best nodes, as many as it takes to hold k items (the k-th best
        # of everything found then bounds what else may count), then those of every later node that can reach it
        rows = np.flatnonzero(has)
        held = np.ones(len(ids), np.int64)
        held[rows] += self.offsets[at[rows] + 1] - self.offsets[at[rows]]
        first = rows[rows <= int(np.searchsorted(np.cumsum(held), k))]
        if len(first):
            found.append(self._score(query, at[first]))
        pool = np.concatenate([part for _, part in found])
        kth = float(-np.partition(-pool, k - 1)[k - 1]) if len(pool) >= k else -np.inf
        rest = rows[len(first):]
        rest = rest[ceiling(sims[rest], self.reach[at[rest]]) >= kth]
        if len(rest):
            found.append(self._score(query, at[rest]))
        best, best_sims = best_first(np.concatenate([i for i, _ in found]), np.concatenate([v for _, v in found]), k)
        settled = len(best) == k and float(ceiling(sims[-1:], self.farthest)[0]) < float(best_sims[-1])
        return Expanded(best, best_sims, settled)

    @property
    def farthest(self) -> float:
        """The farthest any copy lies from its node."""
        return float(self.reach.max())

    def _score(self, query: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The copies of nodes ``nodes[slots]`` and their cosines to ``query``."""
        spans = [slice(int(self.offsets[n]), int(self.offsets[n + 1])) for n in slots]
        ids = np.concatenate([self.ids[span] for span in spans])
        return ids, np.concatenate([np.asarray(self.vectors[span] @ query, np.float32) for span in spans])


def group(index, data: np.ndarray, ids: np.ndarray, distance: float, threads: int = -1) -> np.ndarray:
    """Insert the nodes of rows ``data`` (ids ``ids``; compared by cosine) into the empty hnswlib ``index``; return
    each item's node (an id; its own for a node).

    Rounds of :data:`BLOCK` items, in order: an item within ``distance`` of a node inserted by an earlier round is
    its copy; among the round's other items, one within ``distance`` of an earlier one of them takes that item's
    node where it is within ``distance`` of that node too (else it is a node itself: a node too many costs a
    little speed, a copy too far would cost answers).
    """
    node_of = np.asarray(ids, np.int64).copy()
    floor = 1.0 - distance
    for start in range(0, len(data), BLOCK):
        rows = np.arange(start, min(start + BLOCK, len(data)))
        block = unit_rows(data[rows])
        if index.get_current_count():
            labels, dists = index.knn_query(block, k=1, num_threads=threads)
            near = dists[:, 0] <= distance
            node_of[rows[near]] = labels[near, 0]
            rows, block = rows[~near], block[~near]
        if len(rows) > 1:
            sims = block @ block.T
            earlier = np.tril(sims >= floor, -1)  # item i is near an earlier item j of the round
            first = np.where(earlier.any(1), earlier.argmax(1), np.arange(len(rows)))
            while not np.array_equal(first[first], first):  # follow each chain to an item that is its own node
                first = first[first]
            keep = sims[np.arange(len(rows)), first] >= floor  # within distance of that node, else a node itself
            first = np.where(keep, first, np.arange(len(rows)))
            node_of[rows] = node_of[rows[first]]
        new = node_of[rows] == np.asarray(ids)[rows]
        if new.any():
            index.add_items(block[new], np.asarray(ids)[rows[new]], num_threads=threads)
    return node_of
