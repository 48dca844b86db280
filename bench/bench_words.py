"""Word search over the whole GloVe vocabulary: exact numpy vs hnswlib (searchcore.index.VectorIndex) vs Annoy.

    python -m bench.bench_words            # the documented run: all 400,000 GloVe 6B 50-d words (~5 min)
    python -m bench.bench_words --quick    # the first 100,000 words, fewer queries
    python -m bench.bench_words --write    # also update section 1 of docs/benchmarks.md

Queries are vocabulary vectors of randomly chosen words (nothing excluded, so each query's own word is among its
neighbours, as in the app's Text → Text tab). Ground truth is exact cosine search (searchcore.index.exact_search,
in batches). A returned word counts as a hit when its exact cosine distance is within 1e-5 of the 10th exact
neighbour's, so ties between equal vectors are not counted as misses.

Speed is single-query throughput, one query per call as the app does, measured interleaved (exact, every ef,
every search_k, round after round) with the median over rounds. Memory is the index's size on disk and the growth
of the resident set size (RSS) while building it and, in a fresh process, after loading it and querying.
"""

from __future__ import annotations

import gc
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import common

EFS = (10, 20, 40, 80, 160)
SEARCH_KS = (200, 2_000, 10_000, 30_000, 100_000)  # 200 = Annoy's default, n_trees * k
M, EF_CONSTRUCTION, N_TREES, K = 16, 200, 20, 10
TARGET_RECALL, TARGET_SPEEDUP = 0.99, 50.0
TIE_EPS = 1e-5


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def ground_truth(data: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k ids and cosine distances, 100 queries per matrix product (searchcore.index.exact_search)."""
    from searchcore.index import exact_search

    ids, dists = [], []
    for start in range(0, len(queries), 100):
        found = exact_search(data, queries[start : start + 100], k)
        ids.append(found.ids)
        dists.append(found.distances)
    return np.vstack(ids), np.vstack(dists)


def recall(found: list[np.ndarray], unit_data: np.ndarray, unit_queries: np.ndarray, gt_dist: np.ndarray
           ) -> float:
    """Share of returned ids whose exact cosine distance is no worse than the exact k-th neighbour's (+ epsilon)."""
    hits = 0
    for row, (ids, q) in enumerate(zip(found, unit_queries, strict=True)):
        ids = np.asarray(ids, dtype=np.int64)[:K]
        ids = ids[ids >= 0]
        dist = 1.0 - unit_data[ids] @ q
        hits += int((dist <= gt_dist[row, K - 1] + TIE_EPS).sum())
    return hits / (len(found) * K)


def id_recall(found: list[np.ndarray], gt_ids: np.ndarray) -> float:
    shared = [len(set(np.asarray(f)[:K].tolist()) & set(g.tolist())) for f, g in zip(found, gt_ids, strict=True)]
    return float(np.mean(shared)) / K


def per_query_timer(search: Callable[[np.ndarray], Any], queries: np.ndarray, budget_s: float,
                    offset: list[int]) -> Callable[[], float]:
    """A case for :func:`common.interleaved`: run queries one by one for about ``budget_s``; seconds per query."""

    def run() -> float:
        n, done = len(queries), 0
        start = time.perf_counter()
        while True:
            search(queries[(offset[0] + done) % n])
            done += 1
            elapsed = time.perf_counter() - start
            if elapsed >= budget_s or done >= n:
                break
        offset[0] = (offset[0] + done) % n  # next round continues with other queries
        return elapsed / done

    return run


def annoy_qps_at(recall_target: float, curve: list[tuple[float, float]]) -> float | None:
    """Annoy's queries/s at ``recall_target``, interpolated (log-linear) on its recall → qps Pareto front."""
    front = sorted((r, q) for r, q in curve if not any(r2 >= r and q2 > q for r2, q2 in curve))
    if front and recall_target <= front[0][0]:
        return front[0][1]  # Annoy is already past this recall at its fastest useful setting
    for (r0, q0), (r1, q1) in itertools.pairwise(front):
        if r0 <= recall_target <= r1:
            t = (recall_target - r0) / (r1 - r0) if r1 > r0 else 1.0
            return float(np.exp(np.log(q0) + t * (np.log(q1) - np.log(q0))))
    return None  # beyond Annoy's best measured recall


def hnsw_name(m: int, ef: int) -> str:
    return f"hnswlib ef={ef}" if m == M else f"hnswlib M={m} ef={ef}"


def verdict(rows: dict[str, dict[str, Any]], m: int) -> dict[str, Any]:
    """The targets for the hnswlib index of ``M=m``: the fastest ef that reaches the recall target, and Annoy."""
    mine = [r for r in rows.values() if r["kind"] == "hnswlib" and r["M"] == m]
    reaching = [r for r in mine if r["recall"] >= TARGET_RECALL]
    best = max(reaching, key=lambda r: r["speedup_vs_exact"]) if reaching else None
    return {
        "M": m,
        "recall_target": TARGET_RECALL,
        "speedup_target": TARGET_SPEEDUP,
        "hnsw_setting": best["setting"] if best else None,
        "hnsw_recall": best["recall"] if best else None,
        "hnsw_speedup": best["speedup_vs_exact"] if best else None,
        "speed_target_met": bool(best and best["speedup_vs_exact"] >= TARGET_SPEEDUP),
        "ahead_of_annoy_at_equal_recall": all(r["vs_annoy_same_recall"] > 1.0 for r in mine
                                              if r.get("vs_annoy_same_recall") is not None),
    }


_LOAD_CHILD = """
import json, time, numpy as np, psutil
proc = psutil.Process(); kind, path, dim, setting = {kind!r}, {path!r}, {dim}, {setting}
queries = np.load({queries!r})
before = proc.memory_info().rss; t = time.perf_counter()
if kind == "hnswlib":
    from searchcore.index import VectorIndex
    index = VectorIndex.load(path); index.ef = setting; search = lambda q: index.query(q, 10)
else:
    import annoy
    index = annoy.AnnoyIndex(dim, "angular"); index.load(path)
    search = lambda q: index.get_nns_by_vector(q, 10, search_k=setting)
load_s = time.perf_counter() - t
for q in queries: search(q)
print(json.dumps({{"load_s": load_s, "rss_after_load_and_queries": proc.memory_info().rss - before}}))
"""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=None, help="index only the first N words (default: all; "
                        "--quick: 100000)")
    parser.add_argument("--queries", type=int, default=None, help="random query words (default 1000; --quick 300)")
    parser.add_argument("--budget", type=float, default=0.4, help="seconds of queries per variant per round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--also-m", type=int, nargs="*", default=[], metavar="M",
                        help=f"also build hnswlib with these M values (the targets are judged on M={M})")
    args = parser.parse_args(argv)
    reps = args.reps or (3 if args.quick else 5)
    n_queries = args.queries or (300 if args.quick else 1000)
    import annoy
    import hnswlib

    from searchcore.index import VectorIndex
    from searchcore.models.words import load_word_vectors

    info = common.machine()
    common.log("loading GloVe 6B 50d")
    words = load_word_vectors("glove-6b-50d")
    limit = args.words or (100_000 if args.quick else len(words))
    data = np.ascontiguousarray(words.vectors[:limit], dtype=np.float32)
    n, dim = data.shape
    rng = np.random.default_rng(args.seed)
    qids = rng.choice(n, size=n_queries, replace=False)
    queries = data[qids].copy()
    unit_data, unit_queries = unit_rows(data), unit_rows(queries)

    common.log(f"exact ground truth for {n_queries} queries over {n:,} words")
    t = time.perf_counter()
    gt_ids, gt_dist = ground_truth(data, queries, K)
    gt_s = time.perf_counter() - t

    # the exact baseline an app would write: rows normalised once, then one matrix-vector product per query
    def exact_one(q: np.ndarray) -> np.ndarray:
        scores = unit_data @ (q / max(float(np.linalg.norm(q)), 1e-12))
        top = np.argpartition(-scores, K - 1)[:K]
        return top[np.argsort(-scores[top])]

    exact_found = [exact_one(q) for q in queries[:50]]
    assert recall(exact_found, unit_data, unit_queries[:50], gt_dist[:50]) == 1.0, "exact baselines disagree"

    tmp = Path(tempfile.mkdtemp(prefix="bench_words_"))
    hnsw: dict[int, Any] = {}  # M → VectorIndex
    builds: dict[int, dict[str, Any]] = {}
    for m in dict.fromkeys([M, *args.also_m]):
        gc.collect()
        common.log(f"building hnswlib (M={m}, ef_construction={EF_CONSTRUCTION}) over {n:,} words")
        rss0, t = common.rss(), time.perf_counter()
        hnsw[m] = VectorIndex.build(data, M=m, ef_construction=EF_CONSTRUCTION, space="cosine")
        builds[m] = {"M": m, "ef_construction": EF_CONSTRUCTION, "build_s": time.perf_counter() - t,
                     "build_rss_bytes": common.rss() - rss0}
        hnsw[m].save(tmp / f"words_m{m}")
        builds[m]["disk_bytes"] = sum(p.stat().st_size for p in tmp.glob(f"words_m{m}.*"))

    common.log(f"building Annoy (angular, n_trees={N_TREES})")
    rss0, t = common.rss(), time.perf_counter()
    ann = annoy.AnnoyIndex(dim, "angular")
    for i, row in enumerate(data):
        ann.add_item(i, row)
    ann.build(N_TREES, n_jobs=-1)
    annoy_build_s, annoy_rss = time.perf_counter() - t, common.rss() - rss0
    ann.save(str(tmp / "words.ann"))  # Annoy's save re-opens the file by mmap, as a loaded index would be
    annoy_disk = (tmp / "words.ann").stat().st_size

    # recall over all queries (one query per call, exactly as timed)
    common.log("recall passes")
    rows: dict[str, dict[str, Any]] = {}
    for m, index in hnsw.items():
        for ef in EFS:
            index.ef = ef
            t = time.perf_counter()
            found = [index.query(q, K).ids[0] for q in queries]
            rows[hnsw_name(m, ef)] = {"kind": "hnswlib", "M": m, "setting": ef,
                                      "first_pass_s": (time.perf_counter() - t) / n_queries,
                                      "recall": recall(found, unit_data, unit_queries, gt_dist),
                                      "id_recall": id_recall(found, gt_ids)}
    for sk in SEARCH_KS:
        t = time.perf_counter()
        found = [np.asarray(ann.get_nns_by_vector(q, K, search_k=sk)) for q in queries]
        rows[f"annoy search_k={sk}"] = {"kind": "annoy", "setting": sk,
                                        "first_pass_s": (time.perf_counter() - t) / n_queries,
                                        "recall": recall(found, unit_data, unit_queries, gt_dist),
                                        "id_recall": id_recall(found, gt_ids)}

    common.log(f"timing, {reps} interleaved rounds of about {args.budget} s per variant")
    from searchcore.index import exact_search

    cases: dict[str, Callable[[], float]] = {
        "exact numpy": per_query_timer(exact_one, queries, args.budget, [0]),
        "exact_search()": per_query_timer(lambda q: exact_search(data, q, K), queries, args.budget, [0]),
    }
    try:
        from threadpoolctl import threadpool_limits

        one_thread = per_query_timer(exact_one, queries, args.budget, [0])

        def exact_one_thread() -> float:
            with threadpool_limits(1, user_api="blas"):
                return one_thread()

        cases["exact numpy, 1 thread"] = exact_one_thread
    except ImportError:
        common.log("threadpoolctl is missing: no single-threaded exact row (pip install threadpoolctl)")

    def hnsw_search(index: Any, ef: int) -> Callable[[np.ndarray], Any]:
        def search(q: np.ndarray) -> Any:
            if index.ef != ef:
                index.ef = ef
            return index.query(q, K)

        return search

    for m, index in hnsw.items():
        for ef in EFS:
            cases[hnsw_name(m, ef)] = per_query_timer(hnsw_search(index, ef), queries, args.budget, [0])
    for sk in SEARCH_KS:
        cases[f"annoy search_k={sk}"] = per_query_timer(
            lambda q, sk=sk: ann.get_nns_by_vector(q, K, search_k=sk), queries, args.budget, [0])
    timings = common.interleaved(cases, reps=reps, warmup=1, log=common.log)

    exact_spq = common.median(timings["exact numpy"])
    # each round's ratio to the exact baseline of the same round, then the median of those ratios
    def speedup(name: str) -> float:
        return common.median([e / s for e, s in zip(timings["exact numpy"], timings[name], strict=True)])

    for name in [c for c in cases if c.startswith("exact")]:
        rows[name] = {"kind": "exact", "setting": None, "recall": 1.0, "id_recall": None}
    for name, row in rows.items():
        row["qps"] = 1.0 / common.median(timings[name])
        row["qps_min"], row["qps_max"] = (1.0 / x for x in reversed(common.spread(timings[name])))
        row["speedup_vs_exact"] = speedup(name)

    annoy_curve = [(r["recall"], r["qps"]) for r in rows.values() if r["kind"] == "annoy"]
    annoy_speedups = [(r["recall"], r["speedup_vs_exact"]) for r in rows.values() if r["kind"] == "annoy"]
    for row in rows.values():
        if row["kind"] == "hnswlib":
            row["annoy_qps_same_recall"] = annoy_qps_at(row["recall"], annoy_curve)
            annoy_x = annoy_qps_at(row["recall"], annoy_speedups)
            row["vs_annoy_same_recall"] = row["speedup_vs_exact"] / annoy_x if annoy_x else None

    common.log("memory after loading each index in a fresh process")
    np.save(tmp / "queries.npy", queries[:200])
    for m in hnsw:
        builds[m].update(common.run_child(_LOAD_CHILD.format(
            kind="hnswlib", path=str(tmp / f"words_m{m}"), dim=dim, setting=160, queries=str(tmp / "queries.npy"))))
    annoy_load = common.run_child(_LOAD_CHILD.format(kind="annoy", path=str(tmp / "words.ann"), dim=dim,
                                                     setting=100_000, queries=str(tmp / "queries.npy")))
    for path in tmp.iterdir():
        path.unlink()
    tmp.rmdir()

    verdicts = {m: verdict(rows, m) for m in hnsw}
    info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {
        "machine": info, "command": common.command("bench.bench_words", argv), "words": n, "dim": dim,
        "queries": n_queries, "reps": reps, "ground_truth_s": gt_s, "exact_qps": 1.0 / exact_spq,
        "hnswlib": builds[M], "hnswlib_version": getattr(hnswlib, "__version__", "0.8.0"),
        "hnswlib_other_M": {m: b for m, b in builds.items() if m != M},
        "annoy": {"n_trees": N_TREES, "build_s": annoy_build_s, "disk_bytes": annoy_disk, "build_rss_bytes": annoy_rss,
                  **annoy_load},
        "rows": rows, "verdict": verdicts[M], "verdict_other_M": {m: v for m, v in verdicts.items() if m != M},
    }
    text = render(result)
    print(text)
    common.emit_json("bench_words", result)
    if args.write:
        common.write_section("bench_words", text, "1. Word search", machine_info=info)
        common.log(f"wrote {common.DOC}")
    return result


def verdict_lines(v: dict[str, Any], judged: bool) -> list[str]:
    where = f"hnswlib M={v['M']}" + ("" if judged else " (for comparison, not the configuration judged)")
    if v["hnsw_setting"] is None:
        first = f"- {where}: recall ≥ {TARGET_RECALL} **not reached** at any measured ef (max ef {EFS[-1]})."
    else:
        met = "met" if v["speed_target_met"] else "not met"
        first = (f"- {where}: recall ≥ {TARGET_RECALL} first reached at ef={v['hnsw_setting']} (recall "
                 f"{v['hnsw_recall']:.4f}), at {common.fmt(v['hnsw_speedup'])}× the exact search's queries/s: "
                 f"speed target **{met}**.")
    ahead = "yes" if v["ahead_of_annoy_at_equal_recall"] else "no"
    return [first, f"- {where}: ahead of Annoy at equal recall, at every ef: **{ahead}**."]


def render(res: dict[str, Any]) -> str:
    rows = res["rows"]
    v = res["verdict"]
    a = res["annoy"]
    order = [*[k for k in rows if k.startswith("exact")], *[k for k in rows if k.startswith("hnswlib")],
             *[k for k in rows if k.startswith("annoy")]]
    table_rows = []
    for name in order:
        r = rows[name]
        table_rows.append([
            f"`{name}`", common.fmt(r["recall"], 4) if r["recall"] is not None else "—",
            common.fmt(r["qps"]), f"{common.fmt(r['qps_min'])}–{common.fmt(r['qps_max'])}",
            f"{common.fmt(r['speedup_vs_exact'])}×",
            common.fmt(r.get("annoy_qps_same_recall")) if r["kind"] == "hnswlib" else "",
            (f"{common.fmt(r['vs_annoy_same_recall'])}×" if r.get("vs_annoy_same_recall") else "—")
            if r["kind"] == "hnswlib" else "",
        ])
    quick = res["words"] < 400_000
    lines = [
        f"Command: `{res['command']}`"
        + ("  \n**Quick run on a subset — not the documented figures.**" if quick else ""),
        "",
        f"Machine: {common.machine_line(res['machine'])} Load average at the end: {res['machine']['load_avg_end'][0]}.",
        "",
        ("The whole GloVe 6B 50-d vocabulary" if not quick else f"The first {res['words']:,} GloVe 6B 50-d words")
        + f": {res['words']:,} × {res['dim']} float32; {res['queries']} random query words "
        f"(vocabulary vectors, nothing excluded); recall@{K} against exact cosine search (a result counts when its "
        f"exact distance is within {TIE_EPS:g} of the exact 10th neighbour's). Queries/s: one query per call, as the "
        f"app does; median of {res['reps']} interleaved rounds (range in the next column); × exact is the median of "
        "the per-round ratios to the exact baseline.",
        "",
        common.table(["search", f"recall@{K}", "queries/s", "range", "× exact", "Annoy q/s at same recall",
                      "hnswlib vs Annoy"], table_rows),
        "",
        "`exact numpy` is the baseline: rows normalised once, one matrix–vector product and an argpartition per "
        "query (BLAS on all cores; `1 thread` limits BLAS to one, as hnswlib and Annoy use for a single query). "
        "`exact_search()` is `searchcore.index.exact_search` called per query; it re-normalises the whole "
        "matrix on every call. Annoy's q/s at hnswlib's recall is interpolated (log-linear) along the Pareto front "
        "of its measured search_k settings.",
        "",
        common.table(["index", "build", "on disk", "RSS growth while building", "load (fresh process)",
                      "RSS after load + 200 queries"], [
            *[[f"hnswlib M={h['M']}, ef_construction={h['ef_construction']}", f"{common.fmt(h['build_s'])} s",
               common.fmt_bytes(h["disk_bytes"]), common.fmt_bytes(h["build_rss_bytes"]),
               f"{common.fmt(h['load_s'])} s", common.fmt_bytes(h["rss_after_load_and_queries"])]
              for h in [res["hnswlib"], *res.get("hnswlib_other_M", {}).values()]],
            [f"Annoy angular, n_trees={a['n_trees']}", f"{common.fmt(a['build_s'])} s",
             common.fmt_bytes(a["disk_bytes"]), common.fmt_bytes(a["build_rss_bytes"]),
             f"{common.fmt(a['load_s'])} s", common.fmt_bytes(a["rss_after_load_and_queries"])],
            ["exact (the vectors themselves)", "—", common.fmt_bytes(res["words"] * res["dim"] * 4), "—", "—", "—"],
        ]),
        "",
        "hnswlib builds with all cores (`add_items(num_threads=-1)`), Annoy with `n_jobs=-1`. Annoy memory-maps its "
        "file, so its RSS after loading counts only the pages the queries touched (search_k=100000); hnswlib reads "
        "its whole file into memory (ef=160).",
        "",
        "**Targets** (recall@10 ≥ 0.99 at ≥ 50× the exact search's queries/s; ahead of Annoy at equal recall):",
        "",
    ]
    for m_verdict in [v, *res.get("verdict_other_M", {}).values()]:
        lines += verdict_lines(m_verdict, judged=m_verdict is v)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
