"""Train the DeViSE head on a bundle's cached features, evaluate it against ConSE, and write it into the bundle.

    python -m training.train_devise --bundle assets/tuxpaint [--loss hinge|cosine] [--epochs 80] \\
        [--holdout-classes fish,dogs] [--push-to-hub USER/REPO]

The head goes to BUNDLE/head (config.json, model.safetensors, README.md model card with the metrics, training.png);
the bundle's Text→Image index is rebuilt with it. 80/20 split stratified by label with a fixed seed; early
stopping on the validation split.

``--push-to-hub REPO_ID`` checks that the Hub answers and the token is valid, trains (as above, replacing any head the
bundle had) and then publishes the result, as ``python -m training.publish BUNDLE REPO_ID`` would. To publish a head
you have already trained, run ``python -m training.publish`` instead: it sends the bundle as it is.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from searchcore.errors import BadArgumentError, SearchError
from searchcore.models.fit import LOSSES, TrainConfig

from .cli import BUNDLE_MODELS_HINT, add_debug_flag, progress_bar, run


def parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m training.train_devise", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, type=Path, help="a bundle folder made by training.build_assets")
    p.add_argument("--loss", choices=LOSSES, default=d.loss, help="hinge: DeViSE rank loss; cosine: the seed's")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"most epochs (default {d.epochs})")
    p.add_argument("--patience", type=int, default=d.patience, help="epochs without improvement before stopping")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--holdout-classes", default="", help="comma-separated labels kept out of training (zero-shot)")
    p.add_argument("--dry-run", metavar="DIR", type=Path, default=None,
                   help="with --push-to-hub: write exactly what would be uploaded into DIR, contact nothing")
    p.add_argument("--push-to-hub", metavar="REPO_ID", default=None,
                   help="train, then publish: the new head to the model repo REPO_ID and the bundle to the dataset "
                        "repo REPO_ID (to publish a head already trained, without training again, run python -m "
                        "training.publish BUNDLE REPO_ID); token from HF_TOKEN or hf auth login")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    # recorded with the head: this module's name and its own arguments (sys.argv is the caller's under Python)
    command = f"{cli.prog} {shlex.join(sys.argv[1:] if argv is None else argv)}"
    if args.push_to_hub and not args.dry_run:  # an unreachable Hub or a bad token: said now, not after the training
        from .publish import precheck

        if failed := precheck(debug=args.debug):
            return failed
    return run(lambda: _train(args, command), debug=args.debug, hub_hint=BUNDLE_MODELS_HINT)


def _train(args: argparse.Namespace, command: str) -> int:
    from searchcore.build.card import metrics_table, write_card  # torch: only once there is work to do
    from searchcore.build.pipeline import check_trainable, train_bundle

    check_trainable(args.bundle)  # a CLIP bundle has no head to train: say so before the progress bar
    config = TrainConfig(loss=args.loss, epochs=args.epochs, patience=args.patience, lr=args.lr,
                         batch_size=args.batch_size, seed=args.seed,
                         holdout_classes=tuple(c.strip() for c in args.holdout_classes.split(",") if c.strip()))
    try:
        with progress_bar(f"training {args.bundle}") as report:
            result, metrics = train_bundle(args.bundle, config, report=report, command=command,
                                           write_card=write_card)
    except SearchError:
        raise
    except ValueError as exc:  # the trainer refuses settings and data it cannot train on; its message says why
        raise BadArgumentError(str(exc)) from exc
    summary = {"bundle": str(args.bundle), "best_epoch": result.best_epoch,
               "train_seconds": round(result.seconds, 2), "metrics": metrics}
    if args.push_to_hub:
        from .publish import publish_bundle

        summary["hub"] = publish_bundle(args.bundle, args.push_to_hub,
                                        **({"dry_run_dir": args.dry_run} if args.dry_run else {}))
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print(f"trained in {result.seconds:.1f} s (best epoch {result.best_epoch}); head written to "
              f"{args.bundle / 'head'}\n\n{metrics_table(metrics)}")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
