"""The best k items by a weighted sum of scores, each of which some sorted list gives best first.

Text → Image's served score is a weighted sum: the head's cosine and ConSE's (each an hnswlib index, searched best
first) and the word signals' parts (each a posting list of :mod:`searchcore.postings`, stored best first). So the
query reads every list down to a depth, scores what it found exactly, and stops once no item it has not seen could
beat its k-th best: an unseen item scores at most the weighted sum of the values at that depth (Fagin's threshold
algorithm). The depth doubles from :data:`START` up to :data:`CAP`, so the work is bounded whatever the collection;
within the cap the answer is the exact top k of the score (up to the indexes' own approximation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

START = 64  # the first depth read in every list
CAP = 4096  # the deepest any list is read: the bound on one query's candidates per list


class Source(NamedTuple):
    """A list best first: ``fetch(depth)`` gives its first ``depth`` items and their values, descending (fewer
    where the list ends: an item it does not hold has the value 0 there); ``weight`` is its share of the score.
    ``ends``: False for a list whose reading is cut short on purpose (fewer items than asked do not mean the end:
    its last value still bounds every item it did not give)."""

    weight: float
    fetch: Callable[[int], tuple[np.ndarray, np.ndarray]]
    ends: bool = True


class TopK(NamedTuple):
    ids: np.ndarray  # best first
    scores: np.ndarray
    depth: int  # how deep the lists were read
    exact: bool  # False only when the cap stopped the reading before the bound did


def top_k(sources: Sequence[Source], score: Callable[[np.ndarray], np.ndarray], k: int, size: int,
          start: int = START, cap: int = CAP) -> TopK:
    """The ``k`` best of ``size`` items by ``score`` (exact, for any ids), reading ``sources`` only as deep as needed.

    ``score`` must equal Σ weight·value over the sources for every item (an item missing from a list has a value
    there no higher than the list's last one, or 0 past a list's end), which is what makes the bound sound.
    """
    seen = np.zeros(size, bool)  # one flag per item: what is scored already is not scored again
    ids, scores = np.zeros(0, np.int64), np.zeros(0, np.float32)
    depth = min(start, size)
    while True:
        read, bound = [], 0.0
        for source in sources:
            listed, values = source.fetch(depth)
            read.append(np.asarray(listed, np.int64))
            at_end = source.ends and len(values) < depth
            bound += source.weight * (0.0 if at_end or not len(values) else float(values[-1]))
        new = np.concatenate(read) if read else np.zeros(0, np.int64)
        new = np.unique(new[~seen[new]])  # each round re-reads the lists' heads: drop what was seen, then dedupe
        if len(new):
            seen[new] = True
            ids = np.concatenate([ids, new])
            scores = np.concatenate([scores, np.asarray(score(new), np.float32)])
        done = len(ids) >= size or depth >= size
        if done or (len(scores) >= k and np.partition(-scores, k - 1)[k - 1] <= -bound):
            return _best(ids, scores, k, depth, True)
        if depth >= cap:
            return _best(ids, scores, k, depth, False)
        depth = min(2 * depth, cap, size)


def _best(ids: np.ndarray, scores: np.ndarray, k: int, depth: int, exact: bool) -> TopK:
    if len(scores) > k:  # the k best (and every item tied with the k-th), then their order
        keep = scores >= -np.partition(-scores, k - 1)[k - 1]
        ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))[:k]  # ties: the lower id first, as a stable sort of every item would
    return TopK(ids[order], scores[order], depth, exact)
