"""CLIP's speed on the CPU against the CNN backbones: images/s of image embedding, queries/s of text embedding.

    python -m bench.bench_clip            # ViT-B/32 CLIP, the tests' tiny CLIP, EfficientNet-Lite0, VGG16 (~3 min)
    python -m bench.bench_clip --quick    # no VGG16, fewer rounds
    python -m bench.bench_clip --write    # also update section 8 of docs/benchmarks.md

The Hub is out of reach here, so the CLIPs have **random weights**: ``CLIPConfig()``'s defaults are the
architecture of ``openai/clip-vit-base-patch32`` (ViT-B/32 image tower at 224×224, a 12-layer 512-wide text
tower, 512-d projections), and random weights cost the same arithmetic as trained ones. The tiny CLIP is the
tests' (tests/_synthetic.write_tiny_clip), loaded through :func:`searchcore.models.clip.load_clip_backbone`.

* **Images**: the forward pass each backbone's ``extract`` runs (``Backbone.forward``: CLIP's image tower and its
  zero-shot logits; the CNNs' features and classifier) on random inputs of the model's own size, at batch 1 (a
  search) and batch 16 (building a collection), at one torch thread (see ``SEARCH_THREADS``), rounds interleaved.
* **Queries**: what a Text → Image search costs before the index is asked. CLIP: the text tower on one prompt of
  8 tokens, the length of "a photo of a dog." under CLIP's BPE (start, 6 tokens, end) — the random ViT-B/32 has no
  tokenizer offline, so token ids are fed directly. A DeViSE bundle's query is the word's GloVe vector
  (``WordVectors.combine``, glove-6b-50d): its head embeds photos, not queries.
* **Class prompts**: the 1000 ImageNet prompts a CLIP engine embeds once when it loads (its zero-shot classifier),
  8 tokens each, in batches of 64.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import common

CNNS = {"tf_efficientnet_lite0@pypi": "EfficientNet-Lite0 (offline)", "vgg16.tv_in1k@random": "VGG16"}
PROMPT_TOKENS = 8  # "a photo of a dog." under CLIP's BPE: <start> a photo of a dog . <end>
BATCH = 16
# One torch thread for every case: a search runs at SEARCH_TORCH_THREADS (default 1), and on this shared 2-core
# machine a second thread's gain goes to the neighbours (docs/benchmarks.md §2, threads: a first run at 2 threads
# had the tiny CLIP embed 43 images/s batched against 920 one by one). The ratios between models are the point.
SEARCH_THREADS = 1
QUALITY = """**Quality is not measured here**: it needs the real checkpoint, and the Hub is out of reach (a \
random CLIP's figures would say nothing). On a machine that reaches the Hub, this adds CLIP zero-shot as a fourth \
column to every table of section 6, on the same test photos, queries and metrics:

```bash
python -m bench.bench_quality --clip clip:openai/clip-vit-base-patch32 --write
```

and for any bundle of yours with a trained head, beside a CLIP bundle of the same photos:

```bash
python -m training.build_assets --collection PHOTOS --out assets/mine-clip --backbone clip:openai/clip-vit-base-patch32
python -m training.evaluate --bundle assets/mine --clip assets/mine-clip --json   # the "clip" entry
```"""


def vit_b32() -> Any:
    """A random CLIP with openai/clip-vit-base-patch32's architecture, as a ClipBackbone.

    It has no tokenizer offline, so its class prompts are embedded from token ids (:func:`class_prompts`).
    """
    import torch
    from transformers import CLIPConfig, CLIPModel

    from searchcore.models.clip import ClipBackbone

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = CLIPModel(CLIPConfig()).eval()
    net = ClipBackbone(spec="clip:random ViT-B/32", model=model, transform=lambda im: im, data_config={})
    net._classes = class_prompts(net)[1]
    return net


def tiny(folder: Path) -> Any:
    import sys

    sys.path.insert(0, str(common.ROOT / "tests"))
    from _synthetic import write_tiny_clip

    from searchcore.models.backbones import load_backbone

    return load_backbone(f"clip:{write_tiny_clip(folder / 'tiny-clip')}")


def image_size(net: Any) -> int:
    from searchcore.models.clip import ClipBackbone

    if isinstance(net, ClipBackbone):
        return int(net.model.config.vision_config.image_size)
    return int(net.data_config["input_size"][1])


def per_item(fn: Callable[[], Any], n_items: int, budget: float, threads: int | None = None) -> Callable[[], float]:
    """A case for :func:`common.interleaved`: seconds per item, over as many calls as fit in ``budget`` seconds,
    at ``threads`` torch threads (None: the default)."""
    import torch

    def case() -> float:
        default = torch.get_num_threads()
        torch.set_num_threads(threads or default)
        try:
            calls, start = 0, time.perf_counter()
            while True:
                fn()
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= budget:
                    return elapsed / (calls * n_items)
        finally:
            torch.set_num_threads(default)

    return case


def text_case(net: Any) -> Callable[[], Any]:
    import torch

    ids = torch.randint(2, int(net.model.config.text_config.vocab_size) - 2, (1, PROMPT_TOKENS))
    mask = torch.ones_like(ids)

    def run() -> Any:
        with torch.inference_mode():
            return net.model.get_text_features(input_ids=ids, attention_mask=mask)

    return run


def class_prompts(net: Any) -> tuple[float, Any]:
    """Seconds to embed 1000 class prompts in batches of 64, as ``classifier_weights`` does (8-token prompts),
    and the unit embeddings."""
    import numpy as np
    import torch

    from searchcore.index import unit_rows
    from searchcore.models.clip import TEXT_BATCH, _pooled

    vocab = int(net.model.config.text_config.vocab_size)
    rows = []
    start = time.perf_counter()
    for begin in range(0, 1000, TEXT_BATCH):
        ids = torch.randint(2, vocab - 2, (min(TEXT_BATCH, 1000 - begin), PROMPT_TOKENS))
        with torch.inference_mode():
            out = net.model.get_text_features(input_ids=ids, attention_mask=torch.ones_like(ids))
        rows.append(_pooled(out).float().numpy())
    return time.perf_counter() - start, unit_rows(np.concatenate(rows))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of batch-1 calls per case per round")
    args = parser.parse_args(argv)
    reps = args.reps or (2 if args.quick else 3)
    import torch

    from searchcore.models.backbones import load_backbone
    from searchcore.models.words import OFFLINE_WORDS, load_word_vectors, parse_query

    info = common.machine(with_torch=True)
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-clip-"))
    nets: dict[str, tuple[str, Any]] = {"vit-b32": ("CLIP ViT-B/32 (random weights)", vit_b32()),
                                        "tiny": ("CLIP, the tests' tiny model", tiny(work))}
    labels = {"vit-b32": "CLIPConfig() defaults", "tiny": "tests/_synthetic.write_tiny_clip"}
    for spec, name in CNNS.items():
        if args.quick and spec.startswith("vgg16"):
            continue
        common.log(f"loading {spec}")
        nets[spec] = (name, load_backbone(spec))
    cases: dict[str, Callable[[], float]] = {}
    for key, (_, net) in nets.items():
        size = image_size(net)
        one, many = torch.randn(1, 3, size, size), torch.randn(BATCH, 3, size, size)
        net.forward(one)  # warm-up (and CLIP's class prompts, computed once)
        cases[f"{key} image 1"] = per_item(lambda n=net, x=one: n.forward(x), 1, args.budget, SEARCH_THREADS)
        cases[f"{key} image {BATCH}"] = per_item(lambda n=net, x=many: n.forward(x), BATCH, 0.0, SEARCH_THREADS)
    clip_keys = [k for k in nets if k in ("vit-b32", "tiny")]
    for key in clip_keys:
        run = text_case(nets[key][1])
        run()
        cases[f"{key} text"] = per_item(run, 1, args.budget, SEARCH_THREADS)
    old_cache = os.environ.get("SEARCH_CACHE_DIR")
    os.environ.setdefault("SEARCH_CACHE_DIR", str(work / "cache"))
    words = load_word_vectors(OFFLINE_WORDS)
    terms = parse_query("dog")
    cases["glove text"] = per_item(lambda: words.combine(terms), 1, args.budget / 4)
    common.log(f"{len(cases)} cases, {reps} rounds")
    timings = common.interleaved(cases, reps=reps, log=common.log)
    prompts = {key: common.median([class_prompts(nets[key][1])[0] for _ in range(reps)]) for key in clip_keys}
    if old_cache is None:
        os.environ.pop("SEARCH_CACHE_DIR", None)
    rows = []
    for key, (name, net) in nets.items():
        row = {"key": key, "name": name, "spec": labels.get(key, net.spec), "input": image_size(net),
               "dim": net.feature_dim,
               "params_m": sum(p.numel() for p in net.model.parameters()) / 1e6}
        for label, case in (("batch1", f"{key} image 1"), (f"batch{BATCH}", f"{key} image {BATCH}"),
                            ("text", f"{key} text")):
            if case in timings:
                row[label] = {"per_s": 1 / common.median(timings[case]),
                              "range": [1 / x for x in reversed(common.spread(timings[case]))]}
        if key in prompts:
            row["class_prompts_s"] = prompts[key]
        rows.append(row)
    glove = {"per_s": 1 / common.median(timings["glove text"]),
             "range": [1 / x for x in reversed(common.spread(timings["glove text"]))]}
    info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {"machine": info, "command": common.command("bench.bench_clip", argv), "reps": reps, "rows": rows,
              "glove": glove, "seconds": time.perf_counter() - t0}
    text = render(result)
    print(text)
    common.emit_json("bench_clip", result)
    if args.write:
        # its own machine line only: the Machine section describes the machine of the other sections
        common.write_section("bench_clip", text, "8. CLIP")
        common.log(f"wrote {common.DOC}")
    return result


def _rate(cell: dict[str, Any] | None) -> tuple[str, str]:
    if not cell:
        return "—", ""
    low, high = cell["range"]
    return common.fmt(cell["per_s"]), f"{common.fmt(low)}–{common.fmt(high)}"


def render(res: dict[str, Any]) -> str:
    info = res["machine"]
    lines = [f"Command: `{res['command']}`", "",
             f"Machine: {common.machine_line(info)} Load average at the end: {info['load_avg_end'][0]}.", "",
             "The CLIPs have **random weights** (the Hub is out of reach here): `CLIPConfig()`'s defaults are the "
             "architecture of `openai/clip-vit-base-patch32`, and random weights cost the same arithmetic as "
             "trained ones. *Images*: `Backbone.forward` (what `extract` runs: CLIP's image tower and its zero-shot "
             "logits; the CNNs' features and ImageNet classifier) on random inputs of each model's size: batch 1 "
             f"(a search) and batch {BATCH} (a build), at {SEARCH_THREADS} torch thread (a search's default; at 2 "
             "threads this shared machine's neighbours ate the second thread and more: §2's threads block). "
             f"*Queries*: CLIP's text tower on one {PROMPT_TOKENS}-token "
             f"prompt (\"a photo of a dog.\" under CLIP's BPE; token ids fed directly; {SEARCH_THREADS} thread), "
             "against a DeViSE bundle's query, the GloVe vector of the word (`WordVectors.combine`). *Class prompts*: "
             f"1000 prompts of {PROMPT_TOKENS} tokens in batches of 64 at torch's default threads, what a CLIP engine "
             "computes once per checkpoint and caches (median of the rounds' runs). Rates: median of "
             f"{res['reps']} interleaved rounds (range beside it).", ""]
    rows = []
    for row in res["rows"]:
        b1, r1 = _rate(row.get("batch1"))
        b16, r16 = _rate(row.get(f"batch{BATCH}"))
        q, rq = _rate(row.get("text"))
        prompts = f"{common.fmt(row['class_prompts_s'])} s" if "class_prompts_s" in row else "—"
        rows.append([f"**{row['name']}** (`{row['spec']}`)", f"{row['input']}²", row["dim"],
                     f"{common.fmt(row['params_m'])} M", f"{b1} ({r1})", f"{b16} ({r16})", f"{q} ({rq})" if rq else q,
                     prompts])
    glove, rg = _rate(res["glove"])
    rows.append(["GloVe 6B 50-d lookup (a DeViSE bundle's query)", "—", 50, "—", "—", "—", f"{glove} ({rg})", "—"])
    lines.append(common.table(["model", "input", "dim", "parameters", "images/s, batch 1", f"images/s, batch {BATCH}",
                               "queries/s", "1000 class prompts"], rows))
    by_key = {row["key"]: row for row in res["rows"]}
    vit, lite = by_key.get("vit-b32"), by_key.get("tf_efficientnet_lite0@pypi")
    vgg = by_key.get("vgg16.tv_in1k@random")
    notes = []
    if vit and lite:
        ratio = vit[f"batch{BATCH}"]["per_s"] / lite[f"batch{BATCH}"]["per_s"]
        notes.append(f"- Building a collection, ViT-B/32 CLIP embeds {ratio:.2g}× the images/s of EfficientNet-Lite0"
                     + (f" and {vit[f'batch{BATCH}']['per_s'] / vgg[f'batch{BATCH}']['per_s']:.2g}× VGG16's."
                        if vgg else "."))
    if vit:
        notes.append(f"- A CLIP Text → Image query costs one text-tower pass, {1000 / vit['text']['per_s']:.3g} ms "
                     f"for ViT-B/32, against {1000 / res['glove']['per_s']:.2g} ms for a GloVe lookup; the first "
                     f"CLIP engine of a checkpoint also embeds the 1000 class prompts ({vit['class_prompts_s']:.2g} "
                     "s), which later ones read from the cache.")
    lines += ["", *notes, "", QUALITY]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
