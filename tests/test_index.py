"""Unit tests for searchcore.index: hnswlib VectorIndex (build, query, save/load, sidecar) and exact_search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from searchcore.errors import BadArgumentError, BundleError
from searchcore.index import VectorIndex, exact_search

SIDECAR_FIELDS = {"dim", "count", "space", "M", "ef_construction", "ef"}


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((1500, 24)).astype(np.float32)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((40, 24)).astype(np.float32)


@pytest.fixture(scope="module")
def index(data) -> VectorIndex:
    return VectorIndex.build(data, what="random test vectors", threads=1)


def naive(matrix: np.ndarray, query: np.ndarray, space: str) -> np.ndarray:
    """Distances as hnswlib defines them, one pair at a time."""
    out = np.empty(len(matrix))
    for i, row in enumerate(matrix.astype(np.float64)):
        q = query.astype(np.float64)
        if space == "cosine":
            out[i] = 1.0 - row @ q / (np.linalg.norm(row) * np.linalg.norm(q))
        elif space == "ip":
            out[i] = 1.0 - row @ q
        else:
            out[i] = ((row - q) ** 2).sum()
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


# ---- build and query --------------------------------------------------------------------------------------------
def test_build_records_info(index, data):
    assert index.dim == 24
    assert len(index) == len(data)
    assert index.info.space == "cosine"
    assert index.info.vectors == "random test vectors"
    assert index.ef == index.info.ef


def test_query_matches_exact_search_at_default_ef(index, data, queries):
    found = index.query(queries, 10)
    truth = exact_search(data, queries, 10)
    assert found.ids.shape == (40, 10) and found.distances.shape == (40, 10)
    assert found.ids.dtype == np.int64 and found.distances.dtype == np.float32
    assert recall(found.ids, truth.ids) >= 0.95
    # distances are hnswlib's cosine distances: the same numbers exact_search gives for the same ids
    expected = np.take_along_axis(1.0 - _unit(queries) @ _unit(data).T, found.ids, 1)
    np.testing.assert_allclose(found.distances, expected, atol=1e-4)
    assert np.all(np.diff(found.distances, axis=1) >= -1e-6)  # nearest first


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_stored_vector_finds_itself(index, data):
    found = index.query(data[[3, 700, 1499]], 1)
    np.testing.assert_array_equal(found.ids[:, 0], [3, 700, 1499])
    assert np.all(found.distances[:, 0] < 1e-4)


def test_single_1d_query_returns_one_row(index, data):
    found = index.query(data[5], 4)
    assert found.ids.shape == (1, 4)
    assert found.ids[0, 0] == 5


@pytest.mark.parametrize("space", ["cosine", "l2", "ip"])
def test_query_in_every_space_agrees_with_exact(space):
    rng = np.random.default_rng(5)
    vecs = rng.standard_normal((300, 8)).astype(np.float32)
    if space == "ip":
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    q = rng.standard_normal((10, 8)).astype(np.float32)
    idx = VectorIndex.build(vecs, space=space, threads=1)
    found, truth = idx.query(q, 5), exact_search(vecs, q, 5, space=space)
    assert recall(found.ids, truth.ids) >= 0.95
    np.testing.assert_allclose(found.distances, np.take_along_axis(
        np.stack([naive(vecs, qq, space) for qq in q]), found.ids, 1), rtol=1e-3, atol=1e-3)


def test_custom_ids_are_returned_as_labels():
    rng = np.random.default_rng(2)
    vecs = rng.standard_normal((20, 6)).astype(np.float32)
    ids = np.arange(20) * 10 + 7
    idx = VectorIndex.build(vecs, ids, threads=1)
    found = idx.query(vecs[4], 3)
    assert found.ids[0, 0] == 47
    assert set(found.ids[0]) <= set(ids)


def test_k_above_count_returns_every_item():
    vecs = np.random.default_rng(3).standard_normal((7, 5)).astype(np.float32)
    idx = VectorIndex.build(vecs, threads=1)
    found = idx.query(vecs[0], 50)
    assert found.ids.shape == (1, 7)
    assert sorted(found.ids[0].tolist()) == list(range(7))


def test_k_above_ef_returns_k_results(data, queries):
    idx = VectorIndex.build(data[:300], ef=10, threads=1)
    found = idx.query(queries[:3], 50)
    assert found.ids.shape == (3, 50)
    assert all(len(set(row)) == 50 for row in found.ids)


@pytest.mark.parametrize("k", [0, -1, "3", 2.5, None, True])
def test_bad_k_is_refused(index, queries, k):
    with pytest.raises(BadArgumentError):
        index.query(queries[0], k)


@pytest.mark.parametrize("k", [0, -1, "3"])
def test_bad_k_is_refused_by_exact_search(data, queries, k):
    with pytest.raises(BadArgumentError):
        exact_search(data, queries[0], k)


def test_numpy_integer_k_is_accepted(index, queries):
    assert index.query(queries[0], np.int64(3)).ids.shape == (1, 3)


@pytest.mark.parametrize("shape", [(23,), (25,), (2, 23), (2, 3, 24)])
def test_wrong_query_dimension_is_refused(index, shape):
    with pytest.raises(BadArgumentError, match="24"):
        index.query(np.zeros(shape, np.float32), 3)


def test_wrong_query_dimension_is_refused_by_exact_search(data):
    with pytest.raises(BadArgumentError):
        exact_search(data, np.zeros(5, np.float32), 3)


def test_build_refuses_unknown_space_and_empty_input():
    with pytest.raises(BadArgumentError):
        VectorIndex.build(np.zeros((4, 3), np.float32), space="manhattan")
    with pytest.raises(BadArgumentError):
        VectorIndex.build(np.zeros((0, 3), np.float32))
    with pytest.raises(BadArgumentError):
        VectorIndex.build(np.zeros(3, np.float32))


def test_ef_setter_updates_info_and_hnswlib():
    idx = VectorIndex.build(np.random.default_rng(4).standard_normal((50, 4)).astype(np.float32), threads=1)
    idx.ef = 99
    assert idx.ef == 99 and idx.info.ef == 99
    assert idx._index.ef == 99


def test_vectors_are_returned_in_label_order_and_unit_length_for_cosine():
    vecs = np.random.default_rng(6).standard_normal((30, 5)).astype(np.float32) * 3
    idx = VectorIndex.build(vecs, threads=1)
    np.testing.assert_allclose(idx.vectors(), _unit(vecs), atol=1e-5)


# ---- save / load ----------------------------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path: Path, data, queries):
    idx = VectorIndex.build(data, M=12, ef_construction=120, ef=37, what="round trip", threads=1)
    base = tmp_path / "sub" / "images"
    idx.save(base)
    assert (tmp_path / "sub" / "images.hnsw").is_file()
    sidecar = json.loads((tmp_path / "sub" / "images.json").read_text())
    assert set(sidecar) >= SIDECAR_FIELDS
    assert sidecar["dim"] == 24 and sidecar["count"] == len(data) and sidecar["space"] == "cosine"
    assert sidecar["M"] == 12 and sidecar["ef_construction"] == 120 and sidecar["ef"] == 37

    loaded = VectorIndex.load(base)
    assert loaded.ef == 37
    assert loaded._index.ef == 37  # hnswlib does not store ef: the sidecar must restore it
    assert loaded.dim == 24 and len(loaded) == len(data)
    assert loaded.info == idx.info
    before, after = idx.query(queries, 10), loaded.query(queries, 10)
    np.testing.assert_array_equal(before.ids, after.ids)
    np.testing.assert_allclose(before.distances, after.distances, atol=1e-6)


def test_save_leaves_no_temporary_files(tmp_path: Path):
    VectorIndex.build(np.eye(4, dtype=np.float32), threads=1).save(tmp_path / "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.hnsw", "x.json"]


def test_load_l2_index_keeps_its_space(tmp_path: Path):
    vecs = np.random.default_rng(7).standard_normal((40, 3)).astype(np.float32)
    VectorIndex.build(vecs, space="l2", threads=1).save(tmp_path / "l2")
    loaded = VectorIndex.load(tmp_path / "l2")
    assert loaded.info.space == "l2"
    found = loaded.query(vecs[0] + 0.5, 3)
    np.testing.assert_allclose(found.distances[0, 0], naive(vecs, vecs[0] + 0.5, "l2").min(), rtol=1e-4)


def test_truncated_hnsw_is_a_bundle_error_naming_the_file(tmp_path: Path, data):
    VectorIndex.build(data[:200], threads=1).save(tmp_path / "words")
    hnsw = tmp_path / "words.hnsw"
    hnsw.write_bytes(hnsw.read_bytes()[: hnsw.stat().st_size // 2])
    with pytest.raises(BundleError) as err:
        VectorIndex.load(tmp_path / "words")
    assert "words.hnsw" in str(err.value)
    assert err.value.path == hnsw


def test_missing_sidecar_is_a_bundle_error(tmp_path: Path, data):
    VectorIndex.build(data[:50], threads=1).save(tmp_path / "tags")
    (tmp_path / "tags.json").unlink()
    with pytest.raises(BundleError, match=r"tags\.json"):
        VectorIndex.load(tmp_path / "tags")


def test_missing_hnsw_is_a_bundle_error(tmp_path: Path, data):
    VectorIndex.build(data[:50], threads=1).save(tmp_path / "tags")
    (tmp_path / "tags.hnsw").unlink()
    with pytest.raises(BundleError, match=r"tags\.hnsw"):
        VectorIndex.load(tmp_path / "tags")


@pytest.mark.parametrize("text", ["{not json", '{"dim": 24}', '{"dim": 24, "count": 50, "colour": "red"}'])
def test_unreadable_sidecar_is_a_bundle_error(tmp_path: Path, data, text):
    VectorIndex.build(data[:50], threads=1).save(tmp_path / "s")
    (tmp_path / "s.json").write_text(text)
    with pytest.raises(BundleError, match=r"s\.json"):
        VectorIndex.load(tmp_path / "s")


def test_sidecar_count_disagreeing_with_index_is_a_bundle_error(tmp_path: Path, data):
    VectorIndex.build(data[:50], threads=1).save(tmp_path / "c")
    sidecar = json.loads((tmp_path / "c.json").read_text())
    sidecar["count"] = 60
    (tmp_path / "c.json").write_text(json.dumps(sidecar))
    with pytest.raises(BundleError, match="60"):
        VectorIndex.load(tmp_path / "c")


# ---- exact search ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("space", ["cosine", "l2", "ip"])
def test_exact_search_matches_naive(space):
    rng = np.random.default_rng(8)
    matrix = rng.standard_normal((60, 7)).astype(np.float32)
    qs = rng.standard_normal((5, 7)).astype(np.float32)
    found = exact_search(matrix, qs, 6, space=space)
    assert found.ids.shape == (5, 6) and found.distances.shape == (5, 6)
    for row, q in enumerate(qs):
        dist = naive(matrix, q, space)
        order = np.argsort(dist, kind="stable")[:6]
        np.testing.assert_array_equal(found.ids[row], order)
        np.testing.assert_allclose(found.distances[row], dist[order], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k", [9, 10, 500])
def test_exact_search_k_at_or_above_count_returns_all_sorted(k):
    rng = np.random.default_rng(9)
    matrix = rng.standard_normal((9, 4)).astype(np.float32)
    q = rng.standard_normal(4).astype(np.float32)
    found = exact_search(matrix, q, k)
    dist = naive(matrix, q, "cosine")
    np.testing.assert_array_equal(found.ids[0], np.argsort(dist))
    np.testing.assert_allclose(found.distances[0], np.sort(dist), atol=1e-5)


def test_exact_search_unknown_space_is_refused():
    with pytest.raises(BadArgumentError):
        exact_search(np.eye(3, dtype=np.float32), np.ones(3, np.float32), 1, space="hamming")
