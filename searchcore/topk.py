"""The best k items by a weighted sum of scores, each of which some sorted list gives best first.

Text → Image's served score is a weighted sum: the head's and ConSE's cosines mixed (one hnswlib index of both, the
joint index, searched best first; in a bundle built before it, each from its own index) and the word signals' parts
(each a posting list of :mod:`searchcore.postings`, stored best first). So the
query reads every list down to a depth, scores what it found exactly, and stops once no item it has not seen could
beat its k-th best: an unseen item scores at most the weighted sum of the values at the depths read (Fagin's
threshold algorithm, which holds whatever depth each list is read to). The depths grow fourfold (:data:`GROWTH`) from
:data:`START` up to :data:`CAP`, so the work is bounded whatever the collection; within the cap the answer is the
exact top k of the score (up to the indexes' own approximation).

Three things keep the reading cheap, none of them at the cost of the answer:

* an index is searched anew to be read deeper, while a posting list is read further at next to no cost: the indexes
  are read deeper only where the lists cannot settle the top k alone (``Source.dear``);
* a run of equal values lowers no bound: a list is not read through one (a photo named by a word is its own
  exemplar, so thousands of photos tie at the top of the word's exemplar list);
* an item's exact score needs a search in each of its words' lists, so an item found is first given a ceiling: its
  value in every list that gave it, the list's last value in every other (the bound's reasoning, per item), and its
  value where a list says it cheaply (a cosine: one row and a dot product). An item whose ceiling is below the k-th
  best score so far cannot make the top k, and is not scored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

START = 64  # the first depth read in every list
#: each round reads a list this many times deeper than the last: a round costs a fixed set of numpy calls while an
#: item found costs little (its ceiling), so fewer, deeper rounds pay
GROWTH = 4
CAP = 4096  # the deepest any list is read: the bound on one query's candidates per list
ROUNDING = 1e-5  # relative: how far an item's ceiling may fall below its float32 score by rounding alone


class Source(NamedTuple):
    """A list best first: ``fetch(depth)`` gives its first ``depth`` items and their values, descending (fewer
    where the list ends: an item it does not hold has the value 0 there); ``weight`` is its share of the score.
    ``ends``: False for a list whose reading is cut short on purpose (fewer items than asked do not mean the end:
    its last value still bounds every item it did not give). ``value``: where the list can say it cheaply, the value
    of any items (it bounds their score better than the list's last value does), and ``most``, the highest value it
    can have. ``dear``: a list that is searched anew to be read deeper (an index), read deeper only where the others
    cannot settle the top k without it."""

    weight: float
    fetch: Callable[[int], tuple[np.ndarray, np.ndarray]]
    ends: bool = True
    value: Callable[[np.ndarray], np.ndarray] | None = None
    most: float = np.inf
    dear: bool = False


class TopK(NamedTuple):
    ids: np.ndarray  # best first
    scores: np.ndarray
    depth: int  # how deep the lists were read (the deepest of them)
    exact: bool  # False only when the cap (or an index's own depth) stopped the reading before the bound did


def top_k(sources: Sequence[Source], score: Callable[[np.ndarray], np.ndarray], k: int, size: int,
          start: int = START, cap: int = CAP) -> TopK:
    """The ``k`` best of ``size`` items by ``score`` (exact, for any ids), reading ``sources`` only as deep as needed.

    ``score`` must equal Σ weight·value over the sources for every item (an item missing from a list has a value
    there no higher than the list's last one, or 0 past a list's end), which is what makes the bound sound; it is
    called only for items that may make the top k.
    """
    seen = np.zeros(size, bool)  # one flag per item: what is found already is not considered again
    found = 0
    ids, scores = np.zeros(0, np.int64), np.zeros(0, np.float32)  # the items scored (found, less those ruled out)
    kth = -np.inf  # the k-th best score so far
    limit = min(cap, size)
    depths = [min(start, size)] * len(sources)  # how deep each list is read
    cheap_bound = np.inf  # the cheap lists' part of the bound, the round before
    while True:
        reads, bound, shares, deeper = [], 0.0, [], []
        for source, depth in zip(sources, depths):
            listed, values = source.fetch(depth)
            listed, values = np.asarray(listed, np.int64), np.asarray(values)
            deeper.append(len(values) >= depth < limit)  # all it was asked for: reading on may lower its value
            # a run of equal values at the end lowers no bound (its items are unseen items like any other, bounded
            # by that value): read one of it, so a list of thousands of ties (a photo named by the word is its own
            # exemplar) yields no thousands of candidates
            tied = int(np.searchsorted(-values, -values[-1])) + 1 if len(values) else 0
            last = 0.0 if (source.ends and len(values) < depth and tied == len(values)) or not len(values) \
                else float(values[-1])
            listed, values = listed[:tied], values[:tied]
            fresh = ~seen[listed]  # each round re-reads the lists' heads: only what no list gave before
            reads.append((listed[fresh], values[fresh], last))
            shares.append(source.weight * last)
            bound += shares[-1]
        new, where = _distinct(reads)
        seen[new] = True
        found += len(new)
        if len(new):
            new = _hopeful(new, sources, reads, where, kth)
            ids = np.concatenate([ids, new])
            scores = np.concatenate([scores, np.asarray(score(new), np.float32)])
            if len(scores) >= k:
                kth = float(-np.partition(-scores, k - 1)[k - 1])
        if found >= size or kth >= bound:
            return _best(ids, scores, k, max(depths), True)
        lists = [i for i, s in enumerate(sources) if deeper[i] and not s.dear]
        dear = [i for i, s in enumerate(sources) if deeper[i] and s.dear]
        if not lists and not dear:  # the cap (or the indexes' own depth) stopped the reading before the bound did
            return _best(ids, scores, k, max(depths), False)
        # the dear lists are read deeper only where the cheap ones cannot settle the top k alone: read to their ends
        # they would still leave the bound above the k-th best, or reading them deeper lowered it no more
        dear_bound = sum(share for share, s in zip(shares, sources) if s.dear)
        lowered, cheap_bound = bound - dear_bound < cheap_bound, bound - dear_bound
        if dear and (not lists or dear_bound >= kth or not lowered):
            lists += dear
        for i in lists:
            depths[i] = min(GROWTH * depths[i], limit)


def _distinct(reads: list[tuple[np.ndarray, np.ndarray, float]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The items of ``reads`` each once, in id order; and per read, where each of its items stands among them (one
    sort of everything read serves both, where a search per list would cost a sort's worth each)."""
    items = np.concatenate([read[0] for read in reads]) if reads else np.zeros(0, np.int64)
    order = np.argsort(items)  # equal items are one item: no need for a stable order
    ranked = items[order]
    first = np.ones(len(items), bool)
    first[1:] = ranked[1:] != ranked[:-1]
    where = np.empty(len(items), np.int64)
    where[order] = np.cumsum(first) - 1
    return ranked[first], np.split(where, np.cumsum([len(read[0]) for read in reads])[:-1])


def _hopeful(new: np.ndarray, sources: Sequence[Source], reads: list[tuple[np.ndarray, np.ndarray, float]],
             where: list[np.ndarray], kth: float) -> np.ndarray:
    """The items of ``new`` (found this round, in id order) whose ceiling reaches ``kth``: per source the item's
    value where the source gave it this round (``where``: the positions in ``new`` of each read's items), else the
    list's last value, or for a source that can say any item's value (``value``) its ``most``, until it is asked for
    the items still in."""
    if not np.isfinite(kth):
        return new
    floor = kth - ROUNDING * max(1.0, abs(kth))  # the score's float32 rounding: an item tied with the k-th is scored
    parts, unknown = [], []
    for source, (_, values, last), given in zip(sources, reads, where):
        part = np.full(len(new), source.most if source.value is not None else last, np.float64)
        part[given] = values
        parts.append(part)
        unknown.append(np.ones(len(new), bool))
        unknown[-1][given] = False

    def hopeful(items: np.ndarray) -> np.ndarray:
        ceiling = sum((s.weight * p[items] for s, p in zip(sources, parts) if s.weight), np.zeros(len(items)))
        return items[ceiling >= floor]

    alive = hopeful(np.arange(len(new)))
    for source, part, asked in zip(sources, parts, unknown):
        if source.value is not None and source.weight and len(alive):
            asked = alive[asked[alive]]
            part[asked] = source.value(new[asked])
            alive = hopeful(alive)
    return new[alive]


def _best(ids: np.ndarray, scores: np.ndarray, k: int, depth: int, exact: bool) -> TopK:
    return TopK(*best_first(ids, scores, k), depth, exact)


def best_first(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of ``ids`` by ``scores``, best first; ties: the lower id first, as a stable sort of every item
    would. Only the k best (and every item tied with the k-th) are sorted."""
    if len(scores) > k:
        keep = scores >= -np.partition(-scores, k - 1)[k - 1]
        ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))[:k]
    return ids[order], scores[order]
