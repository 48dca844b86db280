"""Tests for the Ray build (searchcore.build.ray_extract, ``training.build_assets --ray``) on a local 2-CPU Ray.

One Ray is started for the whole module (a start costs seconds); every build here joins it. The collection is the
tiny synthetic one plus one corrupt photo; the backbone is the tiny random timm model, seeded, so the driver and
each Ray actor load the same weights. That Ray is started by the project's own code (``connect``), so the tests see
the local Ray a build starts: on loopback only.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from _synthetic import TINY_BACKBONE, make_photos, write_word_table

from searchcore import bundle as B
from searchcore.build.extract import chunk_path, extract_collection, write_chunk
from searchcore.build.ray_extract import DEAD_PROXY, RayConfig, connect, extract_collection_ray, init_options, local_env
from searchcore.collection import folder_collection
from searchcore.index import exact_search
from searchcore.models.backbones import load_backbone
from searchcore.serve.engine import load_engine
from searchcore.shards import ShardedIndex, build_index

# nothing to test without it; found, not imported: connect() imports ray itself, after setting what ray reads then
if importlib.util.find_spec("ray") is None:
    pytest.skip("ray is not installed", allow_module_level=True)

CORRUPT = "cat/cat_1b.png"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    # the module's own Ray: the builds below join it instead of starting one; connect() imports ray first
    assert connect(None, num_cpus=2)
    import ray

    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> tuple[Path, Path]:
    """(9 photos in 3 class folders + 1 corrupt one, a synthetic word-vector folder in the cache format)."""
    base = tmp_path_factory.mktemp("ray-sources")
    photos = make_photos(base / "photos")
    (photos / CORRUPT).write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return photos, write_word_table(base / "words")


@pytest.fixture(scope="module")
def backbone():
    return load_backbone(TINY_BACKBONE)


def build(sources: tuple[Path, Path], out: Path, *extra: str) -> dict:
    from training import build_assets

    photos, words = sources
    args = ["--collection", str(photos), "--out", str(out), "--backbone", TINY_BACKBONE, "--words", str(words),
            "--word-vocab", "20", *extra]
    assert build_assets.main(args) == 0
    return json.loads((out / B.MANIFEST).read_text(encoding="utf-8"))


def test_cli_ray_build_makes_the_same_bundle_and_lists_the_corrupt_photo(sources, tmp_path, capsys):
    single = build(sources, tmp_path / "single")
    capsys.readouterr()
    distributed = build(sources, tmp_path / "ray", "--ray", "--ray-workers", "1")
    summary = json.loads(capsys.readouterr().out)

    one, two = B.open_bundle(tmp_path / "single"), B.open_bundle(tmp_path / "ray")
    assert [(it.id, it.path, it.label) for it in two.items] == [(it.id, it.path, it.label) for it in one.items]
    assert len(two.items) == 9
    np.testing.assert_allclose(two.features, one.features, atol=1e-5, rtol=0)
    for key in ("backbone", "feature_dim", "count"):
        assert distributed.get(key) == single.get(key), key
    # the corrupt photo: skipped, and listed with the same reason, in the summary and in the manifest
    assert [s["path"] for s in summary["skipped"]] == [CORRUPT]
    assert distributed["build"]["skipped"] == single["build"]["skipped"]
    assert distributed["build"]["ray"]["workers"] == 1 and "ray" not in single["build"]
    assert not (tmp_path / "ray" / ".extract").exists()  # the chunk cache is cleared as after any build
    # the same neighbours from both bundles' image indexes
    query = one.features[:3]
    assert np.array_equal(two.indexes["images"].query(query, 4).ids, one.indexes["images"].query(query, 4).ids)


def test_interrupted_ray_run_resumes_without_redoing_chunks(sources, backbone, tmp_path):
    collection = folder_collection(sources[0])
    assert len(collection) == 10  # 4 chunks of 3: 3, 3, 3, 1
    work = tmp_path / "work"
    folder = work / ".extract"
    # one chunk from the single-process build, one from Ray: the two kinds of run share one cache
    with pytest.raises(InterruptedError):
        extract_collection(backbone, collection, work, chunk_size=3, stop_after_chunks=1)
    with pytest.raises(InterruptedError):
        extract_collection_ray(backbone, collection, work, RayConfig(workers=1), chunk_size=3, stop_after_chunks=1)
    finished = sorted(folder.glob("chunk-*.npz"))
    assert len(finished) == 2 and chunk_path(folder, 0) in finished
    (ray_chunk,) = [p for p in finished if p != chunk_path(folder, 0)]
    written = ray_chunk.stat().st_mtime_ns
    # a marker in the first chunk: if the resumed run recomputed it, the marker would be gone
    with np.load(chunk_path(folder, 0)) as chunk:
        marked = {name: chunk[name] for name in ("features", "logits", "ok", "errors")}
    write_chunk(chunk_path(folder, 0), np.full_like(marked["features"], 42.0), marked["logits"], marked["ok"],
                [str(e) for e in marked["errors"]])

    seen: list[tuple[int, int]] = []
    resumed = extract_collection_ray(backbone, collection, work, RayConfig(workers=2), chunk_size=3,
                                     progress=lambda done, n: seen.append((done, n)))
    ray_rows = 1 if ray_chunk == chunk_path(folder, 9) else 3
    assert seen[0] == (3 + ray_rows, 10) and seen[-1] == (10, 10)  # began after the finished chunks
    assert ray_chunk.stat().st_mtime_ns == written  # not rewritten
    assert len(list(folder.glob("chunk-*.npz"))) == 4

    fresh = extract_collection(backbone, collection, tmp_path / "fresh", chunk_size=3)
    assert [it.path for it in resumed.collection.items] == [it.path for it in fresh.collection.items]
    assert [(it.path, why) for it, why in resumed.skipped] == [(it.path, why) for it, why in fresh.skipped]
    assert [it.path for it, _ in resumed.skipped] == [CORRUPT]
    readable_in_first = int(marked["ok"].sum())
    assert (resumed.features.features[:readable_in_first] == 42.0).all()  # the marked chunk was kept as it was
    np.testing.assert_allclose(resumed.features.features[readable_in_first:],
                               fresh.features.features[readable_in_first:], atol=1e-5, rtol=0)
    np.testing.assert_allclose(resumed.features.logits, fresh.features.logits, atol=1e-4, rtol=0)


def test_ray_workers_without_ray_is_refused(sources, tmp_path, capsys):
    from training import build_assets

    photos, words = sources
    with pytest.raises(SystemExit) as exit_info:
        build_assets.main(["--collection", str(photos), "--out", str(tmp_path / "b"), "--words", str(words),
                           "--ray-workers", "2"])
    assert exit_info.value.code == 2
    assert "--ray-workers needs --ray" in capsys.readouterr().err


def test_shards_built_as_ray_tasks_equal_the_sequential_ones(tmp_path):
    from searchcore.build.ray_extract import ray_map

    rng = np.random.default_rng(7)
    vectors, queries = rng.standard_normal((300, 16)).astype(np.float32), rng.standard_normal((25, 16)).astype(
        np.float32)
    options = {"shard_size": 64, "what": "test vectors", "ef": 600}  # ef above the count: hnswlib is exact
    sequential, on_ray = build_index(vectors, **options), build_index(vectors, map_fn=ray_map, **options)
    assert isinstance(on_ray, ShardedIndex) and on_ray.shard_size == sequential.shard_size == 64
    assert [len(s) for s in on_ray.shards] == [len(s) for s in sequential.shards] == [64, 64, 64, 64, 44]
    assert on_ray.info == sequential.info
    assert [s.info for s in on_ray.shards] == [s.info for s in sequential.shards]
    for k in (1, 10, 100):
        got, want = on_ray.query(queries, k), sequential.query(queries, k)
        np.testing.assert_array_equal(got.ids, want.ids)
        np.testing.assert_array_equal(got.ids, exact_search(vectors, queries, k).ids)
        np.testing.assert_allclose(got.distances, want.distances, atol=1e-6)
    ids = [299, 0, 65, 64, 130, 5]  # across shards, out of order
    np.testing.assert_array_equal(on_ray.get(ids), sequential.get(ids))
    np.testing.assert_array_equal(on_ray.vectors(), sequential.vectors())
    # saved: the same sidecars, the whole index's and each shard's
    on_ray.save(tmp_path / "ray" / "images")
    sequential.save(tmp_path / "seq" / "images")
    sidecars = sorted(p.name for p in (tmp_path / "seq").glob("*.json"))
    assert len(sidecars) == 6 and sorted(p.name for p in (tmp_path / "ray").glob("*.json")) == sidecars
    for name in sidecars:
        assert (tmp_path / "ray" / name).read_text(encoding="utf-8") == (tmp_path / "seq" / name).read_text(
            encoding="utf-8"), name


def test_cli_ray_sharded_build_uses_ray_tasks_and_answers_like_one_index(sources, backbone, tmp_path, monkeypatch):
    from searchcore.build import ray_extract

    calls: list[int] = []
    real = ray_extract.ray_map

    def spy(fn, items, **kwargs):  # ray_map, counted: the shards of each photo index go through it
        items = list(items)
        calls.append(len(items))
        return real(fn, items, **kwargs)

    monkeypatch.setattr(ray_extract, "ray_map", spy)
    plain = build(sources, tmp_path / "plain")
    assert calls == []  # no Ray, no shards: nothing mapped on Ray
    sharded = build(sources, tmp_path / "sharded", "--ray", "--ray-workers", "1", "--shard-size", "4")
    assert calls == [3, 3, 3]  # images, semantic, conse: 4 + 4 + 1 photos each
    assert sharded["shard_size"] == 4 and "shard_size" not in plain
    assert sharded["count"] == plain["count"] == 9
    bundle = B.open_bundle(tmp_path / "sharded")
    for name in ("images", "semantic", "conse"):
        assert [len(s) for s in bundle.indexes[name].shards] == [4, 4, 1], name

    collection = folder_collection(sources[0])
    one, many = load_engine(tmp_path / "plain", backbone=backbone), load_engine(tmp_path / "sharded",
                                                                                 backbone=backbone)
    photo = collection.path(collection.items[4])
    for k in (3, 9):
        assert [h.id for h in many.similar_images(photo, k)] == [h.id for h in one.similar_images(photo, k)]
        assert [h.id for h in many.search_images("cat", k)] == [h.id for h in one.search_images("cat", k)]
    assert [w.word for w in many.tag_image(photo, 5)] == [w.word for w in one.tag_image(photo, 5)]


# ---- a local Ray stays on loopback ----------------------------------------------------------------------------------
def test_the_local_ray_serves_on_loopback_only():
    """The module's Ray, started by connect(None): its one node's address (what every Ray process binds and is
    reached at) is 127.0.0.1, in the driver and in a worker, not the machine's outward address."""
    import ray

    assert [node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]] == ["127.0.0.1"]
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    assert ray.get(ray.remote(ray.util.get_node_ip_address).remote()) == "127.0.0.1"
    # Ray's dashboard process (started even without the dashboard) has the environment that keeps its usage report
    # and its cloud probes off; this process got its own back
    import psutil

    dashboards = [proc for proc in psutil.Process().children(recursive=True)
                  if any(part.endswith("dashboard.py") for part in proc.cmdline())]
    assert dashboards, [proc.cmdline()[:2] for proc in psutil.Process().children(recursive=True)]
    applied = local_env(os.environ)  # what connect() set: what this environment lacks (restored since)
    for proc in dashboards:
        env = proc.environ()
        assert {name: env.get(name) for name in applied} == applied, env
        assert env.get("RAY_USAGE_STATS_ENABLED", "0") == os.environ.get("RAY_USAGE_STATS_ENABLED", "0")
    assert os.environ.get("http_proxy") != DEAD_PROXY


def test_a_local_ray_is_started_without_dashboard_usage_report_or_cloud_probe():
    changes = local_env({})
    assert changes["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0" and changes["RAY_USAGE_STATS_ENABLED"] == "0"
    assert changes["http_proxy"] == changes["HTTP_PROXY"] == DEAD_PROXY and DEAD_PROXY.startswith("http://127.0.0.1:")
    assert set(changes["no_proxy"].split(",")) >= {"127.0.0.1", "localhost", "::1"} and \
        changes["NO_PROXY"] == changes["no_proxy"]
    options = init_options(None, 2)
    assert options["num_cpus"] == 2 and options["include_dashboard"] is False
    assert options["dashboard_host"] == "127.0.0.1" and "address" not in options


def test_what_the_user_set_wins_and_a_cluster_is_joined_as_it_is():
    user = {"RAY_USAGE_STATS_ENABLED": "1", "HTTP_PROXY": "http://proxy.example:3128", "no_proxy": "intranet"}
    changes = local_env(user)
    assert "RAY_USAGE_STATS_ENABLED" not in changes  # asked for: kept
    assert not {"http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"} & set(changes)  # their proxy routes HTTP
    assert changes["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    kept = local_env({"no_proxy": "intranet"})["no_proxy"].split(",")
    assert kept[0] == "intranet" and "127.0.0.1" in kept  # their exceptions kept, loopback added
    options = init_options("head:6379")
    assert options["address"] == "head:6379" and "num_cpus" not in options and "dashboard_host" not in options
