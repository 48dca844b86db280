"""Known-answer tests for searchcore.models.propagation: photos described by their look-alikes' words."""

from __future__ import annotations

import numpy as np
import pytest

from searchcore.models.propagation import TEMPERATURE, exact_neighbours, neighbour_embedding, served_embedding


def test_neighbour_embedding_weights_nearer_photos_more_and_skips_itself():
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    has = np.array([True, True, True])
    ids = np.array([[0, 1, 2]])  # the photo itself (0) comes first, as a search of the collection returns it
    dists = np.array([[0.0, 0.1, 0.3]], np.float32)
    got = neighbour_embedding(ids, dists, targets, has, self_ids=np.array([0]), k=2)
    w1, w2 = np.exp(TEMPERATURE * 0.9), np.exp(TEMPERATURE * 0.7)
    want = np.array([0, w1, w2]) / np.hypot(w1, w2)
    np.testing.assert_allclose(got[0], want, rtol=1e-5)
    assert got[0, 0] == 0.0  # never its own words


def test_neighbour_embedding_skips_photos_without_a_target_and_keeps_k():
    targets = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    has = np.array([True, False, True])
    got = neighbour_embedding(np.array([[1, 0, 2]]), np.array([[0.0, 0.2, 0.2]]), targets, has, k=1)
    np.testing.assert_allclose(got[0], [1, 0], atol=1e-6)  # item 1 has no target, k=1 keeps item 0 only


def test_no_usable_neighbour_gives_a_zero_row_and_the_head_is_kept():
    targets = np.eye(2, dtype=np.float32)
    near = neighbour_embedding(np.array([[0, -1]]), np.array([[0.0, 1.0]]), targets, np.array([True, True]),
                               self_ids=np.array([0]))
    assert not near.any()
    head = np.array([[3.0, 4.0]], np.float32)
    np.testing.assert_allclose(served_embedding(head, near, 0.5), [[0.6, 0.8]], atol=1e-6)


@pytest.mark.parametrize("mix", [0.0, 0.25, 1.0])
def test_served_embedding_is_the_blend(mix):
    head = np.array([[1.0, 0.0]], np.float32)
    near = np.array([[0.0, 1.0]], np.float32)
    got = served_embedding(head, near, mix)
    want = np.array([[1 - mix, mix]]) / np.hypot(1 - mix, mix)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_exact_neighbours_searches_only_the_reference_photos():
    feats = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    ids, dists = exact_neighbours(feats, np.array([0]), np.array([2, 3]), k=1)
    assert set(ids[0]) <= {2, 3} and ids[0, 0] == 3  # item 1, the nearest overall, is not a reference photo
    assert np.all(np.diff(dists[0]) >= 0)
    empty_ids, _ = exact_neighbours(feats, np.array([0, 1]), np.array([], np.int64))
    assert (empty_ids == -1).all()
