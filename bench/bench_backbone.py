"""Image features on the CPU: images/s of the backbones against the machine's own fp32 matrix-multiply rate.

    python -m bench.bench_backbone            # VGG16 (random weights) and EfficientNet-Lite0 (offline), 5–10 min
    python -m bench.bench_backbone --quick    # EfficientNet-Lite0 only, fewer rounds
    python -m bench.bench_backbone --write    # also update section 2 of docs/benchmarks.md
    python -m bench.bench_backbone --compile  # add torch.compile variants (~50 s of compiling per batch shape)
    python -m bench.bench_backbone --parts threads --write   # only part 3, which has its own block in the docs

Part 1, the network alone: the forward pass that :meth:`searchcore.models.backbone.Backbone.extract` runs
(``forward_features`` → ``forward_head(pre_logits=True)`` → classifier) on random 224×224 inputs, at batch 1 (a
search) and batched (building a collection), in variants: torch threads, channels_last, bf16 autocast. FLOPs per
image are counted by ``torch.utils.flop_counter`` (2 per multiply-add). The limit is a large fp32 ``torch.matmul``
timed in the same rounds at the same thread count, so "% of matmul" compares like with like on a noisy machine.

Part 2, decoding and the network together, on real image files (tuxpaint-stamps photos and scikit-image's
photos): ``Backbone.extract``, which decodes the next batch in a thread while the model runs, against a plain
decode-then-run loop.

Part 3, threads with a neighbour: the same model with one CPU-bound process running beside it, with libgomp's
default wait policy (its threads spin before they sleep) and with ``OMP_WAIT_POLICY=PASSIVE``, each in fresh
processes because OpenMP reads that variable once, when torch is imported.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from . import common

MODELS = {"vgg16.tv_in1k@random": "VGG16", "tf_efficientnet_lite0@pypi": "EfficientNet-Lite0"}
MATMUL_N = 2048
PARTS = ("network", "decode", "threads")
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                  "motorcycle_right.png", "hubble_deep_field.jpg", "retina.jpg", "ihc.png")
TUXPAINT = Path("/usr/share/tuxpaint/stamps")


def forward(model: Any, x: Any) -> Any:
    """Exactly what Backbone.extract runs per batch."""
    pre = model.forward_head(model.forward_features(x), pre_logits=True)
    return pre, model.get_classifier()(pre)


def flops_per_image(model: Any, size: tuple[int, int]) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        forward(model, torch.zeros(1, 3, *size))
    return float(counter.get_total_flops())


def image_files(limit: int) -> list[Path]:
    """scikit-image's colour photos, then tuxpaint-stamps photos (no symbols, cartoons or mirrored copies)."""
    files: list[Path] = []
    try:
        import skimage.data

        root = Path(skimage.data.__file__).parent
        files += [root / name for name in SKIMAGE_PHOTOS if (root / name).is_file()]
    except ImportError:
        pass
    if TUXPAINT.is_dir():
        files += sorted(p for p in TUXPAINT.rglob("*.png") if "symbols" not in p.parts and "cartoon" not in p.parts
                        and "_mirror" not in p.name)
    return files[:limit]


class Variant:
    """One way of running a model: batch size, threads, memory format, autocast dtype (or a compiled copy)."""

    def __init__(self, label: str, model: Any, batch: int, threads: int, size: tuple[int, int], *,
                 channels_last: bool = False, bf16: bool = False, fn: Callable[[Any], Any] | None = None) -> None:
        import torch

        self.label, self.model, self.batch, self.threads, self.bf16 = label, model, batch, threads, bf16
        self.channels_last, self.compiled = channels_last, fn is not None
        self.fn = fn or (lambda x: forward(model, x))  # a torch.compile'd forward replaces it
        x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))
        self.x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        # a compiled forward is specialised per input shape: warm it up at its own batch, or timing pays the compile
        self.warm_x = self.x if fn is not None else self.x[: min(batch, 2)]
        self.max_rel_err: float | None = None

    def call(self, x: Any) -> Any:
        import torch

        torch.set_num_threads(self.threads)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else nullcontext()
        with torch.inference_mode(), ctx:
            return self.fn(x)

    def timer(self, budget_s: float) -> Callable[[], float]:
        """Seconds per image, calling the model on its batch until ``budget_s`` has passed (at least once)."""

        def run() -> float:
            calls, start = 0, time.perf_counter()
            while True:
                self.call(self.x)
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= budget_s:
                    return elapsed / (calls * self.batch)

        return run


def matmul_timer(threads: int, n: int = MATMUL_N) -> Callable[[], float]:
    """A case returning fp32 matmul GFLOP/s at ``threads`` threads (reported as seconds per GFLOP)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)

    def run() -> float:
        torch.set_num_threads(threads)
        torch.matmul(a, b)  # first call at this thread count is not timed
        start = time.perf_counter()
        for _ in range(2):
            torch.matmul(a, b)
        return (time.perf_counter() - start) / (2 * 2 * n**3 / 1e9)  # seconds per GFLOP

    return run


def bf16_probe(threads: int) -> dict[str, Any]:
    """Is bf16 usable on this CPU? oneDNN's own answer plus a timed conv layer and matmul, fp32 against bf16."""
    import torch

    torch.set_num_threads(threads)
    probe: dict[str, Any] = {"onednn_bf16": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported",
                                                         lambda: False)())}
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
    x = torch.randn(1, 64, 56, 56)
    a = torch.randn(512, 512)

    def best(fn: Callable[[], Any]) -> float:
        return min(common.time_call(fn, reps=3, warmup=1))

    with torch.inference_mode():
        conv32 = best(lambda: conv(x))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            conv16 = best(lambda: conv(x))
        mm32 = best(lambda: a @ a)
        ab = a.bfloat16()
        mm16 = best(lambda: ab @ ab)
    probe.update(conv_slowdown=conv16 / conv32, matmul_slowdown=mm16 / mm32)
    return probe


def network_part(args: Any, specs: list[str], reps: int, info: dict[str, Any]) -> dict[str, Any]:
    import torch

    from searchcore.models.backbones import load_backbone

    cores = info["usable_cores"]
    thread_counts = sorted({1, cores})
    probe = bf16_probe(cores)
    common.log(f"bf16 probe: {probe}")
    bf16_ok = probe["conv_slowdown"] < 3.0  # else a bf16 VGG16 pass would take minutes
    results: dict[str, Any] = {"bf16_probe": probe, "models": {}}
    for spec in specs:
        common.log(f"loading {spec}")
        backbone = load_backbone(spec)
        # load_backbone returns the model in channels_last (as the app runs it); the plain variants run a copy in
        # PyTorch's default (contiguous) layout, so that channels_last is compared with it
        model = copy.deepcopy(backbone.model).to(memory_format=torch.contiguous_format)
        size = tuple(backbone.data_config["input_size"][1:])
        gflop = flops_per_image(model, size) / 1e9
        batch = args.batch
        cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        variants = [
            Variant(f"fp32, {cores} threads", model, 1, cores, size),
            Variant("fp32, 1 thread", model, 1, 1, size),
            Variant(f"channels_last, {cores} threads", cl_model, 1, cores, size, channels_last=True),
            Variant("channels_last, 1 thread", cl_model, 1, 1, size, channels_last=True),
            Variant(f"fp32, {cores} threads", model, batch, cores, size),
            Variant(f"channels_last, {cores} threads", cl_model, batch, cores, size, channels_last=True),
        ]
        small = gflop < 5
        if small:  # a batched 1-thread VGG16 pass takes half a minute here; batch 1 already shows the scaling
            variants.insert(5, Variant("fp32, 1 thread", model, batch, 1, size))
        skipped: dict[str, str] = {}
        # bf16 emulation costs 5–90× here: affordable for Lite0 at batch 1 only
        if bf16_ok or small:
            variants.append(Variant(f"bf16 autocast, {cores} threads", model, 1, cores, size, bf16=True))
        else:
            skipped[f"bf16 autocast, {cores} threads"] = (
                f"not run: a bf16 conv layer ran {probe['conv_slowdown']:.0f}× slower than fp32 here (oneDNN bf16 "
                f"support: {probe['onednn_bf16']})")
        if args.compile:
            # compile the whole extract step (features + head + classifier), not just model.forward
            compiled = torch.compile(lambda x, m=model: forward(m, x), dynamic=False)
            variants.append(Variant(f"torch.compile, {cores} threads", model, 1, cores, size, fn=compiled))
            variants.append(Variant(f"torch.compile, {cores} threads", model, batch, cores, size, fn=compiled))
        with torch.inference_mode():
            reference = forward(model, variants[0].x)[0]
        for v in variants:  # warm-up, and check every variant computes the same features
            start = time.perf_counter()
            v.call(v.warm_x)
            common.log(f"{spec}: warm-up {v.label} batch {len(v.warm_x)} took {time.perf_counter() - start:.2f} s")
            if v.batch == 1:
                got = v.call(v.x)[0].float()
                v.max_rel_err = float((got - reference).abs().max() / reference.abs().max().clamp_min(1e-12))
        cases: dict[str, Callable[[], float]] = {f"matmul {t}": matmul_timer(t) for t in thread_counts}
        for v in variants:
            cases[f"{v.label} | {v.batch}"] = v.timer(args.budget if v.batch == 1 else 0.0)
        timings = common.interleaved(cases, reps=reps, log=lambda m, s=spec: common.log(f"{s}: {m}"))
        rows = []
        for v in variants:
            key = f"{v.label} | {v.batch}"
            per_image = timings[key]
            limits = timings[f"matmul {v.threads}"]  # seconds per GFLOP, same rounds
            pct = common.median([(1 / s) * gflop / (1 / lim) * 100 for s, lim in zip(per_image, limits, strict=True)])
            rows.append({"variant": v.label, "batch": v.batch, "threads": v.threads,
                         "images_per_s": 1 / common.median(per_image),
                         "range": [1 / x for x in reversed(common.spread(per_image))],
                         "gflops": gflop / common.median(per_image), "pct_of_matmul": pct,
                         "max_rel_err": v.max_rel_err})
        for label, why in skipped.items():
            rows.append({"variant": label, "batch": 1, "threads": cores, "skipped": why})
        # channels_last against the default layout at the same batch and threads: median of per-round ratios
        layout = []
        for v in variants:
            base = next((b for b in variants if not (b.channels_last or b.bf16 or b.compiled)
                         and (b.batch, b.threads) == (v.batch, v.threads)), None)
            if v.channels_last and not (v.bf16 or v.compiled) and base is not None:
                pairs = zip(timings[f"{base.label} | {base.batch}"], timings[f"{v.label} | {v.batch}"], strict=True)
                layout.append({"batch": v.batch, "threads": v.threads,
                               "speedup": common.median([t_base / t_cl for t_base, t_cl in pairs])})
        results["models"][spec] = {
            "name": MODELS.get(spec, spec), "gflop_per_image": gflop, "input_size": list(size), "rows": rows,
            "feature_dim": int(reference.shape[1]), "channels_last_speedup": layout,
            "matmul_gflops": {t: 1 / common.median(timings[f"matmul {t}"]) for t in thread_counts},
        }
        del model, cl_model, variants, backbone
    return results


def decode_part(args: Any, reps: int, info: dict[str, Any]) -> dict[str, Any]:
    import torch

    from searchcore.models.backbones import load_backbone

    files = image_files(args.images)
    spec = "tf_efficientnet_lite0@pypi"
    backbone = load_backbone(spec)
    batch = backbone.batch_size
    cores = info["usable_cores"]
    common.log(f"decode part: {len(files)} files, {spec}, batch {batch}")

    def stack(paths: list[Path]) -> Any:  # a batch as Backbone.extract hands it to the model
        return torch.stack([backbone.preprocess(f) for f in paths]).contiguous(memory_format=torch.channels_last)

    def decode_all() -> list[Any]:
        return [stack(files[i : i + batch]) for i in range(0, len(files), batch)]

    decoded = decode_all()

    def model_only() -> None:
        with torch.inference_mode():
            for x in decoded:
                forward(backbone.model, x)

    def sequential() -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(files), batch):
                out.append(forward(backbone.model, stack(files[i : i + batch]))[0].numpy())
        return np.vstack(out)

    def with_threads(threads: int, fn: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            torch.set_num_threads(threads)
            fn()

        return run

    torch.set_num_threads(cores)
    check = backbone.extract(files).features
    if not np.allclose(check, sequential(), rtol=1e-4, atol=1e-5):
        raise SystemExit("Backbone.extract and the sequential loop disagree on the features.")
    cases = {  # decoding alone on one thread: its few tensor ops gain nothing from a second one
        "decode only, 1 thread": with_threads(1, decode_all),
        f"sequential decode → model, {cores} threads": with_threads(cores, sequential),
        f"Backbone.extract (overlapped), {cores} threads": with_threads(cores, lambda: backbone.extract(files)),
        "model only, 1 thread": with_threads(1, model_only),
        "sequential decode → model, 1 thread": with_threads(1, sequential),
        "Backbone.extract (overlapped), 1 thread": with_threads(1, lambda: backbone.extract(files)),
    }
    timings = common.interleaved(cases, reps=reps, warmup=0, log=lambda m: common.log(f"decode part: {m}"))
    torch.set_num_threads(cores)
    rows = {name: {"seconds": common.median(t), "images_per_s": len(files) / common.median(t),
                   "range_s": common.spread(t)} for name, t in timings.items()}
    ratios, hidden = {}, {}
    for threads in sorted({cores, 1}, reverse=True):
        suffix = f"{threads} thread{'s' if threads > 1 else ''}"
        seq = timings[f"sequential decode → model, {suffix}"]
        ext = timings[f"Backbone.extract (overlapped), {suffix}"]
        ratios[threads] = common.median([s / e for s, e in zip(seq, ext, strict=True)])
        # share of the decoding time that the overlap took off the wall clock (1 = all of it hidden)
        hidden[threads] = common.median([(s - e) / d for s, e, d in zip(seq, ext, timings["decode only, 1 thread"],
                                                                         strict=True)])
    return {"spec": spec, "files": len(files), "batch": batch, "rows": rows, "speedup": ratios, "hidden": hidden,
            "sources": {"skimage": sum("skimage" in str(f) for f in files),
                        "tuxpaint": sum(str(f).startswith(str(TUXPAINT)) for f in files)}}


_CONTENTION_CHILD = """
import json
from searchcore.models.backbones import load_backbone
from bench import common
from bench.bench_backbone import Variant
backbone = load_backbone({spec!r})
size = tuple(backbone.data_config["input_size"][1:])
# as Backbone.extract runs it: the channels_last model on channels_last batches
variants = [Variant("", backbone.model, b, t, size, channels_last=True) for b in (1, {batch})
            for t in sorted({{1, {cores}}})]
for v in variants:
    v.call(v.warm_x)
cases = {{f"{{v.threads}}|{{v.batch}}": v.timer({budget}) for v in variants}}
print(json.dumps(common.interleaved(cases, reps={reps})))
"""


def contention_part(args: Any, reps: int, info: dict[str, Any]) -> dict[str, Any]:
    """Threads under a neighbour: torch's OpenMP team with one CPU-bound process beside it, spin vs passive wait.

    Each measurement runs in a fresh process, since OMP_WAIT_POLICY is read once, when torch is imported. The
    busy neighbour is a plain Python loop started here and stopped by its own process id afterwards.
    """
    import subprocess
    import sys

    spec = "tf_efficientnet_lite0@pypi"
    cores = info["usable_cores"]
    code = _CONTENTION_CHILD.format(spec=spec, batch=args.batch, cores=cores, budget=args.budget / 2, reps=reps)
    policies: dict[str, dict[str, str | None]] = {"default (spin)": {"OMP_WAIT_POLICY": None},
                                                  "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}}
    runs: dict[str, dict[str, dict[str, list[float]]]] = {}
    loads: dict[str, dict[str, float]] = {}  # the 1-minute load average as each setting's process started
    for load in ("no added load", "+1 busy process"):
        runs[load] = {p: {} for p in policies}
        busy = None
        if load != "no added load":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for policy, env in policies.items():
                loads.setdefault(load, {})[policy] = round(os.getloadavg()[0], 2)
                out = common.run_child(code, env=env)
                for key, values in out.items():
                    runs[load][policy].setdefault(key, []).extend(values)
            common.log(f"contention part: {load} done")
        finally:
            if busy is not None:
                busy.terminate()
                busy.wait()
    table_rows = []
    for load, by_policy in runs.items():
        for policy, by_key in by_policy.items():
            for key, values in by_key.items():
                threads, batch = (int(x) for x in key.split("|"))
                table_rows.append({"load": load, "policy": policy, "threads": threads, "batch": batch,
                                   "load_avg": loads[load][policy],
                                   "images_per_s": 1 / common.median(values),
                                   "range": [1 / x for x in reversed(common.spread(values))]})
    return {"spec": spec, "rows": table_rows, "runs_per_setting": len(next(iter(
        runs["no added load"]["default (spin)"].values())))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="the batched size (default 16)")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of batch-1 calls per variant per round")
    parser.add_argument("--images", type=int, default=64, help="image files for the decode part")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="which parts to run (default: all); 'threads' has its own block in the docs")
    args = parser.parse_args(argv)
    reps = args.reps or (2 if args.quick else 3)
    import torch

    info = common.machine(with_torch=True)
    specs = ["tf_efficientnet_lite0@pypi"] if args.quick else list(MODELS)
    t0 = time.perf_counter()
    net = network_part(args, specs, reps, info) if "network" in args.parts else None
    dec = decode_part(args, reps, info) if "decode" in args.parts else None
    con = contention_part(args, reps, info) if "threads" in args.parts else None
    info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {"machine": info, "command": common.command("bench.bench_backbone", argv), "reps": reps,
              "batch": args.batch, "torch": torch.__version__, "network": net, "decode": dec, "contention": con,
              "seconds": time.perf_counter() - t0}
    main_text = render(result) if net or dec else ""
    threads_text = render_threads_block(result) if con else ""
    print("\n\n".join(t for t in (main_text, threads_text) if t))
    common.emit_json("bench_backbone", result)
    if args.write:
        if main_text:
            common.write_section("bench_backbone", main_text, "2. Image features", machine_info=info)
        if threads_text:
            common.write_section("bench_backbone_threads", threads_text, "2. Image features: threads",
                                 machine_info=info, after="bench_backbone")
        common.log(f"wrote {common.DOC}")
    return result


def render_threads_block(res: dict[str, Any]) -> str:
    return "\n".join([
        f"Command: `{res['command']}`",
        "",
        f"Machine: {common.machine_line(res['machine'])} Load average at the end: {res['machine']['load_avg_end'][0]}.",
        "",
        *render_contention(res["contention"], res["machine"]["usable_cores"]),
    ])


def _winner(rows: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    return max((r for r in rows if r["batch"] == batch and "skipped" not in r), key=lambda r: r["images_per_s"])


def render(res: dict[str, Any]) -> str:
    net = res["network"] or {}
    cores = res["machine"]["usable_cores"]
    models = net.get("models", {}).values()
    sizes = "/".join(dict.fromkeys("×".join(str(d) for d in m["input_size"]) for m in models))
    dims = "/".join(dict.fromkeys(str(m.get("feature_dim", "?")) for m in models))
    lines = [
        f"Command: `{res['command']}`",
        "",
        f"Machine: {common.machine_line(res['machine'])} Load average at the end: {res['machine']['load_avg_end'][0]}.",
        "",
        f"The forward pass of `Backbone.extract` (features + logits) on random {sizes} inputs. Images/s: median of "
        f"{res['reps']} interleaved rounds (range beside it). GFLOP/image counted by `torch.utils.flop_counter` "
        f"(2 per multiply-add). *% of matmul* = achieved GFLOP/s ÷ a {MATMUL_N}×{MATMUL_N} fp32 `torch.matmul` at "
        "the same thread count, timed in the same rounds (median of per-round ratios). *fp32* runs the model in "
        "PyTorch's default memory layout, *channels_last* in the layout `load_backbone` gives it. *Max rel. err* = "
        f"the largest difference of the {dims}-d features from plain fp32, relative to their largest value.",
        "",
    ] if net else [f"Command: `{res['command']}`", "", f"Machine: {common.machine_line(res['machine'])}", ""]
    for spec, m in net.get("models", {}).items():
        mm = ", ".join(f"{t} thread{'s' if int(t) > 1 else ''}: {common.fmt(g)} GFLOP/s"
                       for t, g in m["matmul_gflops"].items())
        lines += [f"**{m['name']}** (`{spec}`): {common.fmt(m['gflop_per_image'])} GFLOP per image. "
                  f"fp32 matmul limit: {mm}.", ""]
        rows = []
        for r in m["rows"]:
            if "skipped" in r:
                rows.append([r["variant"], r["batch"], "—", "—", "—", "—", r["skipped"]])
                continue
            lo, hi = r["range"]
            err = "" if r["max_rel_err"] is None else common.fmt(r["max_rel_err"], 2)
            rows.append([r["variant"], r["batch"], common.fmt(r["images_per_s"]),
                         f"{common.fmt(lo)}–{common.fmt(hi)}", common.fmt(r["gflops"]),
                         f"{common.fmt(r['pct_of_matmul'], 2)} %", err])
        lines += [common.table(["variant", "batch", "images/s", "range", "GFLOP/s", "% of matmul",
                                "max rel. err / note"], rows), ""]
        for batch in sorted({r["batch"] for r in m["rows"]}):
            w = _winner(m["rows"], batch)
            base = next(r for r in m["rows"] if r["batch"] == batch and r["variant"] == f"fp32, {cores} threads")
            lines.append(f"- batch {batch}: fastest is **{w['variant']}**, "
                         f"{common.fmt(w['images_per_s'] / base['images_per_s'])}× the fp32 {cores}-thread default.")
        if m.get("channels_last_speedup"):
            lines.append("- channels_last ÷ the default layout, images/s at the same batch and threads (median of "
                         "per-round ratios): " + "; ".join(
                             f"batch {c['batch']}, {c['threads']} thread{'s' if c['threads'] > 1 else ''}: "
                             f"**{common.fmt(c['speedup'])}×**" for c in m["channels_last_speedup"]) + ".")
        batches = sorted({r["batch"] for r in m["rows"]})
        if len(batches) > 1:
            best_1, best_n = _winner(m["rows"], batches[0]), _winner(m["rows"], batches[-1])
            lines.append(f"- batching: the best batch-{batches[-1]} variant gives "
                         f"{common.fmt(best_n['images_per_s'] / best_1['images_per_s'])}× the images/s of the best "
                         f"batch-{batches[0]} variant.")
        lines.append("")
    probe = net.get("bf16_probe")
    lines += [] if not probe else [
        f"bf16: oneDNN reports bf16 support **{probe['onednn_bf16']}** on this CPU (CPU capability "
        f"{res['machine'].get('torch_cpu_capability')}); a bf16-autocast 64→64 3×3 conv ran "
        f"{common.fmt(probe['conv_slowdown'], 2)}× and a 512² bf16 matmul {common.fmt(probe['matmul_slowdown'], 2)}× "
        "the fp32 time (under 1× is faster than fp32).",
        "",
    ]
    dec = res["decode"]
    if dec:
        rows = [[f"`{name}`" if name.startswith("Backbone") else name, common.fmt(r["seconds"]),
                 f"{common.fmt(r['range_s'][0])}–{common.fmt(r['range_s'][1])}", common.fmt(r["images_per_s"])]
                for name, r in dec["rows"].items()]
        speed = "; ".join(f"{t} thread{'s' if int(t) > 1 else ''}: **{common.fmt(x)}×**"
                          for t, x in dec["speedup"].items())
        lines += [
            f"**Decoding while the model runs** ({dec['spec']}, {dec['files']} files: {dec['sources']['skimage']} "
            f"scikit-image photos and {dec['sources']['tuxpaint']} tuxpaint-stamps PNGs; batch {dec['batch']}; "
            f"medians of {res['reps']} interleaved rounds; features checked equal):",
            "",
            common.table(["pass over all files", "seconds", "range", "images/s"], rows),
            "",
            f"`Backbone.extract` ÷ the sequential loop, median of per-round speed-ups, by torch thread count: {speed}. "
            "Decoding time taken off the wall clock by the overlap, (sequential − extract) ÷ decode only "
            "(over 100 % means the sequential loop lost more than the decoding itself): "
            + "; ".join(f"{t} thread{'s' if int(t) > 1 else ''}: {common.fmt(100 * h, 2)} %"
                        for t, h in dec["hidden"].items()) + ".",
        ]
    return "\n".join(lines)


def render_contention(con: dict[str, Any], cores: int) -> list[str]:
    rows = con["rows"]
    table_rows = [[r["load"], r.get("load_avg", "—"), r["policy"], r["threads"], r["batch"],
                   common.fmt(r["images_per_s"]), f"{common.fmt(r['range'][0])}–{common.fmt(r['range'][1])}"]
                  for r in rows]

    def ips(load: str, policy: str, threads: int, batch: int) -> float | None:
        for r in rows:
            if (r["load"], r["policy"], r["threads"], r["batch"]) == (load, policy, threads, batch):
                return r["images_per_s"]
        return None

    notes = []
    for load in dict.fromkeys(r["load"] for r in rows):
        for batch in sorted({r["batch"] for r in rows}):
            spin2, spin1 = ips(load, "default (spin)", cores, batch), ips(load, "default (spin)", 1, batch)
            passive2, passive1 = (ips(load, "OMP_WAIT_POLICY=PASSIVE", t, batch) for t in (cores, 1))
            if spin2 and spin1 and passive2 and passive1:
                notes.append(f"- {load}, batch {batch}: {cores} threads ÷ 1 thread = {common.fmt(spin2 / spin1)}× "
                             f"with the default policy, {common.fmt(passive2 / passive1)}× with PASSIVE; at "
                             f"{cores} threads PASSIVE ÷ default = {common.fmt(passive2 / spin2)}×.")
    return [
        f"**Threads with a neighbour** ({con['spec']}; each setting in fresh processes, since OpenMP reads "
        "`OMP_WAIT_POLICY` when torch is imported; the neighbour is one CPU-bound Python loop, i.e. one core's "
        f"worth of other work, as another request or tenant would bring; medians of {con['runs_per_setting']} "
        "timings per setting; *load average* is the machine's 1-minute load as that setting started, other "
        "tenants included). torch's OpenMP is libgomp, whose threads by default spin before they sleep.",
        "",
        common.table(["extra load", "load average", "OpenMP wait policy", "threads", "batch", "images/s", "range"],
                     table_rows),
        "",
        *notes,
    ]


if __name__ == "__main__":
    main()
