"""The two steps that make a servable bundle: build it (extract + index) and train its head (fit + evaluate).

The CLIs in ``training/`` and the app's first-start builder both call these, so a bundle made by hand and the
one the app makes for itself are the same thing. Progress goes to a ``report(fraction, message)`` callback.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from . import bundle as B
from .backbone import load_backbone
from .build import rebuild_semantic, write_bundle
from .card import write_card as default_card
from .collection import Collection, load_collection
from .extract import clear, extract_collection
from .fit import Split, TrainConfig, TrainResult, train_head
from .head import ConSE, DeViSEHead, blend, load_head
from .metrics import choose_mix, evaluate_embeddings, finite
from .words import WordVectors, load_word_vectors

Report = Callable[[float, str], None]


def _quiet(_fraction: float, _message: str) -> None:
    pass


def command_line() -> str:
    return "python -m " + " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).stem, *sys.argv[1:]])


def build_bundle(
    collection: str | Collection,
    out: str | Path,
    backbone: str,
    words: str | WordVectors,
    *,
    report: Report = _quiet,
    word_vocab: int | None = None,
    tag_vocab: int | None = None,
    batch_size: int | None = None,
    command: str = "",
) -> tuple[Path, dict[str, Any]]:
    """Extract features (resumably), copy photos, build the indexes and write the manifest; return (path, stats)."""
    out = Path(out)
    coll = load_collection(collection) if isinstance(collection, str) else collection
    report(0.0, f"loading {backbone}")
    net = load_backbone(backbone, batch_size=batch_size)
    vectors = words if isinstance(words, WordVectors) else load_word_vectors(words)
    started = time.perf_counter()
    extraction = extract_collection(net, coll, out, progress=lambda d, n: report(0.05 + 0.8 * d / max(n, 1),
                                                                                 f"features {d}/{n}"))
    extract_seconds = time.perf_counter() - started
    report(0.86, "building indexes")
    extra = {k: v for k, v in (("word_vocab", word_vocab), ("tag_vocab", tag_vocab)) if v}
    info = {"command": command, "collection": coll.name, "source": str(coll.root),
            "extract_seconds": round(extract_seconds, 3),
            "images_per_second": round(len(extraction.collection) / max(extract_seconds, 1e-9), 2),
            "skipped": [{"path": it.path, "why": why} for it, why in extraction.skipped]}
    write_bundle(out, extraction.collection, extraction.features, net.spec, net.class_names, vectors,
                 build_info=info, log=lambda m: report(0.9, m), **extra)
    clear(out)
    report(1.0, f"bundle ready: {len(extraction.collection)} photos")
    return out, info


def _embedder(head: DeViSEHead, features: np.ndarray, logits: np.ndarray, conse: ConSE
              ) -> Callable[[float], np.ndarray]:
    """mix → the blended embeddings of every item (both sides computed once)."""
    head_emb, conse_emb = head.embed(features), conse.embed(logits)
    return lambda mix: blend(head_emb, conse_emb, mix)


def evaluate_bundle(root: str | Path, words: WordVectors | None = None, head: DeViSEHead | None = None,
                    split: Split | None = None) -> dict[str, Any]:
    """ConSE, the head alone and the served blend side by side on the split recorded at training time."""
    from .backbone import imagenet_class_names

    bundle = B.open_bundle(root)
    manifest = bundle.manifest
    words = words or load_word_vectors(manifest["words"])
    training = manifest.get("training", {})
    if split is None:
        if "split" not in training:
            raise B.BundleError("has no trained head to evaluate.", bundle.root / B.MANIFEST,
                                f"Train one with: python -m training.train_devise --bundle {bundle.root}")
        split = Split.from_dict(training["split"])
    if head is None and bundle.head_dir is not None:
        head = load_head(bundle.head_dir)
    labels = [it.label for it in bundle.items]
    conse = ConSE.from_words(imagenet_class_names(), words, top_t=int(manifest.get("conse_top_t", 10)))
    tag_ids = words.alpha_ids(int(manifest.get("tag_vocab", 30_000)))
    results: dict[str, Any] = {
        "conse": evaluate_embeddings(conse.embed(bundle.logits), labels, split, words, tag_ids),
    }
    if head is not None:
        embed = _embedder(head, bundle.features, bundle.logits, conse)
        results["head"] = evaluate_embeddings(embed(0.0), labels, split, words, tag_ids)
        search = evaluate_embeddings(embed(head.conse_mix), labels, split, words, tag_ids)
        tags = evaluate_embeddings(embed(head.tag_conse_mix), labels, split, words, tag_ids)
        # the served figures: each query type with its own blend weight
        results["served"] = {**search, **{k: v for k, v in tags.items() if "tag" in k},
                             "conse_mix": head.conse_mix, "tag_conse_mix": head.tag_conse_mix}
    from .metrics import image_image_precision

    pool = np.concatenate([split.val, split.holdout])
    results["features_image_image_p10"] = finite(image_image_precision(bundle.features[pool],
                                                                       [labels[i] for i in pool]))
    results["eval_items"] = len(pool)
    return results


def unseen_distance(features: np.ndarray, split: Split, quantile: float = 0.95) -> float | None:
    """The 95th percentile of held-back photos' cosine distance to their nearest training photo.

    Held-back photos come from the same collection as the training ones, so 95% of in-collection images are at
    most this far from a training photo; a query farther than that is a kind of image the head never saw.
    """
    from .index import exact_search

    if len(split.val) == 0 or len(split.train) == 0:
        return None
    nearest = exact_search(features[split.train], features[split.val], 1).distances[:, 0]
    return round(float(np.quantile(nearest, quantile)), 4)


def calibration_classes(labels: list[str], trained: list[str], seed: int, share: float = 0.25) -> tuple[str, ...]:
    """A fixed-seed quarter of the trained labels that have at least two items, to play "never seen" classes."""
    counts = {lab: labels.count(lab) for lab in trained}
    candidates = sorted(lab for lab, n in counts.items() if n >= 2)
    rng = np.random.default_rng(seed + 1)
    chosen = rng.choice(len(candidates), size=max(1, int(share * len(candidates))), replace=False)
    return tuple(sorted(candidates[i] for i in chosen)) if len(candidates) > 2 else ()


def train_bundle(
    root: str | Path,
    config: TrainConfig | None = None,
    *,
    report: Report = _quiet,
    command: str = "",
    write_card: Callable[[Path, dict[str, Any]], None] | None = None,
) -> tuple[TrainResult, dict[str, Any]]:
    """Train the head on the bundle's features, choose the ConSE blends on held-back items, evaluate, write it all.

    The head folder gets config.json, model.safetensors and a model card (``write_card``, default
    :func:`searchcore.card.write_card`: README.md with the metrics and training.png).
    """
    from .backbone import imagenet_class_names

    config = config or TrainConfig()
    root = Path(root)
    bundle = B.open_bundle(root)
    manifest = bundle.manifest
    words = load_word_vectors(manifest["words"])
    labels = [it.label for it in bundle.items]
    report(0.0, f"training the head ({config.loss} loss)")
    result = train_head(bundle.features, labels, words, config, backbone=manifest["backbone"],
                        progress=lambda e, n, row: report(0.5 * e / n, f"epoch {e}: val loss {row['val_loss']:.4f}"))
    report(0.5, "calibrating the head/ConSE blend with classes held out")
    conse = ConSE.from_words(imagenet_class_names(), words, top_t=int(manifest.get("conse_top_t", 10)))
    tag_ids = words.alpha_ids(int(manifest.get("tag_vocab", 30_000)))
    calibration = calibration_classes(labels, result.labels, config.seed)
    calib = train_head(bundle.features, labels, words,
                       # as many epochs as the final head's best, so the calibration head is trained alike
                       replace(config, holdout_classes=(*config.holdout_classes, *calibration),
                               epochs=max(result.best_epoch, 1), patience=max(result.best_epoch, 1)),
                       backbone=manifest["backbone"])
    mixes, mix_scores = choose_mix(_embedder(calib.head, bundle.features, bundle.logits, conse), labels,
                                 calib.split, words, tag_ids)
    ood = unseen_distance(bundle.features, result.split)
    result.head.set_serving(mixes["search"], mixes["tags"], ood)
    report(0.9, "evaluating")
    metrics = evaluate_bundle(root, words, result.head, result.split)
    training = {
        "config": config.to_dict(),
        "split": result.split.to_dict(),
        "trained_labels": result.labels,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "train_seconds": round(result.seconds, 3),
        "extract_seconds": manifest.get("build", {}).get("extract_seconds"),
        "history": result.history,
        "conse_mix": mixes,
        "ood_distance": ood,
        "mix_scores": {name: {str(k): v for k, v in table.items()} for name, table in mix_scores.items()},
        "calibration_classes": list(calibration),
        "command": command,
    }
    _save_head(root, result.head, {"metrics": metrics, "training": training}, write_card or default_card)
    fields = {k: v for k, v in manifest.items() if k not in ("format", "files")}
    fields.update(metrics=metrics, training=training)
    report(0.95, "re-embedding the collection with the new head")
    rebuild_semantic(root, words, imagenet_class_names(), result.head, fields=fields)
    report(1.0, "head trained")
    return result, metrics


def _save_head(root: Path, head: DeViSEHead, card: dict[str, Any],
               write_card: Callable[[Path, dict[str, Any]], None] | None) -> None:
    """Write the head into a temp folder and swap it in, so a crash never leaves half a head in the bundle."""
    staging = Path(tempfile.mkdtemp(prefix=".head.", dir=root))
    try:
        head.save_pretrained(staging)
        if write_card is not None:
            write_card(staging, card)
        (root / B.MANIFEST).unlink(missing_ok=True)  # the old manifest no longer vouches for the head
        old = root / B.HEAD
        if old.exists():
            trash = root / ".head.old"
            shutil.rmtree(trash, ignore_errors=True)
            old.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        staging.rename(old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
