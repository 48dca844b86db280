"""Ray: the Ray build's photos/s against the single-process build, and sharded indexes against one index.

    python -m bench.bench_ray            # 256 Tux Paint photos, EfficientNet-Lite0 (offline); 20,000 vectors
    python -m bench.bench_ray --quick    # 64 photos, 5,000 vectors, fewer rounds
    python -m bench.bench_ray --write    # also update section 7 of docs/benchmarks.md

Part 1, extraction: the same photos through :func:`searchcore.build.extract.extract_collection` (one process) and
:func:`searchcore.build.ray_extract.extract_collection_ray` with 1 and 2 backbone actors on a local Ray started once
(its start is timed apart), interleaved per round, each run into a fresh work folder so nothing is resumed. A Ray
run's time includes its actors starting and loading the model, which every real run pays once; a run over 16
photos measures that fixed cost, so the steady rate can be given apart. Every run's features are checked against
the single-process ones.

Part 2, sharded search: one hnswlib index over random unit vectors against the same vectors in 2, 4 and 8 shards
(:class:`searchcore.shards.ShardedIndex`), same M and ef_construction, each at the smallest ef that reaches the
same recall@10 against exact search (``--recall``, default 0.95); batch-1 query latency, median over all queries.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import common


def photos(count: int):
    from searchcore.collection import Collection, load_collection

    full = load_collection("tuxpaint")
    return Collection(full.name, full.root, full.items[:count])


def extraction(backbone_spec: str, count: int, small: int, reps: int) -> dict[str, Any]:
    """Each way over ``small`` and over ``count`` photos: the small run is mostly fixed cost (a Ray run's actors
    start and load the model), the difference gives the steady rate, (count − small) ÷ (t_count − t_small)."""
    import ray

    from searchcore.build.extract import extract_collection
    from searchcore.build.ray_extract import RayConfig, connect, extract_collection_ray
    from searchcore.models.backbones import load_backbone

    collections = {size: photos(size) for size in (small, count)}
    backbone = load_backbone(backbone_spec)
    started = time.perf_counter()
    connect(None)
    ray_start_s = time.perf_counter() - started
    tmp = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    reference: dict[int, np.ndarray] = {}

    def timed(size: int, run) -> float:
        work = tmp / f"w{time.monotonic_ns()}"
        t = time.perf_counter()
        result = run(collections[size], work)
        seconds = time.perf_counter() - t
        if size in reference:  # every way gives the single process's features
            np.testing.assert_allclose(result.features.features, reference[size], atol=1e-4, rtol=0)
        else:
            reference[size] = result.features.features
        shutil.rmtree(work, ignore_errors=True)
        return seconds

    ways = {"single process": lambda c, w: extract_collection(backbone, c, w),
            "Ray, 1 worker": lambda c, w: extract_collection_ray(backbone, c, w, RayConfig(workers=1)),
            "Ray, 2 workers": lambda c, w: extract_collection_ray(backbone, c, w, RayConfig(workers=2))}
    cases = {(name, size): (lambda size=size, run=run: timed(size, run))
             for name, run in ways.items() for size in (small, count)}
    try:
        runs = common.interleaved(cases, reps=reps, log=common.log)
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = {}
    for name in ways:
        full, few = common.median(runs[(name, count)]), common.median(runs[(name, small)])
        # noise can make the small run as slow as the full one: then there is no steady rate to report
        steady = (count - small) / (full - few) if full > few * 1.05 else None
        rows[name] = {"seconds": full, "range": common.spread(runs[(name, count)]), "photos_per_s": count / full,
                      "small_seconds": few, "steady_photos_per_s": steady}
    return {"backbone": backbone.spec, "photos": count, "small": small, "ray_start_s": ray_start_s, "runs": rows}


EFS = (10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 384, 512)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth)]))


def sharding(count: int, dim: int, queries: int, target: float) -> dict[str, Any]:
    """Per shard count: the smallest ef whose recall@10 reaches ``target``, and the batch-1 latency at that ef.

    Every shard is searched with the same ef, so more shards search more candidates in all; comparing at equal
    recall, not equal ef, is what says whether sharding costs query time.
    """
    from searchcore.index import VectorIndex, exact_search
    from searchcore.shards import ShardedIndex

    rng = np.random.default_rng(0)
    data = rng.standard_normal((count, dim)).astype(np.float32)
    qs = rng.standard_normal((queries, dim)).astype(np.float32)
    truth = exact_search(data, qs, 10).ids
    rows = {}
    for shards in (1, 2, 4, 8):
        t = time.perf_counter()
        index = VectorIndex.build(data) if shards == 1 else ShardedIndex.build(data, -(-count // shards))
        build_s = time.perf_counter() - t
        for ef in EFS:
            index.ef = ef
            recall = _recall(index.query(qs, 10).ids, truth)
            if recall >= target:
                break
        latency = []
        for q in qs:
            t = time.perf_counter()
            index.query(q, 10)
            latency.append(time.perf_counter() - t)
        rows[shards] = {"build_s": build_s, "ef": ef, "query_ms": 1e3 * common.median(latency),
                        "recall_at_10": recall}
    return {"vectors": count, "dim": dim, "queries": queries, "target": target, "runs": rows}


def render(res: dict[str, Any]) -> str:
    ext = res["extraction"]
    single = ext["runs"]["single process"]["seconds"]
    steady = ext["runs"]["single process"]["steady_photos_per_s"]
    rows = [[name, f"{common.fmt(r['seconds'])} s", f"{common.fmt(r['range'][0])}–{common.fmt(r['range'][1])} s",
             common.fmt(r["photos_per_s"]), common.fmt(single / r["seconds"]), f"{common.fmt(r['small_seconds'])} s",
             common.fmt(r["steady_photos_per_s"]),
             common.fmt(r["steady_photos_per_s"] / steady if r["steady_photos_per_s"] and steady else None)]
            for name, r in ext["runs"].items()]
    shard = res["sharding"]
    one = shard["runs"][1]["query_ms"]
    srows = [[n, f"{common.fmt(r['build_s'])} s", r["ef"], common.fmt(r["recall_at_10"]),
              f"{common.fmt(r['query_ms'])} ms", common.fmt(r["query_ms"] / one)] for n, r in shard["runs"].items()]
    return "\n".join([
        f"Command: `{res['command']}`; load average {common.fmt(res['machine'].get('load_avg', [None])[0])} at the "
        "start.",
        "",
        f"**Extraction**: {ext['photos']} Tux Paint photos, backbone `{ext['backbone']}`, {res['reps']} interleaved "
        f"rounds; starting the local Ray took {common.fmt(ext['ray_start_s'])} s (not in the rows). *Fixed cost*: "
        f"the same build over {ext['small']} photos; *steady photos/s* = ({ext['photos']} − {ext['small']}) ÷ "
        "(time − fixed cost), the rate once actors are up (— where the two runs were too close to tell).",
        "",
        common.table(["build", "time (median)", "range", "photos/s", "vs single process", "fixed cost",
                      "steady photos/s", "steady vs single process"], rows),
        "",
        f"**Sharded search**: {shard['vectors']:,} random {shard['dim']}-d vectors, {shard['queries']} batch-1 "
        f"queries; each row at the smallest ef (per shard) whose recall@10 reaches {shard['target']}.",
        "",
        common.table(["shards", "build", "ef", "recall@10", "query (median)", "vs one index"], srows),
    ])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="tf_efficientnet_lite0@pypi", help="backbone spec (default offline)")
    parser.add_argument("--photos", type=int, default=None, help="photos to extract (default 256; --quick 64)")
    parser.add_argument("--vectors", type=int, default=None, help="vectors to index (default 20000; --quick 5000)")
    parser.add_argument("--recall", type=float, default=0.95, help="the recall@10 every index is tuned to")
    args = parser.parse_args(argv)
    reps = args.reps or (2 if args.quick else 3)
    count = args.photos or (64 if args.quick else 256)
    vectors = args.vectors or (5000 if args.quick else 20000)
    info = common.machine(with_torch=True)
    common.log(f"extraction: {count} photos, {reps} rounds on {os.cpu_count()} CPUs")
    result: dict[str, Any] = {"machine": info, "command": common.command("bench.bench_ray", argv), "reps": reps,
                              "extraction": extraction(args.backbone, count, 16, reps)}
    common.log(f"sharding: {vectors} vectors")
    result["sharding"] = sharding(vectors, 128, 200 if args.quick else 500, args.recall)
    text = render(result)
    print(text)
    common.emit_json("bench_ray", result)
    if args.write:
        common.write_section("bench_ray", text, "7. Ray", machine_info=info)
        common.log(f"wrote {common.DOC}")
    return result


if __name__ == "__main__":
    main()
