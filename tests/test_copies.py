"""Near-copies in a photo index (searchcore.copies): crowds of near-identical vectors become one graph node each, and a
search still answers every item, as exact search over all of them would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from searchcore.errors import BadArgumentError, BundleError
from searchcore.index import VectorIndex, copies_path, exact_search, unit_rows
from searchcore.shards import build_index, load_index, save_index

DISTANCE = 0.005  # the served setting (searchcore.build.write.COPIES)


@pytest.fixture(scope="module")
def crowds() -> np.ndarray:
    """40 crowds of 150 noisy copies of one vector each (cosine about 0.9998 within a crowd), interleaved as a tiled
    collection is, plus 300 distinct vectors."""
    rng = np.random.default_rng(0)
    centres = unit_rows(rng.standard_normal((40, 16)))
    tiled = np.tile(centres, (150, 1)) + 0.005 * rng.standard_normal((6000, 16))
    return np.vstack([tiled, rng.standard_normal((300, 16))]).astype(np.float32)


@pytest.fixture(scope="module")
def grouped(crowds) -> VectorIndex:
    return VectorIndex.build(crowds, copies=DISTANCE, threads=1)


def test_each_crowd_becomes_one_node_and_the_distinct_vectors_stay_nodes(grouped, crowds) -> None:
    assert len(grouped) == len(crowds)
    assert 340 <= grouped.nodes <= 360  # 40 crowds + 300 distinct vectors (a crowd may split at a round's edge)
    assert grouped.copies is not None and len(grouped.copies) == len(crowds) - grouped.nodes


def test_every_copy_lies_within_the_distance_of_its_node(grouped, crowds) -> None:
    table, data = grouped.copies, unit_rows(crowds)
    node_of = np.repeat(table.nodes, np.diff(table.offsets))
    cosines = (data[table.ids] * data[node_of]).sum(1)
    assert cosines.min() >= 1 - DISTANCE - 1e-6
    np.testing.assert_allclose(table.vectors, data[table.ids], atol=1e-6)


@pytest.mark.parametrize("k", [1, 10, 200, 1000])
def test_a_search_answers_what_exact_search_over_every_item_answers(grouped, crowds, k) -> None:
    queries = unit_rows(np.random.default_rng(1).standard_normal((30, 16)))
    found, exact = grouped.query(queries, k), exact_search(crowds, queries, k)
    assert found.ids.shape == (30, k)
    np.testing.assert_allclose(found.distances, exact.distances, atol=1e-5)
    data = unit_rows(crowds)  # and each distance is the item's own
    np.testing.assert_allclose(1 - found.distances, np.einsum("qkd,qd->qk", data[found.ids], queries), atol=1e-5)


def test_a_copy_nearer_the_query_than_its_node_is_found_past_a_better_node() -> None:
    """The node ranks below another node, but its copy ranks above both: the copy's reach brings it in."""
    def at(cosine: float, axis: int) -> np.ndarray:
        row = np.zeros(8, np.float32)
        row[0], row[axis] = cosine, np.sqrt(1 - cosine**2)
        return row

    node, copy, other = at(0.895, 1), at(0.905, 1), at(0.900, 2)  # the copy is 0.00026 from its node
    index = VectorIndex.build(np.stack([node, copy, other]), copies=DISTANCE, threads=1)
    assert index.nodes == 2
    found = index.query(np.eye(8, dtype=np.float32)[0], 1)
    assert found.ids[0].tolist() == [1]


def test_get_and_vectors_give_copies_and_nodes_alike(grouped, crowds) -> None:
    data = unit_rows(crowds)
    ids = np.random.default_rng(2).choice(len(crowds), 500, replace=False)
    np.testing.assert_allclose(grouped.get(ids), data[ids], atol=1e-6)
    np.testing.assert_allclose(grouped.vectors(), data, atol=1e-6)


def test_saved_and_loaded_it_answers_the_same(grouped, crowds, tmp_path: Path) -> None:
    grouped.save(tmp_path / "semantic")
    loaded = VectorIndex.load(tmp_path / "semantic")
    assert (loaded.nodes, len(loaded)) == (grouped.nodes, len(grouped))
    queries = unit_rows(np.random.default_rng(3).standard_normal((10, 16)))
    np.testing.assert_array_equal(loaded.query(queries, 50).ids, grouped.query(queries, 50).ids)


def test_a_missing_or_truncated_list_of_copies_is_a_bundle_error(grouped, tmp_path: Path) -> None:
    grouped.save(tmp_path / "semantic")
    path = copies_path(tmp_path / "semantic")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=r"semantic\.copies\.npz.*build_assets"):
        VectorIndex.load(tmp_path / "semantic")
    path.unlink()
    with pytest.raises(BundleError, match=r"semantic\.copies\.npz.*missing"):
        VectorIndex.load(tmp_path / "semantic")


def test_without_copies_nothing_changes(tmp_path: Path) -> None:
    """Distinct vectors: no list of copies is written, and the index is the plain one."""
    data = np.random.default_rng(4).standard_normal((500, 16)).astype(np.float32)
    index = VectorIndex.build(data, copies=DISTANCE, threads=1)
    assert index.copies is None and index.nodes == len(index) == 500
    index.save(tmp_path / "plain")
    assert not copies_path(tmp_path / "plain").exists()
    plain = VectorIndex.build(data, threads=1)
    queries = np.random.default_rng(5).standard_normal((10, 16)).astype(np.float32)
    np.testing.assert_array_equal(index.query(queries, 20).ids, plain.query(queries, 20).ids)


def test_shards_list_their_own_copies(crowds, tmp_path: Path) -> None:
    sharded = build_index(crowds, shard_size=2500, copies=DISTANCE, threads=1)
    save_index(sharded, tmp_path / "conse")
    loaded = load_index(tmp_path / "conse")
    assert 340 <= loaded.nodes < 600 and len(loaded) == len(crowds)  # each of 3 shards has its own nodes
    queries = unit_rows(np.random.default_rng(6).standard_normal((10, 16)))
    np.testing.assert_allclose(loaded.query(queries, 30).distances, exact_search(crowds, queries, 30).distances,
                               atol=1e-5)
    save_index(build_index(crowds, threads=1), tmp_path / "conse")  # a rebuild without copies leaves none behind
    assert not list(tmp_path.glob("conse*.copies.npz"))


def test_only_cosine_space_lists_copies(crowds) -> None:
    with pytest.raises(BadArgumentError, match="cosine"):
        VectorIndex.build(crowds, space="l2", copies=DISTANCE)


def test_the_word_space_photo_indexes_of_the_real_bundle_list_copies(offline_engine) -> None:
    """The head places photos of one meaning within a hair of each other: the real bundle has such crowds, and every
    photo stays findable (its own row finds it first)."""
    bundle = offline_engine.bundle
    for name in ("semantic", "conse"):
        index = bundle.indexes[name]
        assert index.nodes < len(bundle.items), name
        rows = bundle.rows[name]
        found = index.query(rows, 1)
        exact = exact_search(rows, rows, 1)
        np.testing.assert_allclose(found.distances, exact.distances, atol=1e-5)
