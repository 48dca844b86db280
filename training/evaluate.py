"""Evaluate a bundle's head against ConSE on the split recorded when it was trained.

    python -m training.evaluate --bundle assets/tuxpaint [--json]

Text→Image precision@10 per label word, Image→Image precision@10 (same label), tag hit@5 and, for classes held
out of training, zero-shot Text→Image precision@10 — for ConSE, the head alone and the served blend side by side.

``--clip CLIP_BUNDLE`` adds CLIP zero-shot as a fourth column, on the same held-back photos and queries: a bundle of
the same collection built with ``--backbone clip:openai/clip-vit-base-patch32`` (or a local CLIP folder).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from .cli import BUNDLE_MODELS_HINT, add_debug_flag, run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, type=Path, help="a bundle with a trained head")
    p.add_argument("--clip", metavar="CLIP_BUNDLE", type=Path, default=None,
                   help="a CLIP bundle of the same photos: CLIP zero-shot side by side (the 'clip' entry)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    add_debug_flag(p)
    args = p.parse_args(argv)
    return run(lambda: _evaluate(args), debug=args.debug, hub_hint=BUNDLE_MODELS_HINT)


def _evaluate(args: argparse.Namespace) -> int:
    from searchcore.build.card import metrics_table  # torch: only once there is work to do
    from searchcore.build.pipeline import evaluate_bundle

    with contextlib.redirect_stdout(sys.stderr):  # huggingface_hub prints while loading the head; keep --json clean
        metrics = evaluate_bundle(args.bundle, clip=args.clip)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(metrics_table(metrics))
        print(f"\nImage→Image precision@10 on raw features: {metrics['features_image_image_p10']}; "
              f"{metrics['eval_items']} held-back photos.")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
