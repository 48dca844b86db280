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
    """A list best first: ``fetch(depth)`` gives its first ``depth`` items and their values, descending; ``weight``
    is its share of the score (≥ 0); ``floor`` is the value of an item the list does not hold."""

    weight: float
    fetch: Callable[[int], tuple[np.ndarray, np.ndarray]]
    floor: float = 0.0


class TopK(NamedTuple):
    ids: np.ndarray  # best first
    scores: np.ndarray
    depth: int  # how deep the lists were read
    exact: bool  # False only when the cap stopped the reading before the bound did


def top_k(sources: Sequence[Source], score: Callable[[np.ndarray], np.ndarray], k: int, size: int,
          start: int = START, cap: int = CAP) -> TopK:
    """The ``k`` best of ``size`` items by ``score`` (exact, for any ids), reading ``sources`` only as deep as needed.

    ``score`` must equal Σ weight·value over the sources for every item (an item missing from a list has a value
    there no higher than the list's last one), which is what makes the bound sound.
    """
    seen = np.zeros(0, np.int64)
    scores = np.zeros(0, np.float32)
    depth = min(start, size)
    while True:
        found, bound = [], 0.0
        for source in sources:
            ids, values = source.fetch(depth)
            found.append(np.asarray(ids, np.int64))
            # past the end of a list (shorter than the depth) an item's value there is the list's floor
            bound += source.weight * (float(values[-1]) if len(values) >= depth else source.floor)
        new = np.setdiff1d(np.concatenate(found) if found else seen, seen)
        if len(new):
            seen = np.concatenate([seen, new])
            scores = np.concatenate([scores, np.asarray(score(new), np.float32)])
        done = len(seen) >= size or depth >= size
        if done or (len(scores) >= k and np.partition(-scores, k - 1)[k - 1] <= -bound):
            return _best(seen, scores, k, depth, True)
        if depth >= cap:
            return _best(seen, scores, k, depth, False)
        depth = min(2 * depth, cap, size)


def _best(ids: np.ndarray, scores: np.ndarray, k: int, depth: int, exact: bool) -> TopK:
    order = np.lexsort((ids, -scores))[:k]  # ties: the lower id first, as a stable sort of every item would
    return TopK(ids[order], scores[order], depth, exact)
