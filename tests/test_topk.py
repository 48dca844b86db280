"""searchcore.topk on random lists against scoring every item: whatever the lists hold (ties, lists that end, an
index read only so deep, values said cheaply), an answer said to be exact is the exact top k."""

from __future__ import annotations

import numpy as np
import pytest

from searchcore.topk import Source, top_k


def _list(values: np.ndarray, limit: int | None = None, cheap: bool = False, reads: list | None = None) -> Source:
    """A source over ``values`` (0: not listed), best first (ties: the lower id first); ``limit``: read no deeper,
    as an index is (then it is dear, and says any item's value); ``cheap``: say values without being dear."""
    listed = np.flatnonzero(values > 0) if limit is None else np.arange(len(values))
    order = listed[np.lexsort((listed, -values[listed]))]

    def fetch(depth: int) -> tuple[np.ndarray, np.ndarray]:
        if reads is not None:
            reads.append(depth)
        top = order[:min(depth, limit or depth)]
        return top, values[top]

    value = (lambda ids: values[ids]) if limit is not None or cheap else None
    return Source(1.0, fetch, ends=limit is None, value=value, most=1.0, dear=limit is not None)


@pytest.mark.parametrize("seed", range(100))
def test_an_exact_answer_is_the_exact_top_k(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(20, 3000)), int(rng.integers(1, 12))
    columns, sources = [], []
    for _ in range(int(rng.integers(1, 5))):
        kind = rng.integers(3)
        if kind == 0:  # an index: every item, read at most so deep, its values said cheaply
            values = rng.random(n).astype(np.float32)
            source = _list(values, limit=int(rng.integers(1, n + 1)))
        else:  # a posting list: some items, many of them tied (rounded values, a run of 1.0)
            values = np.where(rng.random(n) < rng.random(), np.round(rng.random(n), int(rng.integers(1, 4))), 0.0)
            values[rng.random(n) < 0.2 * rng.random()] = 1.0
            source = _list(values.astype(np.float32), cheap=kind == 2)
        weight = float(rng.random())
        columns.append(weight * values.astype(np.float32))
        sources.append(source._replace(weight=weight))
    exact = np.sum(columns, axis=0, dtype=np.float32)
    found = top_k(sources, lambda ids: exact[ids], k, n, start=int(rng.integers(1, 70)),
                  cap=int(rng.integers(1, 2 * n)))
    want = np.lexsort((np.arange(n), -exact))[:k]
    if found.exact:
        assert np.allclose(found.scores, exact[want]), (found, exact[want])
        # the same items, but where scores tie at the k-th an unseen tie may be left out (the bound allows it)
        assert set(found.ids.tolist()) == set(want.tolist()) or found.scores[-1] == exact[want][-1]
    assert np.allclose(found.scores, exact[found.ids])  # whatever it says, its scores are the items' own


def test_a_run_of_ties_is_not_read_through_and_the_indexes_wait_for_the_lists() -> None:
    n = 100_000
    tied = np.zeros(n, np.float32)
    tied[::3] = 1.0  # a photo named by the word is its own exemplar: a third of the photos tie at 1
    falling = np.zeros(n, np.float32)
    falling[:2000] = np.linspace(1.0, 0.001, 2000)  # a word's list that soon falls off
    cosine = np.random.default_rng(0).random(n).astype(np.float32) * 0.1
    index_reads: list[int] = []
    sources = [_list(tied)._replace(weight=0.3), _list(falling)._replace(weight=0.6),
               _list(cosine, limit=1024, reads=index_reads)._replace(weight=0.1)]
    exact = 0.3 * tied + 0.6 * falling + 0.1 * cosine
    scored: list[int] = []

    def score(ids: np.ndarray) -> np.ndarray:
        scored.extend(ids.tolist())
        return exact[ids]

    found = top_k(sources, score, 10, n)
    assert found.exact
    assert found.ids.tolist() == np.lexsort((np.arange(n), -exact))[:10].tolist()
    assert len(scored) < 1000  # the 33,334 ties were not scored
    assert max(index_reads) == 64  # the falling list settled it: the index was never searched again
