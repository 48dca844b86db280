"""Every mechanism earns its place: Text→Image ablations judged on validation photos, 5 seeds (issue 21).

    python -m bench.bench_ablation            # seeds 0–4: the default and one ablation per mechanism (~20 min)
    python -m bench.bench_ablation --quick    # seed 0 only
    python -m bench.bench_ablation --write    # also write section 11 of docs/benchmarks.md

The rule: each signal that remains improves the metric it exists for by at least :data:`THRESHOLD` in an ablation
judged on validation photos (5-seed mean), or it goes. On the offline Tux Paint bundle of ``bench.bench_training``
(the benchmarks' cache folder, built when it is not there), every seed trains
:class:`searchcore.models.fit.TrainConfig`'s default and, on the same split, one ablation per mechanism, each with
:func:`bench.bench_quality.train_copy` (so with :func:`searchcore.build.pipeline.train_bundle`, which chooses the served
mix again with that mechanism off):

* look-alikes' words (``neighbour_mix=0``, :mod:`searchcore.models.propagation`);
* the word classifier (``word_classifier=False``, :mod:`searchcore.models.wordclass`);
* the class hierarchy (``class_hierarchy=False``, :mod:`searchcore.models.hierarchy`);
* the exemplars (``exemplars=False``, :mod:`searchcore.models.exemplars`);
* ConSE in Text→Image (both ConSE weights held at 0 while the rest is chosen). ``TrainConfig`` has no flag for it,
  so this bench restricts the weights' grid in :func:`searchcore.quality.evaluation.choose_search` to 0 for that run
  (:func:`no_conse`); Image→Tags keeps its ConSE weight, chosen as usual.

The figures are the ones the served choice is made on, never a test photo's:
:func:`searchcore.build.pipeline.train_bundle` calls :func:`searchcore.quality.evaluation.choose_serving` with a
calibration head trained on the training photos of three quarters of the labels; its pool is the validation photos plus
the photos of the remaining quarter (labels that head never saw). This bench watches that call (:func:`watch_choice`)
and ranks the pool again with the chosen settings, query by query as :func:`searchcore.quality.evaluation.choose_search`
does (:func:`validation_figures`), split by kind of query:

* label words of the calibration head's labels: precision@10 over the validation photos;
* caption words (used by at least 3 captions): precision@5 (what the test figure reports) and precision@10 (what
  the choice scores);
* zero-shot: label words of the quarter of labels the calibration head never saw, precision@10 over the pool;
* the choice's objective: precision@10 over all of these queries together.

Only the calibration head (and the epoch count early stopping found for the measured head, which it reuses) feeds
these figures. So the runs skip the heads no figure here reads, ``refit=False`` (the measured head trained again on
training + validation photos, the served head on every photo): that changes no figure and no choice here (checked on
seed 0: the same figures and the same chosen mix to the last digit) and saves about half the time; ``--refit``
trains them as served. The test figures in the JSON line are then those of the head before the refit.

A query whose words the calibration head was trained on ranks only the pool's photos of the labels it was trained
on (as in ``choose_serving``). Which words those are is decided the same way in every run, by the word classifier's
vocabulary (the words of the calibration head's training photos), so an arm without a word classifier is measured
on the same queries and photos as the default (``choose_serving`` itself falls back to the head's target words
there; the figure it chose on is kept as ``own`` in the JSON).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from . import common
from .bench_quality import _count, train_copy
from .bench_training import BACKBONE, WORDS, build_base, code_version, use_cache

THRESHOLD = 0.01  # the gain a mechanism must bring, on a metric it exists for (issue 21)
# figure key → (column title, short name)
FIGURES = {
    "label_p10": ("label words, p@10", "label words"),
    "caption_p5": ("caption words, p@5", "caption words p@5"),
    "caption_p10": ("caption words, p@10 (chosen on)", "caption words p@10"),
    "zero_shot_p10": ("zero-shot label words, p@10", "zero-shot"),
    "objective": ("all queries, p@10 (the choice's objective)", "objective"),
}
# mechanism → (what switches it off, TrainConfig change (None: ConSE, see no_conse), the figures it exists for)
ARMS: dict[str, tuple[str, dict[str, Any] | None, tuple[str, ...]]] = {
    "look-alikes' words": ("`neighbour_mix=0`", {"neighbour_mix": 0.0}, ("label_p10", "caption_p5")),
    "word classifier": ("`word_classifier=False`", {"word_classifier": False}, ("label_p10", "caption_p5")),
    "class hierarchy": ("`class_hierarchy=False`", {"class_hierarchy": False},
                        ("label_p10", "caption_p5", "zero_shot_p10")),
    "exemplars": ("`exemplars=False`", {"exemplars": False}, ("label_p10", "caption_p5")),
    "ConSE (Text→Image)": ("both ConSE weights fixed at 0", None, ("label_p10", "caption_p5", "zero_shot_p10")),
}
MIXES = (("conse_mix", "ConSE seen"), ("unseen_conse_mix", "ConSE unseen"), ("neighbour_mix", "look-alikes"),
         ("word_mix", "word classifier"), ("class_mix", "hierarchy (trained)"),
         ("unseen_class_mix", "hierarchy (other)"), ("exemplar_mix", "exemplars"))

_SEEN: list[dict[str, Any]] = []  # what watch_choice saw during one training


# --------------------------------------------------------------------------------------------- measuring


def validation_figures(space: Any, pool: np.ndarray, seen_labels: set[str], unseen_labels: set[str],
                       reference: np.ndarray, serving: Any) -> dict[str, Any]:
    """The chosen Text→Image rule on ``choose_serving``'s validation pool, by kind of query (see the docstring).

    Scores each query exactly as :func:`searchcore.quality.evaluation.choose_search` does for the chosen settings: the
    calibration head's embedding blended with the look-alikes', ConSE by the query's seen share, then the word
    classifier, hierarchy and exemplar parts (:func:`searchcore.models.scoring.mixed_scores`).
    """
    from searchcore.models.propagation import served_embedding
    from searchcore.models.scoring import mixed_scores, split_parts
    from searchcore.quality.evaluation import _trained_words
    from searchcore.quality.metrics import label_queries, mean, precision_at, word_queries
    from searchcore.text import singular

    words, labels, head = space.words, space.labels, space.head
    pool = np.asarray(pool, np.int64)
    pool_labels = {labels[i] for i in pool}
    groups = {"label": label_queries(labels, pool, pool_labels & set(seen_labels), words),
              "zero_shot": label_queries(labels, pool, pool_labels & set(unseen_labels), words),
              "caption": word_queries(space.relevant_words, pool, space.caption_words)}
    queries = [(kind, terms, relevant) for kind, qs in groups.items() for terms, relevant in qs if relevant.any()]
    known_rows = ~np.isin([labels[i] for i in pool], sorted(unseen_labels))
    # the calibration word classifier's vocabulary: the words of its training photos (searchcore.models.fit.train_head)
    vocab = set().union(*(space.word_sets[i] for i in reference if space.has_target[i]))

    def fixed(terms: list[Any]) -> bool:
        return all(t.word in vocab or singular(t.word) in vocab for t in terms)

    saved = head.seen_similarity
    head.seen_similarity = serving.seen_similarity
    try:
        emb = served_embedding(space.head_emb[pool], space.neighbour_emb(pool, reference), serving.neighbour_mix)
        exemplars = space.exemplars(pool, reference) if serving.exemplar_mix > 0 else None
        rows: dict[str, list[tuple[str, float, float]]] = {"fixed": [], "own": []}
        differ = 0
        for kind, terms, relevant in queries:
            pairs = [(t.weight, t.word) for t in terms]
            total = sum(abs(t.weight) for t in terms)
            share = sum(abs(t.weight) for t in terms if head.trained_on(t.word, words)) / total
            mix = share * serving.conse_mix + (1 - share) * serving.unseen_conse_mix
            cosine = (1 - mix) * (emb @ head.head_query(pairs, words)) + mix * (space.conse_emb[pool]
                                                                                @ words.combine(terms))
            parts = split_parts(head.word_classifier, space.features[pool], space.logits[pool], terms,
                                exemplars=exemplars)
            scores = mixed_scores(cosine, parts, serving.word_mix, serving.class_mix, serving.unseen_class_mix,
                                  serving.exemplar_mix)
            trained = {"fixed": fixed(terms), "own": _trained_words(head, terms)}
            differ += trained["fixed"] != trained["own"]
            for protocol, known in trained.items():
                ranked = np.where(known_rows, scores, -np.inf) if known else scores
                wanted = relevant & known_rows if known else relevant
                rows[protocol].append((kind, precision_at(ranked, wanted, 10), precision_at(ranked, wanted, 5)))
    finally:
        head.seen_similarity = saved

    def figures(found: list[tuple[str, float, float]]) -> dict[str, Any]:
        def pick(kind: str, col: int) -> list[float]:
            return [r[col] for r in found if r[0] == kind]

        out = {"label_p10": mean(pick("label", 1)), "caption_p5": mean(pick("caption", 2)),
               "caption_p10": mean(pick("caption", 1)), "zero_shot_p10": mean(pick("zero_shot", 1)),
               "objective": mean(r[1] for r in found)}
        out = {k: (float(v) if np.isfinite(v) else None) for k, v in out.items()}
        out["queries"] = {kind: int(sum(np.isfinite(r[1]) for r in found if r[0] == kind)) for kind in groups}
        return out

    return {**figures(rows["fixed"]), "own": figures(rows["own"]), "protocol_differs": differ,
            "pool": len(pool), "pool_sum": int(pool.sum()), "unseen_labels": sorted(unseen_labels)}


@contextlib.contextmanager
def watch_choice() -> Iterator[None]:
    """While the block runs, every ``choose_serving`` of :mod:`searchcore.build.pipeline` also measures its choice
    (:func:`validation_figures`) into ``_SEEN``, with the chosen objective ``choose_search`` recorded."""
    import searchcore.build.pipeline as P
    import searchcore.quality.evaluation as E

    choose_serving, choose_search = P.choose_serving, E.choose_search
    signature = inspect.signature(choose_serving)
    chosen: list[dict[str, Any]] = []

    def search(*args: Any, **kwargs: Any) -> Any:
        found = choose_search(*args, **kwargs)
        chosen.append(dict(found.table["chosen"]))
        return found

    def serving(*args: Any, **kwargs: Any) -> Any:
        got = signature.bind(*args, **kwargs)
        got.apply_defaults()
        a = got.arguments
        result = choose_serving(*args, **kwargs)
        figures = validation_figures(a["space"], a["pool"], a["seen_labels"], a["unseen_labels"], a["reference"],
                                     result.settings)
        _SEEN.append({**figures, "chosen": chosen[-1] if chosen else None})
        return result

    P.choose_serving, E.choose_search = serving, search
    try:
        yield
    finally:
        P.choose_serving, E.choose_search = choose_serving, choose_search


@contextlib.contextmanager
def no_conse() -> Iterator[None]:
    """While the block runs, ``choose_search`` tries only ConSE weights of 0 (seen and unseen words): Text→Image
    without ConSE, every other share chosen as usual. Image→Tags' ConSE weight is chosen as before."""
    import searchcore.quality.evaluation as E

    original = E._best_conse

    def zero(head_scores: Any, conse_scores: Any, seen_share: Any, queries: Any, parts: Any, shares: Any,
             ranked: Any = None) -> tuple[float, float, float]:
        return E.mean(E._precisions(head_scores, conse_scores, seen_share, queries, parts, 0.0, 0.0, shares,
                                    ranked)), 0.0, 0.0

    E._best_conse = zero
    try:
        yield
    finally:
        E._best_conse = original


def run_arm(base: Path, work: Path, seed: int, arm: str, refit: bool = False) -> dict[str, Any]:
    """Train seed ``seed``'s default (``arm`` "default") or its ablation of ``arm``; its validation figures.

    ``refit`` False skips the heads no validation figure reads (see the module docstring)."""
    from searchcore.models.fit import TrainConfig

    config = TrainConfig(seed=seed, refit=refit)
    change = {} if arm == "default" else ARMS[arm][1]
    if change:
        config = replace(config, **change)
    _SEEN.clear()
    with watch_choice(), (no_conse() if change is None else contextlib.nullcontext()):
        run = train_copy(base, work, f"ablation-{seed}", config)
    if len(_SEEN) != 1:
        raise RuntimeError(f"expected one choose_serving call, saw {len(_SEEN)}")
    seen = _SEEN[0]
    own, chosen = seen["own"]["objective"], (seen["chosen"] or {}).get("score")
    if own is not None and chosen is not None and abs(own - chosen) > 1e-3:
        common.log(f"  warning: recomputed objective {own:.4f} differs from choose_search's {chosen}")
    common.log(f"  {arm}, seed {seed}: " + ", ".join(f"{FIGURES[k][1]} {_f(seen[k])}" for k in FIGURES)
               + f" ({run['seconds']:.0f} s)")
    return {"arm": arm, "seed": seed, "validation": seen, "serving": run["serving"], "seconds": run["seconds"],
            "test": {k: v for k, v in run["metrics"].get("served", {}).items() if isinstance(v, int | float)},
            "split_sizes": run["split_sizes"], "config": run["config"]}


def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


# --------------------------------------------------------------------------------------------- the report


def gains(res: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Per mechanism and figure: default minus ablated, per seed (seeds where both are known)."""
    runs = res["runs"]
    out: dict[str, dict[str, list[float]]] = {}
    for arm in res["arms"]:
        out[arm] = {}
        for key in FIGURES:
            values = []
            for seed in res["seeds"]:
                d, a = runs[f"default/{seed}"]["validation"][key], runs[f"{arm}/{seed}"]["validation"][key]
                if d is not None and a is not None:
                    values.append(d - a)
            out[arm][key] = values
    return out


def verdict(arm: str, per_figure: dict[str, list[float]]) -> tuple[bool, str]:
    """Does the mechanism's mean gain reach THRESHOLD on a figure it exists for? And on which (with the mean gain,
    and how many seeds lost on it)."""
    met = []
    for key in ARMS[arm][2]:
        values = per_figure[key]
        if values and np.mean(values) >= THRESHOLD:
            lost = sum(v < 0 for v in values)
            met.append(f"{FIGURES[key][1]} {np.mean(values):+.3f}"
                       + (f", lower on {lost} of {len(values)} seeds" if lost else ""))
    return bool(met), "; ".join(met)


def _gain(values: list[float]) -> str:
    if not values:
        return "—"
    mean = float(np.mean(values))
    return f"{mean:+.3f} ({min(values):+.3f} to {max(values):+.3f})" if len(values) > 1 else f"{mean:+.3f}"


def _level(values: list[float | None]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    mean = float(np.mean(values))
    return f"{mean:.3f} ({min(values):.3f}–{max(values):.3f})" if len(values) > 1 else f"{mean:.3f}"


def _mixes(runs: list[dict[str, Any]]) -> list[str]:
    def one(v: Any) -> str:
        return "—" if v is None else f"{v:g}"

    return [" · ".join(one(r["serving"].get(key)) for r in runs) for key, _ in MIXES]


def render(res: dict[str, Any]) -> str:
    seeds, runs = res["seeds"], res["runs"]
    per_arm = gains(res)
    first = runs[f"default/{seeds[0]}"]
    v = first["validation"]
    sizes = first["split_sizes"]
    n = len(seeds)
    lines = [
        f"Command: `{res['command']}`" + ("  \n**Quick run (one seed) — not the documented figures.**"
                                          if n < 2 else ""),
        "",
        f"Machine: {common.machine_line(res['machine'])} Load average at the end: {res['machine']['load_avg_end'][0]}. "
        f"{len(runs)} trainings in {res['seconds'] / 60:.0f} min.",
        "",
        f"Code: {res['code']}. Offline Tux Paint bundle ({res['count']['items']} photos, {res['count']['labels']} "
        f"labels; `{BACKBONE}`, `{WORDS}`). The rule of issue 21: a mechanism stays if switching it off costs at "
        f"least {THRESHOLD} on a figure it exists for, judged on **validation** photos, the mean over seeds "
        + ", ".join(map(str, seeds)) + ". Each seed trains the default `TrainConfig` and, on the same split, one run "
        "per mechanism switched off; `train_bundle` chooses the served mix again in each run (`choose_serving` / "
        "`choose_search`), so every other share is re-chosen with that mechanism gone.",
        "",
        "The figures are those the served choice is made on: the calibration head (trained on the training photos of "
        f"three quarters of the labels) ranks `choose_serving`'s pool, here {v['pool']} photos for seed {seeds[0]} "
        f"({sizes['val']} validation photos, the rest the photos of the {len(v['unseen_labels'])} labels that head "
        "never saw), with the chosen settings, query by query as `choose_search` scores them. Label words: the "
        f"calibration head's labels ({v['queries']['label']} queries for seed {seeds[0]}); caption words: words "
        f"of at least 3 captions ({v['queries']['caption']}), precision@5 as the test figure and precision@10 as "
        f"the choice scores them; zero-shot: the never-seen quarter's label words ({v['queries']['zero_shot']}), "
        "which the pipeline computes on validation too; objective: precision@10 over all these queries, what the "
        "choice maximises. No test photo is used; the test figures of the same runs are in the JSON line only. A "
        "query of words the calibration head was trained on ranks only the photos of its labels, as in "
        "`choose_serving`, with the trained words taken from the calibration word classifier's vocabulary in every "
        "run (so the run without a word classifier is measured on the same queries and photos)."
        + ("" if res.get("refit") else " The runs skip the refit heads (`refit=False`), which no figure here reads: "
           "the calibration head and the chosen mix are the same with and without them."),
        "",
        f"### Gains on validation photos ({n} seed{'s' if n > 1 else ''})",
        "",
        "Default minus ablated: mean (min to max) over seeds; positive means the mechanism helps. Verdict: earns its "
        f"place if the mean gain is at least {THRESHOLD} on one of the figures it exists for (label and caption "
        "words for every mechanism; zero-shot label words too for the class hierarchy and ConSE, which are there "
        "for words the head never saw).",
        "",
    ]
    rows = []
    for arm, (off, _, _figures) in ARMS.items():
        if arm not in per_arm:
            continue
        ok, which = verdict(arm, per_arm[arm])
        rows.append([arm, off, *(_gain(per_arm[arm][k]) for k in FIGURES),
                     f"**earns its place** ({which})" if ok else f"**does not** (no mean gain of {THRESHOLD})"])
    lines.append(common.table(["mechanism", "switched off by", *(FIGURES[k][0] for k in FIGURES), "verdict"], rows))
    lines += ["", "Its figures: " + "; ".join(f"{arm}: " + ", ".join(FIGURES[k][1] for k in ARMS[arm][2])
                                            for arm in ARMS if arm in per_arm) + ".", "",
              "### Validation figures", "", "Mean (min–max) over seeds.", ""]
    rows = []
    for arm in ("default", *(a for a in ARMS if a in per_arm)):
        label = "default (as served)" if arm == "default" else f"without {arm}"
        rows.append([label, *(_level([runs[f"{arm}/{s}"]["validation"][k] for s in seeds]) for k in FIGURES)])
    lines.append(common.table(["run", *(FIGURES[k][0] for k in FIGURES)], rows))
    lines += ["", "### What each run chose", "",
              "The served Text→Image settings chosen on the validation photos, seed by seed ("
              + " · ".join(map(str, seeds)) + ").", ""]
    rows = [["default" if arm == "default" else f"without {arm}", *_mixes([runs[f"{arm}/{s}"] for s in seeds])]
            for arm in ("default", *(a for a in ARMS if a in per_arm))]
    lines.append(common.table(["run", *(title for _, title in MIXES)], rows))
    lines += ["", "Caveats: the choice is made on these very photos, so each figure is the best the grid could find "
                  "on them; a mechanism adds grid points, so part of its gain is that selection's optimism, and the "
                  "threshold is what guards against it. `choose_search` is greedy (look-alikes and the seen-word "
                  "similarity first with every share at 0, then the shares, then the ConSE weights again), so an "
                  "ablated run is the served procedure without that mechanism, not a joint optimum; a seed whose gain "
                  "on the objective is negative is one where that greedy procedure did worse with the mechanism than "
                  "without it. Validation pools "
                  "are small (one or two photos per label), hence the spread between seeds."]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--cache", default=None, help="the benchmarks' cache folder (SEARCH_CACHE_DIR for this run)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 5, --quick 1)")
    parser.add_argument("--refit", action="store_true",
                        help="also train the refit heads (as served); the validation figures are the same without")
    parser.add_argument("--arms", default=None,
                        help="a comma-separated subset of the mechanisms (default all): " + ", ".join(ARMS))
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds or (1 if args.quick else 5)))
    arms = list(ARMS) if not args.arms else [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"unknown mechanism(s) {unknown}; choose from {list(ARMS)}")
    cache = use_cache(args.cache)
    info = common.machine(with_torch=True)
    base, _, built = build_base(cache)
    common.log(f"{'built' if built else 'reusing'} the bundle {base}")
    work = Path(tempfile.mkdtemp(prefix="ablation-", dir=cache))
    started = time.perf_counter()
    runs: dict[str, dict[str, Any]] = {}
    try:
        for seed in seeds:  # seed by seed, so an interrupted run still has whole pairs
            for arm in ("default", *arms):
                common.log(f"seed {seed}: {arm}")
                runs[f"{arm}/{seed}"] = run_arm(base, work, seed, arm, args.refit)
                pool = runs[f"{arm}/{seed}"]["validation"]["pool_sum"]
                if pool != runs[f"default/{seed}"]["validation"]["pool_sum"]:
                    raise RuntimeError(f"seed {seed}: {arm}'s validation pool differs from the default's")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result: dict[str, Any] = {"command": common.command("bench.bench_ablation", argv), "seeds": seeds, "arms": arms,
                              "refit": args.refit,
                              "code": code_version(), "count": _count(base), "runs": runs,
                              "seconds": time.perf_counter() - started, "machine": info}
    per_arm = gains(result)
    result["gains"] = {arm: {k: {"mean": float(np.mean(v)) if v else None, "per_seed": v}
                             for k, v in figs.items()} for arm, figs in per_arm.items()}
    result["verdicts"] = {arm: verdict(arm, figs)[0] for arm, figs in per_arm.items()}
    text = render(result)
    print(text)
    common.emit_json("bench_ablation", {k: v for k, v in result.items() if k != "machine"})
    if args.write:
        common.write_section("bench_ablation", text, "11. Ablations on validation", machine_info=info)
        common.log(f"wrote {common.DOC}")
    return result


if __name__ == "__main__":
    main()
