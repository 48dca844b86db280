"""Meaning, measured: ConSE, the head and the served rules on test photos, ablations, zero-shot, before and after.

    python -m bench.bench_quality            # 5 seeds, ablations on 3, zero-shot, the code "before" (~30 min)
    python -m bench.bench_quality --quick    # seed 0 only, no ablations, no "before"
    python -m bench.bench_quality --write    # also update section 6 of docs/benchmarks.md
    python -m bench.bench_quality --clip clip:openai/clip-vit-base-patch32 --write   # CLIP zero-shot beside them

On the offline Tux Paint bundle of ``bench.bench_training`` (rebuilt into the benchmarks' cache folder when it is
not there), each run copies the bundle and calls :func:`searchcore.build.pipeline.train_bundle` on the copy. Every
figure is ``train_bundle``'s own evaluation (:func:`searchcore.quality.evaluation.evaluate_bundle`): on the **test**
split, photos that neither training nor any served choice (blend weights, thresholds, early stopping) has seen, plus the
public real photos of :mod:`searchcore.quality.realphotos`. A seed changes the split and the initialisation, so the
spread over seeds shows how much of a difference is the split's luck.

* **Served figures** over ``--seeds`` seeds (default 5: with about a hundred test photos one seed's figure moves
  by several hundredths, so the mean needs more than three), for ConSE, the head alone and the served rules.
* **Ablations** over the first ``--ablation-seeds`` seeds (default 3), each one change to the default
  :class:`searchcore.models.fit.TrainConfig`: targets from labels alone (``caption_weight=0``), no refit on training +
  validation items, DeViSE's hinge loss, and the served parts switched off one by one; and cut-outs extracted
  without :func:`searchcore.images.frame` (Image→Image precision@10 of the raw features).
* **Zero-shot**: ``--holdout`` classes never trained on; their photos are scored with their label words.
* **Before and after**: the page's example queries (top 6) and the real-photo tags, served by the code of
  ``--before`` (default: the last commit before this work), built the way that code built its offline bundle in a
  git worktree, against today's served bundle (seed 0). The previous code's head trained on 80 % of the photos, so
  only figures on photos outside the collection (the real-photo set) are compared with it.
* **CLIP** (``--clip clip:MODEL``, a Hub id or a local CLIP folder): a CLIP bundle of the same photos is built
  beside the Tux Paint bundle (reused when it is there), and every seed's and the zero-shot run's test photos are
  also measured with CLIP zero-shot (:func:`searchcore.quality.evaluation.clip_figures`): a fourth column, same photos,
  same queries, same metrics. It needs the real checkpoint, so a machine that reaches the Hub.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import common
from .bench_training import BACKBONE, WORDS, build_base, code_version, use_cache

HOLDOUT = ("fish", "dogs", "vegetables")
BEFORE = "8fc3ab9"  # the last commit before the meaning work (issue 8)
ISSUE_QUERIES = ("bird", "horse", "dog", "ocean")  # the queries the issue reported on
FIGURES = ("text_image_p10", "caption_word_p5", "tag_hit5", "real_photo_tag_hit5")
METHODS = ("conse", "head", "served")


def page_examples() -> list[str]:
    """app.py's TEXT_EXAMPLES (importing the app builds no page and loads no engine)."""
    import app

    return list(app.TEXT_EXAMPLES)


def train_copy(base: Path, work: Path, name: str, config: Any, keep: bool = False, clip: Path | None = None
               ) -> dict[str, Any]:
    """Copy the bundle, train its head with ``config``: metrics, served settings, epochs, seconds.

    ``clip``: a CLIP bundle of the same photos, measured on the same test photos as ``metrics["clip"]``.
    """
    from searchcore import bundle as B
    from searchcore.build.pipeline import train_bundle
    from searchcore.quality.evaluation import evaluate_bundle

    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(base, root)
    started = time.perf_counter()
    result, metrics = train_bundle(root, config, command=f"bench.bench_quality {name}")
    if clip is not None:
        metrics = {**metrics, "clip": evaluate_bundle(root, clip=clip)["clip"]}
    manifest = B.open_bundle(root, check_sums=False).manifest
    training = manifest["training"]
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    common.log(f"  {name}: served {_brief(metrics['served'])}, {time.perf_counter() - started:.0f} s")
    return {"name": name, "config": config.to_dict(), "metrics": metrics, "serving": training["settings"],
            "targets": {k: v for k, v in training.get("targets", {}).items() if k != "examples"},
            "epochs_run": len(result.history), "best_epoch": result.best_epoch,
            "seconds": time.perf_counter() - started, "root": str(root) if keep else None,
            "split_sizes": {k: len(v) for k, v in training["split"].items()}}


def _brief(row: dict[str, Any]) -> str:
    return ", ".join(f"{k} {row[k]}" for k in FIGURES if row.get(k) is not None)


def clip_bundle(base: Path, spec: str, cache: Path) -> Path:
    """A CLIP bundle (``spec``) of the very photos, labels and captions of ``base``, built once into ``cache``."""
    from searchcore import bundle as B
    from searchcore.build.pipeline import build_bundle
    from searchcore.collection import Collection
    from searchcore.errors import BundleError

    root = cache / "tuxpaint-clip"
    try:
        if B.verify(root, check_sums=False).get("backbone") == spec:
            return root
    except BundleError:
        pass
    manifest = B.verify(base, check_sums=False)
    photos = Collection(manifest.get("name", "tuxpaint"), base / B.IMAGES, B.read_items(base / B.ITEMS))
    common.log(f"building the CLIP bundle {root} ({spec})")
    build_bundle(photos, root, spec, WORDS, command=f"bench.bench_quality --clip {spec}")
    return root


def served_examples(root: Path, queries: list[str], photos: list[tuple[str, str, list[str]]]) -> dict[str, Any]:
    """Today's engine on ``root``: top 6 of each query, top 5 tags of each real photo."""
    from searchcore import load_engine

    engine = load_engine(root, check_sums=False)
    return {"queries": {q: [[h.label, h.caption] for h in engine.search_images(q, 6)] for q in queries},
            "tags": {name: [h.word for h in engine.tag_image(path, 5)] for name, path, _ in photos}}


BEFORE_CHILD = """
import json, os, sys
from searchcore import load_engine
from searchcore.build import offline
spec = json.loads(sys.stdin.read())
root = offline.ensure_offline_bundle(collection="tuxpaint")
engine = load_engine(root)
out = {"queries": {q: [[h.label, h.caption] for h in engine.search_images(q, 6)] for q in spec["queries"]},
       "tags": {name: [h.word for h in engine.tag_image(path, 5)] for name, path in spec["photos"]}}
print(json.dumps(out))
"""


def before_examples(rev: str, queries: list[str], photos: list[tuple[str, str, list[str]]], cache: Path
                    ) -> dict[str, Any]:
    """The same queries and photos served by the code of ``rev``, in a git worktree with its own cache folder."""
    tree = Path(tempfile.mkdtemp(prefix="before-", dir=cache))
    subprocess.run(["git", "worktree", "add", "--detach", str(tree / "code"), rev], cwd=common.ROOT, check=True,
                   capture_output=True)
    try:
        env = {**os.environ, "PYTHONPATH": str(tree / "code"), "SEARCH_CACHE_DIR": str(cache / f"before-{rev}")}
        spec = json.dumps({"queries": queries, "photos": [[n, p] for n, p, _ in photos]})
        proc = subprocess.run([sys.executable, "-c", BEFORE_CHILD], input=spec, capture_output=True, text=True,
                              env=env, cwd=tree / "code", timeout=3600, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"the {rev} child failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree / "code")], cwd=common.ROOT, check=False,
                       capture_output=True)
        shutil.rmtree(tree, ignore_errors=True)


def tag_hit_rate(tags: dict[str, list[str]], photos: list[tuple[str, str, list[str]]]) -> float:
    from searchcore.text import same_word

    hits = [any(same_word(part, w) for tag in tags[name] for part in tag.split() for w in wanted)
            for name, _, wanted in photos]
    return sum(hits) / len(hits)


def framing_effect(base: Path) -> dict[str, float]:
    """Image→Image precision@10 of the collection's raw features, cut-outs framed (as served) and not."""
    from searchcore import bundle as B
    from searchcore import images
    from searchcore.models.backbones import load_backbone
    from searchcore.quality.metrics import image_image_precision

    bundle = B.open_bundle(base, check_sums=False)
    labels = [it.label for it in bundle.items]
    net = load_backbone(BACKBONE)
    paths = [bundle.image_path(it) for it in bundle.items]
    framed = image_image_precision(net.extract(paths).features, labels)
    original = images.frame
    images.frame = lambda img, background=(255, 255, 255): img  # what extraction did before framing
    try:
        plain = image_image_precision(net.extract(paths).features, labels)
    finally:
        images.frame = original
    return {"framed": round(framed, 4), "plain": round(plain, 4), "count": len(paths)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--cache", default=None, help="the benchmarks' cache folder (SEARCH_CACHE_DIR for this run)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds (default 5, --quick 1)")
    parser.add_argument("--ablation-seeds", type=int, default=3,
                        help="the ablations run on this many of the seeds (default 3)")
    parser.add_argument("--holdout", default=",".join(HOLDOUT), help="classes held out for the zero-shot run")
    parser.add_argument("--before", default=None, help=f"the code to compare with (default {BEFORE}; none in --quick)")
    parser.add_argument("--clip", metavar="SPEC", default=None,
                        help="also measure CLIP zero-shot on the same photos, e.g. clip:openai/clip-vit-base-patch32")
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds or (1 if args.quick else 5)))
    ablation_seeds = seeds[:max(args.ablation_seeds, 1)]
    holdout = tuple(c.strip() for c in args.holdout.split(",") if c.strip())
    before_rev = args.before or (None if args.quick else BEFORE)
    cache = use_cache(args.cache)
    info = common.machine(with_torch=True)
    from searchcore.models.fit import TrainConfig
    from searchcore.quality.realphotos import real_photo_set

    base, _, built = build_base(cache)
    common.log(f"{'built' if built else 'reusing'} the bundle {base}")
    clip = clip_bundle(base, args.clip, cache) if args.clip else None
    work = Path(tempfile.mkdtemp(prefix="quality-", dir=cache))
    queries = list(dict.fromkeys([*page_examples(), *ISSUE_QUERIES]))
    real = real_photo_set()
    photos = [(entry.name, str(path), list(entry.words)) for entry, path in real.photos]
    result: dict[str, Any] = {"command": common.command("bench.bench_quality", argv), "seeds": seeds,
                              "holdout": list(holdout), "code": code_version(), "count": _count(base),
                              "config": TrainConfig().to_dict(), "queries": queries, "photos": len(photos),
                              "clip": args.clip, "ablation_seeds": ablation_seeds}
    try:
        runs = []
        for seed in seeds:
            common.log(f"served: seed {seed}")
            runs.append(train_copy(base, work, f"served-{seed}", TrainConfig(seed=seed), keep=seed == seeds[0],
                                   clip=clip))
        result["runs"] = runs
        after = served_examples(Path(runs[0]["root"]), queries, photos)
        result["after"] = {**after, "real_photo_tag_hit5": tag_hit_rate(after["tags"], photos)}
        if not args.quick:
            ablations = {"labels only (caption_weight 0)": {"caption_weight": 0.0},
                         "no refit on training + validation": {"refit": False},
                         "hinge loss (DeViSE's)": {"loss": "hinge"},
                         "no look-alikes' words (neighbour_mix 0)": {"neighbour_mix": 0.0},
                         "no word classifier (word_classifier False)": {"word_classifier": False},
                         "no class hierarchy (class_hierarchy False)": {"class_hierarchy": False},
                         "no exemplars (exemplars False)": {"exemplars": False}}
            result["ablations"] = {}
            for title, change in ablations.items():
                common.log(f"ablation: {title}")
                result["ablations"][title] = [train_copy(base, work, f"ablation-{seed}",
                                                         replace(TrainConfig(seed=seed), **change))
                                                  for seed in ablation_seeds]
            common.log("framing of cut-outs")
            result["framing"] = framing_effect(base)
        if holdout:
            common.log(f"zero-shot: {', '.join(holdout)} held out")
            result["zero_shot"] = train_copy(base, work, "zero-shot", TrainConfig(holdout_classes=holdout), clip=clip)
        if before_rev:
            common.log(f"before: the code of {before_rev}")
            before = before_examples(before_rev, queries, photos, cache)
            result["before"] = {**before, "rev": before_rev, "real_photo_tag_hit5": tag_hit_rate(before["tags"],
                                                                                                  photos)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = info
    text = render(result)
    print(text)
    common.emit_json("bench_quality", {k: v for k, v in result.items() if k != "machine"})
    if args.write:
        common.write_section("bench_quality", text, "6. Quality", machine_info=info)
        common.log(f"wrote {common.DOC}")
    return result


def _count(base: Path) -> dict[str, int]:
    from searchcore import bundle as B

    items = B.read_items(base / B.ITEMS)
    return {"items": len(items), "labels": len({it.label for it in items})}


def _cell(values: list[float | None]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    mean = sum(values) / len(values)
    return f"{mean:.3f}" + (f" ({min(values):.3f}–{max(values):.3f})" if len(values) > 1 else "")


def _figure_rows(runs: list[dict[str, Any]], methods: tuple[str, ...] = METHODS,
                 figures: tuple[str, ...] = FIGURES) -> list[list[str]]:
    from searchcore.build.card import METRIC_NAMES

    return [[METRIC_NAMES[key], *(_cell([r["metrics"].get(m, {}).get(key) for r in runs]) for m in methods)]
            for key in figures]


def _targets_line(targets: dict[str, Any]) -> str:
    segmented = ", ".join(targets.get("segmented", {})) or "none"
    without = ", ".join(targets.get("without_target", [])) or "none"
    return (f"Targets of seed 0: caption words joined the target of {targets.get('caption_items')} photos; "
            f"segmented labels: {segmented}; labels without a target: {without}.")


def _hits(rows: list[list[str]]) -> str:
    return "<br>".join(f"{label} · {caption}" for label, caption in rows)


def render(res: dict[str, Any]) -> str:
    runs = res["runs"]
    methods = (*METHODS, "clip") if res.get("clip") else METHODS
    seeds = res["seeds"]
    first = runs[0]
    sizes = first["split_sizes"]
    serving = [r["serving"] for r in runs]
    lines = [
        f"Command: `{res['command']}`" + ("  \n**Quick run (one seed) — not the documented figures.**"
                                          if len(seeds) < 2 else ""),
        "",
        f"Machine: {common.machine_line(res['machine'])} Load average at the end: {res['machine']['load_avg_end'][0]}.",
        "",
        f"Code: {res['code']}. Offline Tux Paint bundle ({res['count']['items']} photos, {res['count']['labels']} "
        f"labels; `{BACKBONE}`, `{WORDS}`). Split of seed {seeds[0]}: {sizes['train']} training, {sizes['val']} "
        f"validation, {sizes['test']} test photos. Every figure is on the **test** photos (and the "
        f"{res['photos']} public real photos of `searchcore/quality/realphotos.py`), which neither training nor any "
        "choice of the served settings saw; the served settings were chosen on the validation photos "
        "(`searchcore/quality/evaluation.py`). Default `TrainConfig`: "
        + ", ".join(f"{k} {v}" for k, v in res["config"].items() if k not in ("holdout_classes",)) + ".",
        "",
        f"### Served figures, {len(seeds)} seed{'s' if len(seeds) > 1 else ''}",
        "",
        "Mean (min–max) over seeds " + ", ".join(map(str, seeds)) + ". ConSE: no training (class probabilities "
        "× class-name vectors); head: the trained head's embedding alone, nearest words for tags; served: what the "
        "app does (Text→Image mixes head and ConSE per query, the head's embedding blended with the photo's "
        "look-alikes' words, and gives the head's word classifier and the classifier's mass below a word in WordNet "
        "their share of the words they know, and a word's exemplars (the cosine to the nearest collection photo "
        "named by it) theirs; tags add the classifier's names, near collection photos' caption "
        "words and the unseen-photo fallback)." + (
            f" clip: `{res['clip']}` zero-shot on the same test photos and queries, from a CLIP bundle of the same "
            "photos (Text→Image by CLIP's prompted text embedding of the query words; tags: the tag phrases nearest "
            "in CLIP's space, a confident zero-shot class first), with no training at all." if res.get("clip")
            else ""),
        "",
        common.table(["figure", *methods], _figure_rows(runs, methods)),
        "",
        "Served settings chosen on validation photos, per seed: " + "; ".join(
            f"seed {s}: ConSE weight {v['conse_mix']:g} for seen words, {v['unseen_conse_mix']:g} for unseen ones "
            f"(seen-word similarity {v['seen_similarity']}), look-alikes' words {v.get('neighbour_mix', 0):g}, "
            f"word classifier {v.get('word_mix', 0):g}, class hierarchy {v.get('class_mix', 0):g} for trained "
            f"words and {v.get('unseen_class_mix', 0):g} for others, exemplars {v.get('exemplar_mix', 0):g}, "
            f"tags {v['tag_conse_mix']:g}, class floor {v['class_min_prob']} "
            f"({v.get('unseen_class_min_prob', v['class_min_prob'])} for a photo unlike the collection), "
            f"neighbour distance {v['neighbour_distance']}" for s, v in zip(seeds, serving)) + ".",
        "",
        _targets_line(first["targets"]),
    ]
    if res.get("ablations"):
        rows = []
        from searchcore.build.card import METRIC_NAMES

        same = res.get("ablation_seeds", seeds)
        default = {k: _cell([r["metrics"]["served"].get(k) for r in runs[:len(same)]]) for k in FIGURES}
        rows.append(["default (as served)", *(default[k] for k in FIGURES)])
        for title, abl in res["ablations"].items():
            rows.append([title, *(_cell([r["metrics"]["served"].get(k) for r in abl]) for k in FIGURES)])
        lines += ["", "### Ablations (served figures, seeds " + ", ".join(map(str, same)) + ")", "",
                  common.table(["change", *(METRIC_NAMES[k] for k in FIGURES)], rows)]
    if res.get("framing"):
        f = res["framing"]
        lines += ["", f"Cut-outs framed whole (`searchcore.images.frame`): Image→Image precision@10 of the raw "
                      f"features over all {f['count']} collection photos is {f['framed']:.3f} framed (as served) and "
                      f"{f['plain']:.3f} with the model's plain centre crop ({f['framed'] / f['plain']:.2f}×)."]
    if res.get("zero_shot"):
        z = res["zero_shot"]
        held = ", ".join(res["holdout"])
        lines += ["", f"### Zero-shot: {held} held out of training (seed 0)", "",
                  f"{z['split_sizes']['holdout']} photos of the held-out classes join the test photos; the zero-shot "
                  "row ranks them by their label words, which neither the head nor any choice saw.", "",
                  common.table(["figure", *methods],
                               _figure_rows([z], methods, figures=("zero_shot_text_image_p10", "zero_shot_tag_hit5",
                                                                   "text_image_p10")))]
    before, after = res.get("before"), res["after"]
    lines += ["", "### Before and after", ""]
    if before:
        lines += [f"Real-photo tag hit@5 ({res['photos']} public photos, top 5 tags as served): "
                  f"**{before['real_photo_tag_hit5']:.3f}** with the code of `{before['rev']}`, "
                  f"**{after['real_photo_tag_hit5']:.3f}** today (seed 0).", "",
                  "The page's example queries and the issue's, top 6 (label · caption), served by each code:", "",
                  common.table(["query", f"`{before['rev']}`", "today"],
                               [[f"`{q}`", _hits(before["queries"][q]), _hits(after["queries"][q])]
                                for q in res["queries"]])]
        names = [n for n in after["tags"] if n in before["tags"]]
        lines += ["", "Tags of the first real photos (top 5):", "",
                  common.table(["photo", f"`{before['rev']}`", "today"],
                               [[n, ", ".join(before["tags"][n]), ", ".join(after["tags"][n])] for n in names[:12]])]
    else:
        lines += ["Top 6 of the example queries today (label · caption):", "",
                  common.table(["query", "today"], [[f"`{q}`", _hits(after["queries"][q])] for q in res["queries"]])]
    lines += ["", "Small test sets (about a hundred photos, many labels with one or two): differences of a few "
                  "hundredths are within the spread between seeds."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
