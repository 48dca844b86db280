"""Tests for the bundles that fit: sharded indexes (searchcore.shards, ``shard_size``) and float16 storage.

Small sets with ``ef`` above the item count, where hnswlib's search is exact: a sharded index must return what one
index and brute-force search return. The bundle tests use the tiny synthetic collection and random timm model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _synthetic import TINY_BACKBONE, make_photos, write_word_table

from searchcore import bundle as B
from searchcore.build.write import write_bundle
from searchcore.collection import folder_collection
from searchcore.errors import BadArgumentError
from searchcore.index import VectorIndex, exact_search
from searchcore.models.backbones import load_backbone
from searchcore.models.words import load_word_vectors
from searchcore.serve.engine import load_engine
from searchcore.shards import ShardedIndex, build_index, load_index, save_index

N, DIM, SHARD = 300, 16, 64  # 5 shards, the last one short (44)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.standard_normal((N, DIM)).astype(np.float32), rng.standard_normal((25, DIM)).astype(np.float32)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("k", [1, 10, 100])  # 100: more than one shard holds
def test_sharded_top_k_equals_one_index_and_exact_search(data, k):
    vectors, queries = data
    sharded = ShardedIndex.build(vectors, SHARD, ef=2 * N)
    single = VectorIndex.build(vectors, ef=2 * N)
    assert [len(s) for s in sharded.shards] == [64, 64, 64, 64, 44] and len(sharded) == N
    got, one, exact = sharded.query(queries, k), single.query(queries, k), exact_search(vectors, queries, k)
    assert got.ids.shape == (len(queries), k)
    np.testing.assert_array_equal(got.ids, exact.ids)
    np.testing.assert_array_equal(got.ids, one.ids)
    np.testing.assert_allclose(got.distances, exact.distances, atol=1e-5)


def test_sharded_get_and_vectors_match_one_index(data):
    vectors, _ = data
    sharded, single = ShardedIndex.build(vectors, SHARD), VectorIndex.build(vectors)
    ids = [299, 0, 65, 64, 130, 5]  # across shards, out of order
    np.testing.assert_allclose(sharded.get(ids), single.get(ids), atol=1e-6)
    np.testing.assert_allclose(sharded.vectors(), single.vectors(), atol=1e-6)
    sharded.ef = 50
    assert sharded.ef == 50 and all(s.ef == 50 for s in sharded.shards)


def test_save_load_either_kind_and_no_stale_files(data, tmp_path):
    vectors, queries = data
    base = tmp_path / "indexes" / "images"
    save_index(build_index(vectors, shard_size=SHARD, ef=2 * N), base)
    loaded = load_index(base)
    assert isinstance(loaded, ShardedIndex) and loaded.ef == 2 * N
    assert sorted(p.name for p in base.parent.iterdir()) == sorted(
        ["images.json", *(f"images-{i:05d}.{ext}" for i in range(5) for ext in ("hnsw", "json"))])
    np.testing.assert_array_equal(loaded.query(queries, 10).ids, exact_search(vectors, queries, 10).ids)
    # the same place, now one index: today's two files and nothing left of the shards
    save_index(build_index(vectors, shard_size=N, ef=2 * N), base)
    assert sorted(p.name for p in base.parent.iterdir()) == ["images.hnsw", "images.json"]
    assert isinstance(load_index(base), VectorIndex)
    assert "shards" not in json.loads(base.with_suffix(".json").read_text(encoding="utf-8"))


def test_map_fn_builds_the_shards_and_the_index_is_the_same(data):
    vectors, queries = data
    jobs: list[int] = []

    def backwards(fn, slices):  # a stand-in for a parallel map: every shard built, out of order, results in order
        slices = list(slices)
        jobs.append(len(slices))
        built = {i: fn(job) for i, job in reversed(list(enumerate(slices)))}
        return [built[i] for i in range(len(slices))]

    mapped = build_index(vectors, shard_size=SHARD, what="v", ef=2 * N, map_fn=backwards)
    plain = build_index(vectors, shard_size=SHARD, what="v", ef=2 * N)
    assert jobs == [5] and mapped.info == plain.info
    assert [s.info for s in mapped.shards] == [s.info for s in plain.shards]
    np.testing.assert_array_equal(mapped.query(queries, 20).ids, plain.query(queries, 20).ids)
    np.testing.assert_array_equal(mapped.vectors(), plain.vectors())
    assert isinstance(build_index(vectors, shard_size=N, map_fn=backwards), VectorIndex) and jobs == [5]


def test_build_index_keeps_one_index_when_one_shard_holds_everything(data):
    vectors, _ = data
    assert isinstance(build_index(vectors), VectorIndex)
    assert isinstance(build_index(vectors, shard_size=N), VectorIndex)
    with pytest.raises(BadArgumentError):
        ShardedIndex.build(vectors, 0)


# ---- bundles -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    base = tmp_path_factory.mktemp("shards")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEARCH_CACHE_DIR", str(base / "cache"))
        collection = folder_collection(make_photos(base / "photos"), name="tiny")
        words_dir = write_word_table(base / "words")
        backbone = load_backbone(TINY_BACKBONE)
        feats = backbone.extract([collection.path(item) for item in collection.items])
        yield base, collection, backbone, load_word_vectors(str(words_dir)), feats


def bundle_at(parts, name: str, shard_size: int | None) -> Path:
    base, collection, backbone, words, feats = parts
    return Path(write_bundle(base / name, collection, feats, backbone.spec, backbone.class_names, words,
                             word_vocab=40, shard_size=shard_size))


def test_one_shard_bundle_is_todays_bundle(parts):
    plain, one = bundle_at(parts, "plain", None), bundle_at(parts, "one-shard", 9)  # 9 photos: one shard
    a, b = (json.loads((root / B.MANIFEST).read_text(encoding="utf-8")) for root in (plain, one))
    assert "shard_size" not in b
    assert sorted(a["files"]) == sorted(b["files"])
    for name in ("images", "semantic", "conse"):
        side = f"indexes/{name}.json"
        assert (plain / side).read_text(encoding="utf-8") == (one / side).read_text(encoding="utf-8")
        assert a["files"][f"indexes/{name}.hnsw"]["bytes"] == b["files"][f"indexes/{name}.hnsw"]["bytes"]


def test_sharded_bundle_loads_and_searches_like_the_unsharded_one(parts, tmp_path):
    plain, sharded = bundle_at(parts, "plain2", None), bundle_at(parts, "sharded", 4)  # 4 + 4 + 1
    manifest = json.loads((sharded / B.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["shard_size"] == 4
    bundle = B.open_bundle(sharded)
    for name in ("images", "semantic", "conse"):
        index = bundle.indexes[name]
        assert isinstance(index, ShardedIndex) and [len(s) for s in index.shards] == [4, 4, 1], name
        assert f"indexes/{name}-00002.hnsw" in manifest["files"]
    assert isinstance(bundle.indexes["words"], VectorIndex)  # only the photo indexes are sharded

    _, collection, backbone, _, _ = parts
    one, many = load_engine(plain, backbone=backbone), load_engine(sharded, backbone=backbone)
    photo = collection.path(collection.items[4])
    for k in (3, 9):
        assert [h.id for h in many.similar_images(photo, k)] == [h.id for h in one.similar_images(photo, k)]
        assert [h.id for h in many.search_images("cat", k)] == [h.id for h in one.search_images("cat", k)]
    assert [w.word for w in many.tag_image(photo, 5)] == [w.word for w in one.tag_image(photo, 5)]


def test_float16_bundle_halves_the_arrays_and_searches_alike(parts):
    base, collection, backbone, words, feats = parts
    plain, half = bundle_at(parts, "plain3", None), base / "half"
    write_bundle(half, collection, feats, backbone.spec, backbone.class_names, words, word_vocab=40, float16=True)
    assert np.load(half / B.FEATURES).dtype == np.float16 and np.load(half / B.LOGITS).dtype == np.float16
    assert json.loads((half / B.MANIFEST).read_text(encoding="utf-8"))["float16"] is True
    assert "float16" not in json.loads((plain / B.MANIFEST).read_text(encoding="utf-8"))
    assert (half / B.FEATURES).stat().st_size < 0.6 * (plain / B.FEATURES).stat().st_size
    bundle = B.open_bundle(half)
    assert bundle.features.dtype == np.float32  # widened on load
    np.testing.assert_allclose(bundle.features, feats.features, rtol=1e-3, atol=1e-3)
    one, other = load_engine(plain, backbone=backbone), load_engine(half, backbone=backbone)
    photo = collection.path(collection.items[2])
    assert [h.id for h in other.similar_images(photo, 9)] == [h.id for h in one.similar_images(photo, 9)]


def test_cli_records_shards_and_float16(parts, tmp_path):
    from training import build_assets

    base = parts[0]
    out = tmp_path / "bundle"
    assert build_assets.main(["--collection", str(base / "photos"), "--out", str(out), "--backbone", TINY_BACKBONE,
                              "--words", str(base / "words"), "--word-vocab", "20", "--shard-size", "5",
                              "--float16"]) == 0
    manifest = json.loads((out / B.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["shard_size"] == 5 and manifest["float16"] is True
    assert [len(s) for s in B.open_bundle(out).indexes["images"].shards] == [5, 4]
