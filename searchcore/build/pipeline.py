"""The two steps that make a servable bundle: build it (extract + index) and train its head (fit + evaluate).

The CLIs in ``training/`` and the app's first-start builder both call these, so a bundle made by hand and the
one the app makes for itself are the same thing. Progress goes to a ``report(fraction, message)`` callback.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import bundle as B
from .. import storage
from ..collection import Collection, load_collection
from ..errors import BadArgumentError
from ..models.backbone import Backbone
from ..models.backbones import load_backbone
from ..models.clip import is_clip_spec, tag_embedder
from ..models.conse import ConSE
from ..models.fit import Split, TrainConfig, TrainResult, train_head
from ..models.head import DeViSEHead
from ..models.propagation import caption_keep
from ..models.words import WordVectors, load_word_vectors
from ..quality.evaluation import (  # evaluate_bundle: re-exported for the CLIs
    NEIGHBOUR_MIXES,
    SHARES,
    RealTagPhotos,
    Space,
    choose_serving,
    evaluate_bundle,
)
from ..settings import ServedSettings
from ..shards import Map
from .card import write_card as default_card
from .extract import clear, extract_collection
from .write import rebuild_semantic, write_bundle

if TYPE_CHECKING:
    from .ray_extract import RayConfig

Report = Callable[[float, str], None]


def _quiet(_fraction: float, _message: str) -> None:
    pass


def build_bundle(
    collection: str | Collection,
    out: str | Path,
    backbone: str,
    words: str | WordVectors,
    *,
    report: Report = _quiet,
    word_vocab: int | None = None,
    use_wordnet: bool = True,
    batch_size: int | None = None,
    command: str = "",
    ray: RayConfig | None = None,
    shard_size: int | None = None,
    float16: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Extract features (resumably), copy photos, build the indexes and write the manifest; return (path, stats).

    ``ray`` runs the extraction on a Ray cluster (:mod:`searchcore.build.ray_extract`), and the index shards as Ray
    tasks, with one connection held through both; everything else is the same.
    ``shard_size`` splits the photo indexes into hnswlib shards of that many photos (:mod:`searchcore.shards`);
    ``float16`` stores features and logits in half precision (see :func:`searchcore.build.write.write_bundle`).
    """
    out = Path(out)
    if ray is not None and is_clip_spec(backbone):
        raise BadArgumentError("--ray extracts with timm backbones only; build a CLIP bundle without --ray.")
    coll = load_collection(collection) if isinstance(collection, str) else collection
    report(0.0, f"loading {backbone}")
    net = load_backbone(backbone, batch_size=batch_size)
    vectors = words if isinstance(words, WordVectors) else load_word_vectors(words)
    started = time.perf_counter()

    def progress(done: int, n: int) -> None:
        report(0.05 + 0.8 * done / max(n, 1), f"features {done}/{n}")

    with ExitStack() as session:
        if ray is None:
            map_fn: Map = map  # shards, if any, one after another
            extraction = extract_collection(net, coll, out, progress=progress)
        else:
            from .ray_extract import extract_collection_ray, ray_map, ray_session

            session.enter_context(ray_session(ray.address))  # connected through extraction and the indexes
            map_fn = ray_map  # shards as Ray tasks
            extraction = extract_collection_ray(net, coll, out, ray, progress=progress)
        extract_seconds = time.perf_counter() - started
        report(0.86, "building indexes")
        extra: dict[str, Any] = {"use_wordnet": use_wordnet}
        if word_vocab:
            extra["word_vocab"] = word_vocab
        info = {"command": command, "collection": coll.name, "source": str(coll.root),
                "extract_seconds": round(extract_seconds, 3),
                "images_per_second": round(len(extraction.collection) / max(extract_seconds, 1e-9), 2),
                "skipped": [{"path": it.path, "why": why} for it, why in extraction.skipped]}
        if ray is not None:
            info["ray"] = ray.to_dict()
        write_bundle(out, extraction.collection, extraction.features, net.spec, net.class_names, vectors,
                     build_info=info, log=lambda m: report(0.9, m), shard_size=shard_size,
                     float16=float16, map_fn=map_fn, embed_tags=tag_embedder(net), **extra)
    clear(out)
    report(1.0, f"bundle ready: {len(extraction.collection)} photos")
    return out, info


def unseen_distance(features: np.ndarray, split: Split, quantile: float = 0.95) -> float | None:
    """The 95th percentile of held-back photos' cosine distance to their nearest training photo.

    Held-back photos come from the same collection as the training ones, so 95% of in-collection images are at
    most this far from a training photo; a query farther than that is a kind of image the head never saw.
    """
    from ..index import exact_search

    if len(split.val) == 0 or len(split.train) == 0:
        return None
    nearest = exact_search(features[split.train], features[split.val], 1).distances[:, 0]
    return round(float(np.quantile(nearest, quantile)), 4)


def real_validation_photos(bundle: B.Bundle, net: Backbone, conse: ConSE, head: DeViSEHead, split: Split
                           ) -> RealTagPhotos | None:
    """The public validation photos (:mod:`searchcore.quality.validation_photos`) as the tag choices see them, extracted
    by ``net`` and served by the calibration ``head`` trained on ``split.train``; None when none is installed."""
    from ..index import exact_search
    from ..quality.realphotos import real_photo_set
    from ..quality.validation_photos import VALIDATION_PHOTOS

    photos = real_photo_set(entries=VALIDATION_PHOTOS)
    if not photos.photos:
        return None
    feats = net.extract([path for _, path in photos.photos])
    nearest = exact_search(bundle.features[split.train], feats.features, 1).distances[:, 0]
    ood = unseen_distance(bundle.features, split)
    unseen = nearest > ood if ood is not None else np.zeros(len(nearest), bool)
    return RealTagPhotos(feats.features, feats.logits, [entry.words for entry, _ in photos.photos],
                         head.embed(feats.features), conse.embed(feats.logits), unseen)


def calibration_classes(labels: list[str], trained: list[str], seed: int, share: float = 0.25) -> tuple[str, ...]:
    """A fixed-seed quarter of the trained labels that have at least two items, to play "never seen" classes."""
    counts = {lab: labels.count(lab) for lab in trained}
    candidates = sorted(lab for lab, n in counts.items() if n >= 2)
    rng = np.random.default_rng(seed + 1)
    chosen = rng.choice(len(candidates), size=max(1, int(share * len(candidates))), replace=False)
    return tuple(sorted(candidates[i] for i in chosen)) if len(candidates) > 2 else ()


def check_trainable(root: str | Path) -> None:
    """Refuse a CLIP bundle before any work: its photos and words already share CLIP's space, there is no head."""
    if B.is_clip(B.verify(Path(root), check_sums=False)):
        raise BadArgumentError(f"{root} is a CLIP bundle: CLIP's photos and words already share one space, so no "
                               "DeViSE head is trained for it; serve it as it is.")


def train_bundle(
    root: str | Path,
    config: TrainConfig | None = None,
    *,
    report: Report = _quiet,
    command: str = "",
    write_card: Callable[[Path, dict[str, Any]], None] | None = None,
    real_photos: bool = True,
) -> tuple[TrainResult, dict[str, Any]]:
    """Train the head, choose how it is served on validation items, measure it on the test split, write it all.

    The head folder gets config.json, model.safetensors and a model card (``write_card``, default
    :func:`searchcore.build.card.write_card`: README.md with the metrics and training.png). ``real_photos``: use the
    public real photos installed here, one set to choose the tag rules on (:mod:`searchcore.quality.validation_photos`),
    another to measure them on (:mod:`searchcore.quality.realphotos`).
    """
    from ..models.backbone import imagenet_class_names

    config = config or TrainConfig()
    root = Path(root)
    check_trainable(root)
    bundle = B.open_bundle(root)
    manifest = bundle.manifest
    words = load_word_vectors(manifest["words"])
    labels = [it.label for it in bundle.items]
    captions = [tuple(it.captions or (it.caption,)) for it in bundle.items]
    keep = caption_keep(words)
    report(0.0, f"training the head ({config.loss} loss)")
    result = train_head(bundle.features, labels, words, config, captions=captions, keep=keep,
                        backbone=manifest["backbone"],
                        progress=lambda e, n, row: report(0.5 * e / n, f"epoch {e}: val loss {row['val_loss']:.4f}"))
    for line in result.targets.lines() if result.targets else []:
        report(0.5, line)
    report(0.5, "choosing the served mix on validation items, with a quarter of the labels held out")
    conse = ConSE.from_words(imagenet_class_names(), words, top_t=int(manifest.get("conse_top_t", 10)))
    calibration = calibration_classes(labels, result.labels, config.seed)
    calib = train_head(bundle.features, labels, words,
                       # as many epochs as the final head's best, so the calibration head is trained alike
                       # and never on validation items, which the choices below are made on
                       replace(config, holdout_classes=(*config.holdout_classes, *calibration),
                               epochs=max(result.best_epoch, 1), patience=max(result.best_epoch, 1), refit=False),
                       captions=captions, keep=keep, backbone=manifest["backbone"])
    calib.measured.set_serving(ServedSettings(), seen_words=calib.seen_words)
    space = Space.of(bundle, words, conse, calib.measured)
    net = load_backbone(manifest["backbone"]) if real_photos else None  # one load for both real-photo sets
    real = real_validation_photos(bundle, net, conse, calib.measured, calib.split) if net is not None else None
    reserved = set(result.split.test.tolist()) | set(result.split.holdout.tolist())  # never seen by a choice
    unseen_items = np.array([i for i in calib.split.holdout if i not in reserved], np.int64)
    pool = np.concatenate([result.split.val, unseen_items]).astype(np.int64)
    serving = choose_serving(space, pool, set(result.labels) - set(calibration), set(calibration),
                             result.split.val, unseen_items, calib.split.train,
                             NEIGHBOUR_MIXES if config.neighbour_mix is None else (float(config.neighbour_mix),),
                             SHARES if config.class_hierarchy else (0.0,), SHARES if config.exemplars else (0.0,),
                             real)
    ood = unseen_distance(bundle.features, result.split)
    chosen = serving.settings.replace(ood_distance=ood)
    result.measured.set_serving(chosen, seen_words=result.seen_words)
    report(0.9, "measuring on the test split")
    metrics = evaluate_bundle(root, words, result.measured, result.split, real_photos=real_photos,
                              tag_rule=serving.tag_rule, backbone=net)
    final = result.final or result.measured  # trained on every photo once the figures are measured
    final.set_serving(chosen, seen_words=result.final_seen_words or result.seen_words)
    training = {
        "config": config.to_dict(),
        "split": result.split.to_dict(),
        "split_seed": config.seed,
        "backbone": manifest["backbone"],
        "trained_labels": result.labels,
        "targets": result.targets.to_dict() if result.targets else {},
        "best_epoch": result.best_epoch,
        "refit": result.refit,
        "served_on_every_photo": result.final is not None and result.final is not result.measured,
        "epochs_run": len(result.history),
        "train_seconds": round(result.seconds, 3),
        "extract_seconds": manifest.get("build", {}).get("extract_seconds"),
        "history": result.history,
        "settings": {**chosen.to_dict(), **serving.tag_rule.to_dict()},
        "ood_distance": ood,
        "mix_scores": serving.scores,
        "calibration_classes": list(calibration),
        "command": command,
    }
    _save_head(root, final, {"metrics": metrics, "training": training}, write_card or default_card, result.measured)
    fields = {k: v for k, v in manifest.items() if k not in ("format", "files")}
    fields.update(metrics=metrics, training=training, serving=serving.tag_rule.to_dict())
    report(0.95, "re-embedding the collection with the new head")
    rebuild_semantic(root, words, imagenet_class_names(), final, fields=fields)
    report(1.0, "head trained")
    return result, metrics


def _save_head(root: Path, head: DeViSEHead, card: dict[str, Any],
               write_card: Callable[[Path, dict[str, Any]], None] | None, measured: DeViSEHead | None = None) -> None:
    """Write the head into a temp folder and swap it in, so a crash never leaves half a head in the bundle.

    ``measured``, when the served head was trained on every photo, is the head the figures describe (trained
    without the test photos); it is kept in ``head/measured/`` so ``training.evaluate`` can measure it again.
    """
    staging = Path(tempfile.mkdtemp(prefix=".head.", dir=root))
    try:
        head.save_pretrained(staging)
        if measured is not None and measured is not head:
            measured.save_pretrained(staging / B.MEASURED)
        if write_card is not None:
            write_card(staging, card)
        storage.share_tree(staging)  # mkdtemp made it 0700 and safetensors writes 0600: another user must read it
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
