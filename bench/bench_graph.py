"""hnswlib's graph among near-copies: Text → Image at one synthetic size, its word-space photo indexes rebuilt with
more links per photo.

    python -m bench.bench_graph                                # 400,000 photos: the served indexes, M 16, 32, 48
    python -m bench.bench_graph --size 100000 --configs 16:200,48:400 --write

The bundles are bench_scale's synthetic enlargements (``python -m bench.bench_scale --sizes N --build-only`` builds
them): every real photo has about N/429 near-copies. Text → Image reads two hnswlib indexes, the head's and ConSE's
(:func:`searchcore.build.write.rebuild_semantic` builds them with hnswlib's M = 16 links per photo), and its threshold
algorithm (:mod:`searchcore.topk`) takes an index's last cosine as the most a photo it did not give can have. Where
hnswlib's graph search stays among the copies of one photo, that bound is too low, and a query can miss its best
photos; a denser graph finds more of them, and then bounds less tightly. This benchmark measures that trade.

Each configuration ``M:ef_construction`` rebuilds the two indexes in memory from the bundle's stored rows
(:meth:`searchcore.index.VectorIndex.build`, the build's own call; the rest of the bundle is untouched), beside the
bundle's own indexes ("served"). Then, in one process, per configuration: recall@10 of the served Text → Image
against the exact score over every photo (bench_scale's 19 queries and its exact score,
:class:`bench.bench_scale.ExactText`), the indexes' first read against exact cosine
(:func:`bench.bench_scale.index_first_read`), and Text → Image's time on bench_scale's 8 queries, the configurations
interleaved round by round (each call timed alone).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from . import common
from .bench_scale import RECALL_QUERIES, TEXT_QUERIES, ExactText, K, index_first_read, ms, percentile, scale_dir
from .bench_training import code_version, use_cache

NAMES = ("semantic", "conse")  # the photo indexes Text → Image reads
DEFAULT_CONFIGS = "16:200,32:400,48:400"


def configurations(engine: Any, spec: str) -> dict[str, dict[str, Any]]:
    """The bundle's own indexes, then each ``M:ef_construction`` of ``spec`` built anew from the same rows."""
    from searchcore.index import VectorIndex

    served = {name: engine.bundle.indexes[name] for name in NAMES}
    info = served["semantic"].info
    out = {f"served (M {info.M}, ef_construction {info.ef_construction})": {"indexes": served, "build_s": None}}
    for item in spec.split(","):
        m, construction = (int(x) for x in item.split(":"))
        t = time.perf_counter()
        indexes = {name: VectorIndex.build(np.asarray(engine.bundle.rows[name], np.float32), M=m,
                                           ef_construction=construction, what=f"{name}, M {m}") for name in NAMES}
        label = f"M {m}, ef_construction {construction}"
        out[label] = {"indexes": indexes, "build_s": time.perf_counter() - t}
        common.log(f"{label}: both indexes built in {out[label]['build_s']:.0f} s")
    return out


def measure(engine: Any, configs: dict[str, dict[str, Any]], reps: int) -> dict[str, dict[str, Any]]:
    exactly = ExactText(engine)
    tops = {q: np.argsort(-exactly.scores(q)[0], kind="stable")[:K] for q in RECALL_QUERIES}
    vectors = {q: exactly.vectors(q) for q in RECALL_QUERIES}
    results: dict[str, dict[str, Any]] = {}
    for label, config in configs.items():
        engine.bundle.indexes.update(config["indexes"])
        recalls = {q: len({h.id for h in engine.search_images(q, K)} & set(tops[q].tolist())) / K
                   for q in RECALL_QUERIES}
        first = {name: [index_first_read(config["indexes"][name], exactly.rows[name], vectors[q][name])
                        for q in RECALL_QUERIES] for name in NAMES}
        results[label] = {"build_s": config["build_s"], "recall": float(np.mean(list(recalls.values()))),
                          "misses": {q: r for q, r in recalls.items() if r < 1.0},
                          "first_read": {name: {"recall": float(np.mean([f["recall"] for f in reads])),
                                                "none": sum(f["recall"] == 0 for f in reads)}
                                         for name, reads in first.items()},
                          "times": []}
        common.log(f"{label}: recall@{K} {results[label]['recall']:.3f}")
    del exactly
    for _ in range(reps):  # the configurations interleaved: a noisy neighbour slows them alike
        for label, config in configs.items():
            engine.bundle.indexes.update(config["indexes"])
            for query in TEXT_QUERIES:
                t = time.perf_counter()
                engine.search_images(query, K)
                results[label]["times"].append(time.perf_counter() - t)
    engine.bundle.indexes.update(next(iter(configs.values()))["indexes"])
    for result in results.values():
        times = result.pop("times")
        result |= {"p50_ms": 1000 * percentile(times, 50), "p95_ms": 1000 * percentile(times, 95),
                   "calls": len(times)}
    return results


def render(res: dict[str, Any]) -> str:
    size, rows = res["size"], []
    for label, r in res["results"].items():
        misses = ", ".join(f"`{q}` {x:.1f}" for q, x in sorted(r["misses"].items(), key=lambda x: x[1])) or "—"
        first = r["first_read"]
        rows.append([label, "—" if r["build_s"] is None else f"{common.fmt(r['build_s'])} s", f"{r['recall']:.3f}",
                     misses, *(f"{first[n]['recall']:.3f} · {first[n]['none']}/{len(RECALL_QUERIES)}" for n in NAMES),
                     ms(r["p50_ms"]), ms(r["p95_ms"])])
    return "\n".join([
        f"Command: `{res['command']}`",
        "",
        f"Machine: {common.machine_line(res['machine'])} Load average at the end: "
        f"{res['machine']['load_avg_end'][0]}.",
        "",
        f"Code: {res['code']}. hnswlib's graph among near-copies: the {size:,}-photo synthetic bundle of §12 (each "
        f"real photo about {size // 429:,} times, with 5 % noise), its two word-space photo indexes (the head's, "
        "ConSE's) as built and rebuilt in memory with more links per photo (M) and a wider construction search; "
        "everything else as served. *Recall@10*: the served Text → Image top 10 against the exact score over every "
        f"photo, {len(RECALL_QUERIES)} queries (§12's); *first read*: hnswlib's best 64 against the exact best 64 by "
        "cosine (share of the exact ids found · searches that found none of them), head · ConSE; *p50/p95*: "
        f"Text → Image on §12's {len(TEXT_QUERIES)} queries, {res['reps']} rounds, the configurations interleaved "
        "round by round, each call timed alone. `bench/bench_graph.py`'s docstring says why the bound and the graph "
        "pull apart.",
        "",
        common.table(["indexes", "build (both)", f"recall@{K}", "queries below 1", "first read, head",
                      "first read, ConSE", "p50", "p95"], rows),
    ])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from searchcore import load_engine

    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=400_000, help="the synthetic bundle's photo count (built by "
                        "bench_scale)")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated M:ef_construction pairs to "
                        f"rebuild the indexes with (default {DEFAULT_CONFIGS})")
    parser.add_argument("--cache", default=None, help="the benchmarks' cache folder (SEARCH_CACHE_DIR for this run)")
    args = parser.parse_args(argv)
    cache = use_cache(args.cache)
    size = 10_000 if args.quick and args.size == 400_000 else args.size
    root = scale_dir(cache, size)
    if not (root / "manifest.json").is_file():
        raise SystemExit(f"no synthetic bundle of {size:,} photos in {root}: build it first with "
                         f"`python -m bench.bench_scale --sizes {size} --build-only`")
    info = common.machine()
    engine = load_engine(root)
    reps = args.reps or (3 if args.quick else 10)
    results = measure(engine, configurations(engine, args.configs), reps)
    info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    res = {"machine": info, "command": common.command("bench.bench_graph", argv), "code": code_version(),
           "size": size, "reps": reps, "results": results}
    text = render(res)
    print(text)
    common.emit_json("bench_graph", res)
    if args.write:
        common.write_section("bench_graph", text, "12. Scale", after="bench_scale")
        common.log(f"wrote {common.DOC}")
    return res


if __name__ == "__main__":
    main()
