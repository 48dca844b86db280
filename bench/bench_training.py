"""Training the DeViSE head on cached features, against extracting those features and against the seed's recipe.

    python -m bench.bench_training            # build the Tux Paint bundle, train its head 3 times (a few minutes)
    python -m bench.bench_training --quick    # one training run, fewer photos for the per-photo timing
    python -m bench.bench_training --write    # also update section 4 of docs/benchmarks.md

On the offline Tux Paint collection (backbone ``tf_efficientnet_lite0@pypi``, words ``glove-6b-50d``), in a private
cache folder (``SEARCH_CACHE_DIR`` is pointed there, so no one else's cache is read or written):

1. :func:`searchcore.build.pipeline.build_bundle` builds the bundle from scratch; its ``extract_seconds`` is the feature
   extraction (decoding + the network over every photo, once). The functions it calls (:data:`BUILD_STEPS`) are
   wrapped with timers during the build, so the report can say where the rest of the call went; the indexes'
   sizes come from the manifest.
2. :func:`searchcore.build.pipeline.train_bundle` trains the head on those features, ``--reps`` times (each run replaces
   the head). Timed: the head's training (``TrainResult.seconds``: early stopping, then the refit) and the whole
   call, which also trains the calibration head, chooses the served mix, measures on the test split and re-embeds
   the collection; the call's progress messages split it into those phases. The configuration reported is the one
   the manifest records.
3. The seed's recipe ran the backbone over every image in every epoch. Its cost is estimated as
   seconds per image × images × epochs, from per-image times measured here: the offline backbone during the build,
   and both the offline backbone and VGG16 (``vgg16.tv_in1k@random``: random weights, same speed) on the same few
   collection photos at batch 16, interleaved. Forward passes only, so a lower bound on what the seed spent.

The bundle stays in the cache folder for ``bench.bench_quality`` (``--cache`` names the folder; default a fixed
folder under the system temp dir).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import common

COLLECTION = "tuxpaint"
BACKBONE = "tf_efficientnet_lite0@pypi"
VGG = "vgg16.tv_in1k@random"
WORDS = "glove-6b-50d"
SEED_EPOCHS = 50  # the seed project's recipe: the backbone ran over every photo in each of 50 epochs
TIMING_BATCH = 16  # the batch of the per-photo timing
BUNDLE_NAME = "bench-tuxpaint"
FEATURE_DIM_MISMATCH: dict[str, int] = {}  # backbones whose Backbone.feature_dim disagreed with their features
# progress messages of train_bundle that start each phase (searchcore/build/pipeline.py), in order
PHASES = (("training the head", "head training (early stopping, then the refits)"),
          ("choosing the served mix", "calibration head + choice of the served mix"),
          ("measuring on the test split", "evaluation"), ("re-embedding", "re-embedding + writing"),
          ("head trained", None))
# what build_bundle spends its time on: the functions it calls, timed by wrapping them during the build
BUILD_STEPS = (("searchcore.build.pipeline", "load_backbone", "model loading"),
               ("searchcore.build.write", "copy_images", "copying photos"),
               ("searchcore.build.write", "_word_index", "word index"),
               ("searchcore.build.write", "write_tags", "tag vocabulary + its index"),
               ("searchcore.build.write", "rebuild_semantic", "word-space photo indexes + manifest"))


def default_cache() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"semantic-search-bench-{uid}"


def use_cache(folder: str | Path | None) -> Path:
    """Point ``SEARCH_CACHE_DIR`` at the benchmarks' own cache folder (word vectors, bundles) and return it."""
    cache = Path(folder) if folder else default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["SEARCH_CACHE_DIR"] = str(cache)
    return cache


def code_version() -> str:
    """The commit measured, e.g. ``a05736c``, with `` + uncommitted changes`` when searchcore/app/training differ."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=common.ROOT, capture_output=True, text=True, timeout=30,
                                  check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "searchcore", "app.py", "training")
    return f"`{commit}`" + (" + uncommitted changes" if dirty else "")


def bundle_dir(cache: Path) -> Path:
    return cache / "bundles" / BUNDLE_NAME


def build_base(cache: Path, fresh: bool = False) -> tuple[Path, dict[str, Any], bool]:
    """The benchmarks' Tux Paint bundle in ``cache``: (folder, build info, built now?).

    Reused when a complete bundle with the right backbone, words and recipe (:data:`searchcore.build.offline.RECIPE`) is
    there, unless ``fresh``; else built from scratch (the cached word vectors are reused either way).
    """
    from searchcore import bundle as B
    from searchcore.build.offline import is_current, mark_current
    from searchcore.build.pipeline import build_bundle

    root = bundle_dir(cache)
    if not fresh and is_current(root, BACKBONE, WORDS):  # a bundle built by older code is built again
        return root, dict(B.verify(root, check_sums=False).get("build") or {}), False
    shutil.rmtree(root, ignore_errors=True)
    from searchcore.models.words import load_word_vectors

    load_word_vectors(WORDS)  # converted once into the cache; not part of the timed build
    last = [0.0]

    def report(fraction: float, message: str) -> None:
        if fraction - last[0] >= 0.1 or fraction >= 1.0:
            common.log(f"build {100 * fraction:3.0f}% {message}")
            last[0] = fraction

    started = time.perf_counter()
    with timed_steps() as steps:
        _, info = build_bundle(COLLECTION, root, BACKBONE, WORDS, report=report,
                               command=f"bench.bench_training build_bundle({COLLECTION!r})")
    seconds = time.perf_counter() - started
    manifest = B.verify(root, check_sums=False)
    mark_current(root)
    return root, {**info, **(manifest.get("build") or {}), "build_seconds": round(seconds, 3),
                  "steps": steps}, True


@contextlib.contextmanager
def timed_steps() -> Iterator[dict[str, Any]]:
    """Wrap the functions of :data:`BUILD_STEPS` while the block runs; yields {step: seconds} (summed over calls).

    ``"batch_size"`` is the batch size of the backbone ``load_backbone`` returned (what the extraction ran at).
    """
    import importlib

    out: dict[str, Any] = {}
    patched = []
    for module_name, attr, label in BUILD_STEPS:
        module = importlib.import_module(module_name)
        original = getattr(module, attr)

        def wrapper(*args: Any, _fn: Callable[..., Any] = original, _label: str = label, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                value = _fn(*args, **kwargs)
            finally:
                out[_label] = out.get(_label, 0.0) + time.perf_counter() - t0
            if _label == "model loading":
                out["batch_size"] = int(value.batch_size)
            return value

        setattr(module, attr, wrapper)
        patched.append((module, attr, original))
    try:
        yield out
    finally:
        for module, attr, original in patched:
            setattr(module, attr, original)


def time_training(root: Path, config: Any = None) -> dict[str, Any]:
    """One train_bundle call: the head's loop, the whole call and its phases (seconds), epochs run and best."""
    from searchcore.build.pipeline import train_bundle

    marks: list[tuple[str, float]] = []

    def report(_fraction: float, message: str) -> None:
        for prefix, _ in PHASES:
            if message.startswith(prefix) and not any(m == prefix for m, _ in marks):
                marks.append((prefix, time.perf_counter()))

    started = time.perf_counter()
    with watch_threads():
        result, metrics = train_bundle(root, config, report=report, command="bench.bench_training")
    total = time.perf_counter() - started
    missing = [prefix for prefix, _ in PHASES if prefix not in {m for m, _ in marks}]
    if missing:
        common.log(f"train_bundle sent no progress message starting with {missing}: the phases around them merge")
    phases = {}
    for (prefix, t0), (_, t1) in itertools.pairwise(marks):
        name = dict(PHASES)[prefix]
        if name:
            phases[name] = t1 - t0
    # the refits after early stopping: the measured head (training + validation items) and the served head (every
    # item), each as long as the best epoch
    refits = int(bool(result.refit)) + int(result.final is not None and result.final is not result.measured)
    refit_epochs = result.best_epoch * refits
    return {"head_seconds": result.seconds, "call_seconds": total, "phases": phases,
            "epochs_run": len(result.history), "best_epoch": result.best_epoch, "refit_epochs": refit_epochs,
            "metrics": metrics, "trained_labels": len(result.labels), "train_items": len(result.split.train),
            "val_items": len(result.split.val), "test_items": len(result.split.test)}


TRAIN_THREADS: list[int] = []  # torch's thread count seen inside the first training epoch


@contextlib.contextmanager
def watch_threads() -> Iterator[None]:
    """Record how many torch threads the head's training loop runs on (train_head may set its own)."""
    import torch

    from searchcore.models.head import DeViSEHead

    original = DeViSEHead.forward

    def forward(self: Any, x: Any) -> Any:
        if self.training and not TRAIN_THREADS:
            TRAIN_THREADS.append(torch.get_num_threads())
        return original(self, x)

    DeViSEHead.forward = forward  # type: ignore[method-assign]
    try:
        yield
    finally:
        DeViSEHead.forward = original  # type: ignore[method-assign]


def per_image_times(paths: list[str], reps: int) -> dict[str, list[float]]:
    """Seconds per image of Backbone.extract at TIMING_BATCH on ``paths``, offline backbone and VGG16 interleaved."""
    from searchcore.models.backbones import load_backbone

    nets = {spec: load_backbone(spec, batch_size=TIMING_BATCH) for spec in (BACKBONE, VGG)}
    for net in nets.values():
        # extract() sizes its output by Backbone.feature_dim; should that ever disagree with what
        # forward_head(pre_logits=True) returns (timm's head_hidden_size), size it from the real features and
        # say so in the report (the timing is unaffected)
        real = getattr(net.model, "head_hidden_size", None)
        if real and real != net.feature_dim:
            common.log(f"{net.spec}: Backbone.feature_dim {net.feature_dim} != forward_head's {real}; using {real}")
            net.__dict__["feature_dim"] = int(real)  # a cached_property: the instance value wins
            FEATURE_DIM_MISMATCH[net.spec] = int(real)
        net.extract(paths[:2], batch_size=TIMING_BATCH)  # untimed: first calls allocate and pick kernels

    def case(net: Any) -> Callable[[], None]:
        def run() -> None:
            net.extract(paths, batch_size=TIMING_BATCH)

        return run

    times = common.interleaved({spec: case(net) for spec, net in nets.items()}, reps=reps,
                               log=lambda m: common.log(f"per-image timing {m}"))
    return {spec: [t / len(paths) for t in values] for spec, values in times.items()}


def load_now() -> float:
    return round(os.getloadavg()[0], 2)


def dynamo_import_seconds() -> float | None:
    """Seconds to import ``torch._dynamo`` in a fresh process that has imported torch (median of 3)."""
    code = ("import json, time, torch\n"
            "t = time.perf_counter()\n"
            "import torch._dynamo\n"
            "print(json.dumps(time.perf_counter() - t))")
    try:
        return common.median([float(common.run_child(code, timeout=300)) for _ in range(3)])
    except (RuntimeError, OSError, ValueError) as exc:
        common.log(f"could not time the import of torch._dynamo: {exc}")
        return None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--cache", default=None, help="the benchmarks' cache folder (SEARCH_CACHE_DIR for this run)")
    parser.add_argument("--images", type=int, default=None, help="collection photos for the per-photo timing")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    n_timing = args.images or (16 if args.quick else 32)
    cache = use_cache(args.cache)
    info = common.machine(with_torch=True)
    common.log(f"cache folder {cache}")
    loads = {"build start": load_now()}

    common.log("building the bundle from scratch (feature extraction)")
    root, build, _ = build_base(cache, fresh=True)
    loads["build end"] = load_now()

    from searchcore import bundle as B
    from searchcore.models.fit import TrainConfig

    dynamo_before = "torch._dynamo" in sys.modules
    runs = []
    for rep in range(reps):
        common.log(f"train_bundle run {rep + 1}/{reps}")
        runs.append(time_training(root))
        if rep == 0:
            runs[0]["dynamo_loaded_after"] = "torch._dynamo" in sys.modules
        common.log(f"  head {runs[-1]['head_seconds']:.1f} s, call {runs[-1]['call_seconds']:.1f} s, "
                    f"{runs[-1]['epochs_run']} epochs (best {runs[-1]['best_epoch']})")
    loads["training end"] = load_now()
    manifest = B.verify(root, check_sums=False)
    config_used = (manifest.get("training") or {}).get("config") or {}
    default_config = TrainConfig().to_dict()

    items = B.read_items(root / B.ITEMS)
    n_images = len(items)
    step = max(1, len(items) // n_timing)
    paths = [str(root / B.IMAGES / it.path) for it in items[::step][:n_timing]]
    common.log(f"per-image time at batch {TIMING_BATCH} on {len(paths)} photos, {BACKBONE} and {VGG} interleaved")
    loads["per-photo timing start"] = load_now()
    per_image = per_image_times(paths, reps=max(2, reps))
    loads["per-photo timing end"] = load_now()
    dynamo_s = dynamo_import_seconds() if not dynamo_before and runs[0].get("dynamo_loaded_after") else None

    extract_s = float(build["extract_seconds"])
    head_s = common.median([r["head_seconds"] for r in runs])
    call_s = common.median([r["call_seconds"] for r in runs])
    epochs_run = int(common.median([r["epochs_run"] for r in runs]))
    head_epochs = int(common.median([r["epochs_run"] + r["refit_epochs"] for r in runs]))
    lite_build = extract_s / n_images
    per = {"build": lite_build, BACKBONE: common.median(per_image[BACKBONE]), VGG: common.median(per_image[VGG])}
    seed_cost = {name: {"seed": p * n_images * SEED_EPOCHS, "ours": p * n_images * head_epochs}
                 for name, p in per.items()}
    # how much repeated timings of one thing moved within this run: max ÷ min − 1, per group of repeats
    repeat_spread = {"head training": [r["head_seconds"] for r in runs],
                     "whole train_bundle call": [r["call_seconds"] for r in runs],
                     **{f"per-photo rounds, `{spec}`": per_image[spec] for spec in (BACKBONE, VGG)}}
    repeat_spread = {k: max(v) / min(v) - 1 for k, v in repeat_spread.items() if len(v) > 1 and min(v) > 0}
    result = {
        "machine": info, "command": common.command("bench.bench_training", argv), "reps": reps,
        "images": n_images, "labels": len({it.label for it in items}), "extract_seconds": extract_s,
        "build_seconds": build.get("build_seconds"), "images_per_second": build.get("images_per_second"),
        "build_steps": build.get("steps") or {}, "build_batch": (build.get("steps") or {}).get("batch_size"),
        "word_index_words": manifest.get("word_vocab"), "tag_vocab": manifest.get("tag_vocab") or {},
        "head_seconds": head_s, "head_range": common.spread([r["head_seconds"] for r in runs]),
        "call_seconds": call_s, "call_range": common.spread([r["call_seconds"] for r in runs]),
        "phases": {k: common.median([r["phases"].get(k, 0.0) for r in runs]) for k in runs[0]["phases"]},
        "epochs_run": epochs_run, "head_epochs": head_epochs, "best_epoch": runs[0]["best_epoch"],
        "refit_epochs": runs[0]["refit_epochs"],
        "epochs_all": [r["epochs_run"] for r in runs], "train_items": runs[0]["train_items"],
        "val_items": runs[0]["val_items"], "test_items": runs[0]["test_items"],
        "trained_labels": runs[0]["trained_labels"], "config": config_used,
        "config_is_default": config_used == default_config,
        "ratio_extract_over_head": extract_s / head_s, "ratio_extract_over_call": extract_s / call_s,
        "per_image": per, "per_image_runs": per_image, "timing_images": len(paths), "timing_batch": TIMING_BATCH,
        "vgg_over_lite": common.median([v / e for v, e in zip(per_image[VGG], per_image[BACKBONE], strict=True)]),
        "seed_cost": seed_cost, "ours_total": extract_s + head_s, "cache": str(cache),
        "index_seconds": build.get("index_seconds"), "skipped": list(build.get("skipped") or []),
        "feature_dim_mismatch": dict(FEATURE_DIM_MISMATCH), "first_head_seconds": runs[0]["head_seconds"],
        "dynamo": {"loaded_before": dynamo_before, "loaded_by_first_run": bool(runs[0].get("dynamo_loaded_after"))
                   and not dynamo_before, "import_seconds": dynamo_s},
        "repeat_spread": repeat_spread, "loads": loads,
        "code": code_version(), "torch_threads_training": TRAIN_THREADS[:1],
    }
    result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    text = render(result)
    print(text)
    common.emit_json("bench_training", {k: v for k, v in result.items() if k != "machine"})
    if args.write:
        common.write_section("bench_training", text, "4. Training", machine_info=info)
        common.log(f"wrote {common.DOC}")
    return result


def _s(seconds: float) -> str:
    """Seconds, with minutes or hours beside large values."""
    if seconds >= 3600:
        return f"{common.fmt(seconds)} s ({seconds / 3600:.1f} h)"
    if seconds >= 120:
        return f"{common.fmt(seconds)} s ({seconds / 60:.1f} min)"
    return f"{common.fmt(seconds)} s"


def _skipped(skipped: list[dict[str, Any]], shown: int = 3) -> str:
    """'1 photo skipped: `path` (why)': the reasons the build recorded, the first few of them."""
    if not skipped:
        return ""
    listed = "; ".join(f"`{s.get('path')}` ({s.get('why')})" for s in skipped[:shown])
    more = f"; {len(skipped) - shown} more" if len(skipped) > shown else ""
    return f"; {len(skipped)} photo{'s' if len(skipped) > 1 else ''} skipped: {listed}{more}"


def _build_note(res: dict[str, Any]) -> str:
    """What the build_bundle call spent its time on, from the wrapped steps and the manifest."""
    steps = res["build_steps"]
    tags = res["tag_vocab"]
    index_s = res.get("index_seconds")
    parts = []
    if "model loading" in steps:
        parts.append(f"model loading {_s(steps['model loading'])}")
    parts.append(f"feature extraction {_s(res['extract_seconds'])}")
    if "copying photos" in steps:
        parts.append(f"copying photos {_s(steps['copying photos'])}")
    if index_s is not None:
        inner = []
        if "word index" in steps and res.get("word_index_words"):
            inner.append(f"the {res['word_index_words']:,}-word Text→Text index {_s(steps['word index'])}")
        if "tag vocabulary + its index" in steps:
            what = f"the {tags['count']:,}-phrase tag vocabulary" if tags.get("count") else "the tag vocabulary"
            inner.append(f"{what} and its index {_s(steps['tag vocabulary + its index'])}")
        rest = index_s - steps.get("word index", 0.0) - steps.get("tag vocabulary + its index", 0.0)
        if inner:
            inner.append(f"the photo index {_s(max(rest, 0.0))}")
        parts.append(f"indexes {_s(index_s)}" + (f" ({'; '.join(inner)})" if inner else ""))
    if "word-space photo indexes + manifest" in steps:
        parts.append("the photos' word-space indexes (head, ConSE) and the manifest "
                     f"{_s(steps['word-space photo indexes + manifest'])}")
    return ", ".join(parts)


def _config(res: dict[str, Any]) -> str:
    cfg = res["config"]
    if not cfg:
        return "the bundle's manifest recorded no training configuration"
    fields = ", ".join(f"{k}={v!r}" for k, v in cfg.items())
    return ("the default `TrainConfig` " if res["config_is_default"] else "`TrainConfig` ") + f"(`{fields}`)"


def render(res: dict[str, Any]) -> str:
    n, ep, head_ep = res["images"], res["epochs_run"], res["head_epochs"]
    per = res["per_image"]
    ours = res["ours_total"]
    lo, hi = res["head_range"]
    clo, chi = res["call_range"]
    tb = res["timing_batch"]
    build_batch = res.get("build_batch")
    batch_note = f"batch {build_batch}" if build_batch else "the backbone's default batch"
    phase_rows = [[name, _s(sec)] for name, sec in res["phases"].items()]
    cost_rows = []
    for key, label in (("build", f"`{BACKBONE}`, as in the build ({batch_note}, decoding overlapped)"),
                       (BACKBONE, f"`{BACKBONE}`, batch {tb}, {res['timing_images']} photos"),
                       (VGG, f"VGG16 (`{VGG}`), batch {tb}, {res['timing_images']} photos")):
        c = res["seed_cost"][key]
        ours_b = per[key] * n + res["head_seconds"]  # extract once with this backbone, then train the head
        cost_rows.append([label, f"{common.fmt(per[key] * 1000)} ms", _s(c["seed"]),
                          f"{common.fmt(c['seed'] / ours_b)}×", _s(c["ours"]), f"{common.fmt(c['ours'] / ours_b)}×",
                          _s(ours_b)])
    quick = res["reps"] < 3
    ratio = res["ratio_extract_over_head"]
    if ratio >= 1:
        comparison = (f"**Feature extraction took {common.fmt(ratio)}× as long as training the head** "
                      f"({common.fmt(res['ratio_extract_over_call'])}× the whole `train_bundle` call).")
    else:
        comparison = (f"**Training the head took {common.fmt(1 / ratio)}× as long as feature extraction** (extraction "
                      f"/ head training = {common.fmt(ratio)}; the whole `train_bundle` call took "
                      f"{common.fmt(1 / res['ratio_extract_over_call'])}× as long as extraction): on this CPU the "
                      f"head's {head_ep} epochs over the cached features cost more than one pass of the "
                      "backbone over the photos.")
    loads = res.get("loads", {})
    drift = max(per["build"], per[BACKBONE]) / min(per["build"], per[BACKBONE])
    drift_note = (f"The two per-photo times of the offline backbone differ {common.fmt(drift)}×: both include "
                  f"decoding, but the build's ran at {batch_note} over every photo and the batch-{tb} one over "
                  f"{res['timing_images']} photos later in the run (1-minute load average "
                  f"{loads.get('build start', '?')} as the build started, {loads.get('per-photo timing start', '?')}"
                  " as the per-photo timing started). ")
    vgg_note = []
    for dim in list(res.get("feature_dim_mismatch", {}).values())[:1]:
        vgg_note = [f"`Backbone.extract` cannot run VGG16 as it stands: `Backbone.feature_dim` is timm's "
                    f"`num_features` while `forward_head(pre_logits=True)` returns {dim} values "
                    "(timm's `head_hidden_size`). The timing above sized the output array from the real features; "
                    "nothing else changed.", ""]
    dyn = res.get("dynamo", {})
    first = (f"The first training run took {_s(res['first_head_seconds'])} for the head"
             + (f" (the median of {res['reps']}: {_s(res['head_seconds'])})" if res["reps"] > 1 else ""))
    if dyn.get("loaded_by_first_run"):
        first += ("; `torch._dynamo` was not loaded before it and was after it"
                  + (f" (importing it in a fresh process that has imported torch took {_s(dyn['import_seconds'])} "
                     "here, median of 3)" if dyn.get("import_seconds") is not None else ""))
    first = first + "." if res["reps"] > 1 or dyn.get("loaded_by_first_run") else ""
    spread = res.get("repeat_spread", {})
    if spread:
        worst = max(spread.values())
        each = "; ".join(f"{k} {common.fmt(100 * v, 2)} %" for k, v in spread.items())
        spread_note = (f"Repeated timings of the same step in this run differed by up to "
                       f"{common.fmt(100 * worst, 2)} % (max ÷ min − 1: {each})")
    else:
        spread_note = "No step was timed more than once in this run"
    load_note = ", ".join(f"{k} {v}" for k, v in loads.items())
    threads = res.get("torch_threads_training")
    lines = [
        f"Command: `{res['command']}`" + ("  \n**Quick run — not the documented figures.**" if quick else ""),
        "",
        f"Machine: {common.machine_line(res['machine'])} Load average at the end: {res['machine']['load_avg_end'][0]}.",
        "",
        f"Code: {res.get('code', '?')}. "
        + (f"The head's training loop ran on {threads[0]} torch thread{'s' if threads[0] > 1 else ''} (`train_head` "
           f"sets its own), feature extraction on {res['machine'].get('torch_threads')}. " if threads else "")
        + f"Offline Tux Paint collection: {n} photos in {res['labels']} labels; backbone `{BACKBONE}`, words "
        f"`{WORDS}`; head trained with {_config(res)}, as the bundle's manifest records it: {res['train_items']} "
        f"training, {res['val_items']} validation and {res['test_items']} test items, {res['trained_labels']} "
        "labels trained on.",
        "",
        common.table(["step", "seconds", "note"], [
            ["feature extraction (in `build_bundle`, once)", _s(res["extract_seconds"]),
             f"{common.fmt(n / res['extract_seconds'])} photos/s, {batch_note}" + _skipped(res.get("skipped", []))],
            ["the whole `build_bundle` call", _s(res["build_seconds"]), _build_note(res)],
            ["head training alone (`TrainResult.seconds`)", _s(res["head_seconds"]),
             f"median of {res['reps']}, range {common.fmt(lo)}–{common.fmt(hi)} s; {ep} epochs run (best epoch "
             f"{res['best_epoch']})" + (f", then {res['refit_epochs']} epochs of refits ({res['best_epoch']} each: "
                                        "the measured head on training + validation items, the served head on "
                                        "every item)" if res.get("refit_epochs") else "")],
            ["whole `train_bundle` call", _s(res["call_seconds"]),
             f"median of {res['reps']}, range {common.fmt(clo)}–{common.fmt(chi)} s"],
        ]),
        "",
        comparison + " The call's phases (medians, from its progress messages):",
        "",
        common.table(["phase of `train_bundle`", "seconds"], phase_rows),
        "",
        f"**What the seed's recipe would cost** — the backbone over all {n} photos in every epoch, forward passes "
        f"only (a lower bound): seconds per photo × {n} × epochs, against ours with the same per-photo time: "
        f"extract once (seconds per photo × {n}) + train the head (the median above, measured on Lite0's features; "
        f"the head was not timed on VGG16's features). Ours as measured in this run: {_s(ours)}. " + drift_note
        + f"VGG16 was {common.fmt(res['vgg_over_lite'])}× slower per photo than EfficientNet-Lite0 here (median of "
        "per-round ratios).",
        "",
        common.table(["backbone, per-photo time measured", "per photo", f"{SEED_EPOCHS} epochs (seed)", "vs ours",
                      f"{head_ep} epochs (our heads', refits included)", "vs ours", "ours (extract once + head)"],
                     cost_rows),
        "",
        *vgg_note,
        *([first, ""] if first else []),
        f"Figures from one build (extraction measured once) and the medians above. {spread_note}; 1-minute load "
        f"average: {load_note}. The ratios above compare steps timed in this one run.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
