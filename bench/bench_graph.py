"""How Text → Image reads the photos' word-space cosines, at one synthetic size: an ablation of the joint index and of
listing near-copies under one node.

    python -m bench.bench_graph                     # 400,000 photos
    python -m bench.bench_graph --size 100000 --write

The bundles are bench_scale's synthetic enlargements (``python -m bench.bench_scale --sizes N --build-only`` builds
them): every real photo has about N/429 near-copies. Text → Image's threshold algorithm (:mod:`searchcore.topk`)
reads the head's and ConSE's cosines best first from hnswlib and takes an index's last value as the most a photo it
did not give can have. Two things decide how well that works, and this benchmark takes each away in turn:

* *near-copies listed*: :mod:`searchcore.copies`. hnswlib's graph search cannot cross a crowd of near-identical
  vectors, so where every photo is a node a search can stay among one photo's copies and miss better ones (the
  bound is then too low and the query misses its best photos); listed under one node, the copies are expanded
  exactly;
* *joint index*: one index of [head row, ConSE row] reads the mixed cosine (1-m)·cos_head + m·cos_ConSE best first,
  where two indexes read apart bound it only by the sum of two different photos' cosines, and cost two searches.

Configurations: the bundle's own indexes (the served design: joint, copies listed), then with the joint index taken
away (the two indexes as built), then with the indexes rebuilt in memory with every photo a node
(:meth:`searchcore.index.VectorIndex.build` with ``copies=0``, the build's own call otherwise). In one process, per
configuration: recall@10 of the served Text → Image against the exact score over every photo (bench_scale's 19
queries and its exact score, :class:`bench.bench_scale.ExactText`), each read index's first read against the exact
cosine (:func:`bench.bench_scale.index_first_read`), and Text → Image's time on bench_scale's 8 queries, the
configurations interleaved round by round (each call timed alone).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from . import common
from .bench_scale import RECALL_QUERIES, TEXT_QUERIES, ExactText, K, index_first_read, ms, percentile, scale_dir
from .bench_training import code_version, use_cache

PAIR = ("semantic", "conse")  # the head's and ConSE's photo indexes
JOINT = "joint"
SERVED = "joint index, near-copies listed (served)"


def configurations(engine: Any) -> dict[str, dict[str, Any]]:
    """Which word-space photo indexes each configuration reads, and how long those rebuilt here took."""
    from searchcore.index import VectorIndex

    own = engine.bundle.indexes
    if JOINT not in own:
        raise SystemExit("this bundle has no joint index: rebuild it with python -m bench.bench_scale --build-only")

    def plain(name: str, rows: np.ndarray) -> tuple[Any, float]:
        t = time.perf_counter()
        index = VectorIndex.build(rows, what=f"{name}, every photo a node")
        common.log(f"{name} rebuilt with every photo a node in {time.perf_counter() - t:.0f} s")
        return index, time.perf_counter() - t

    rows = {name: np.asarray(engine.bundle.rows[name], np.float32) for name in PAIR}
    pair = {name: plain(name, rows[name]) for name in PAIR}
    joint, joint_s = plain(JOINT, np.hstack([rows["semantic"], rows["conse"]]))
    return {
        SERVED: {"indexes": {JOINT: own[JOINT], **{n: own[n] for n in PAIR}}, "build_s": None},
        "two indexes, near-copies listed": {"indexes": {n: own[n] for n in PAIR}, "build_s": None},
        "joint index, every photo a node": {"indexes": {JOINT: joint, **{n: own[n] for n in PAIR}}, "build_s": joint_s},
        "two indexes, every photo a node (the build before)": {"indexes": {n: pair[n][0] for n in PAIR},
                                                               "build_s": sum(pair[n][1] for n in PAIR)},
    }


def use(engine: Any, config: dict[str, Any]) -> None:
    engine.bundle.indexes.pop(JOINT, None)
    engine.bundle.indexes.update(config["indexes"])


def first_reads(config: dict[str, Any], exactly: ExactText) -> dict[str, dict[str, float]]:
    """Each index the configuration reads: its first read against the exact cosine, over the recall queries."""
    indexes = config["indexes"]
    reads: dict[str, list[dict[str, float]]] = {}
    for query in RECALL_QUERIES:
        for name, (rows, vector) in exactly.reads(query, JOINT in indexes).items():
            reads.setdefault(name, []).append(index_first_read(indexes[name], rows, vector))
    return {name: {"recall": float(np.mean([f["recall"] for f in found])), "none": sum(f["recall"] == 0 for f in found)}
            for name, found in reads.items()}


def measure(engine: Any, configs: dict[str, dict[str, Any]], reps: int) -> dict[str, dict[str, Any]]:
    exactly = ExactText(engine)
    tops = {q: np.argsort(-exactly.scores(q)[0], kind="stable")[:K] for q in RECALL_QUERIES}
    results: dict[str, dict[str, Any]] = {}
    for label, config in configs.items():
        use(engine, config)
        recalls = {q: len({h.id for h in engine.search_images(q, K)} & set(tops[q].tolist())) / K
                   for q in RECALL_QUERIES}
        read = [config["indexes"][JOINT]] if JOINT in config["indexes"] else [config["indexes"][n] for n in PAIR]
        results[label] = {"build_s": config["build_s"], "recall": float(np.mean(list(recalls.values()))),
                          "misses": {q: r for q, r in recalls.items() if r < 1.0},
                          "nodes": [index.nodes for index in read],
                          "first_read": first_reads(config, exactly), "times": []}
        common.log(f"{label}: recall@{K} {results[label]['recall']:.3f}")
    del exactly
    for _ in range(reps):  # the configurations interleaved: a noisy neighbour slows them alike
        for label, config in configs.items():
            use(engine, config)
            for query in TEXT_QUERIES:
                t = time.perf_counter()
                engine.search_images(query, K)
                results[label]["times"].append(time.perf_counter() - t)
    use(engine, configs[SERVED])
    for result in results.values():
        times = result.pop("times")
        result |= {"p50_ms": 1000 * percentile(times, 50), "p95_ms": 1000 * percentile(times, 95),
                   "calls": len(times)}
    return results


NAMED = {"semantic": "head", "conse": "ConSE", JOINT: "joint"}


def render(res: dict[str, Any]) -> str:
    size, rows = res["size"], []
    for label, r in res["results"].items():
        misses = ", ".join(f"`{q}` {x:.1f}" for q, x in sorted(r["misses"].items(), key=lambda x: x[1])) or "—"
        first = "; ".join(f"{NAMED[n]} {f['recall']:.3f} · {f['none']}/{len(RECALL_QUERIES)}"
                          for n, f in r["first_read"].items())
        rows.append([label, " + ".join(f"{n:,}" for n in r["nodes"]),
                     "—" if r["build_s"] is None else f"{common.fmt(r['build_s'])} s", f"{r['recall']:.3f}",
                     misses, first, ms(r["p50_ms"]), ms(r["p95_ms"])])
    return "\n".join([
        f"Command: `{res['command']}`",
        "",
        f"Machine: {common.machine_line(res['machine'])} Load average at the end: "
        f"{res['machine']['load_avg_end'][0]}.",
        "",
        f"Code: {res['code']}. How Text → Image reads the word-space cosines, taken apart: the {size:,}-photo "
        f"synthetic bundle of §12 (each real photo about {size // 429:,} times, with 5 % noise) with its own indexes "
        "(the joint index of head and ConSE rows side by side, near-copies listed under one node: "
        "`searchcore.copies`), without the joint index (its two indexes, the head's and ConSE's, read apart), and with "
        "the indexes rebuilt in memory with every photo a graph node, as before near-copies were listed; everything "
        f"else as served. *Nodes*: the photos in each read index's graph (of {size:,}); *build*: the rebuilt indexes' "
        f"time; *recall@10*: the served Text → Image top 10 against the exact score over every photo, "
        f"{len(RECALL_QUERIES)} queries (§12's); *first read*: each read index's best 64 against the exact best 64 by "
        "its cosine (share of the exact ids found · searches that found none of them); *p50/p95*: Text → Image on "
        f"§12's {len(TEXT_QUERIES)} queries, {res['reps']} rounds, the configurations interleaved round by round, each "
        "call timed alone. `bench/bench_graph.py`'s docstring says what each part is for.",
        "",
        common.table(["indexes read", "nodes", "build", f"recall@{K}", "queries below 1", "first read", "p50", "p95"],
                     rows),
    ])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from searchcore import load_engine

    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=400_000, help="the synthetic bundle's photo count (built by "
                        "bench_scale)")
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
    results = measure(engine, configurations(engine), reps)
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
