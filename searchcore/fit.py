"""Train the DeViSE head on cached features: split, targets, the two losses, early stopping.

The seed ran VGG16 over every image in every epoch; here the backbone runs once (``extract``) and the head trains
on the stored features in seconds. Targets are the unit word vector of each item's label (multi-word labels
averaged; a compound folder name such as ``roadsigns`` is segmented into vocabulary words). Two losses:

* ``cosine`` (the seed's): 1 − cos(head(x), target);
* ``hinge`` (DeViSE, Frome et al. 2013): Σ_j max(0, margin − cos(head(x), t_label) + cos(head(x), t_j)) over the
  other labels j, margin 0.1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from .words import WordVectors

if TYPE_CHECKING:  # torch is imported where it is used, so TrainConfig and --help stay light
    import torch

    from .head import DeViSEHead

LOSSES = ("hinge", "cosine")


@dataclass
class TrainConfig:
    loss: str = "cosine"  # measured best on the offline collection (docs/benchmarks.md); "hinge" is DeViSE's
    epochs: int = 80
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    margin: float = 0.1
    hidden_dim: int = 2000
    dropout: float = 0.25
    patience: int = 12
    val_fraction: float = 0.2
    seed: int = 0
    holdout_classes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {**asdict(self), "holdout_classes": list(self.holdout_classes)}


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray
    holdout: np.ndarray  # items of held-out classes: never trained on, used for zero-shot evaluation

    def to_dict(self) -> dict:
        return {k: [int(i) for i in v] for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> Split:
        return cls(*(np.asarray(data[k], dtype=np.int64) for k in ("train", "val", "holdout")))


@dataclass
class TrainResult:
    head: DeViSEHead
    split: Split
    history: list[dict] = field(default_factory=list)  # one row per epoch: train_loss, val_loss
    best_epoch: int = 0
    seconds: float = 0.0
    labels: list[str] = field(default_factory=list)  # the labels trained on


def stratified_split(labels: Sequence[str], val_fraction: float = 0.2, seed: int = 0,
                     holdout_classes: Sequence[str] = ()) -> Split:
    """Per label, a fixed-seed shuffle sends round(val_fraction·n) items to validation (none when n == 1)."""
    rng = np.random.default_rng(seed)
    labels = list(labels)
    held = set(holdout_classes)
    train, val, holdout = [], [], []
    for label in sorted(set(labels)):
        ids = np.array([i for i, lab in enumerate(labels) if lab == label], dtype=np.int64)
        if label in held:
            holdout.extend(ids.tolist())
            continue
        ids = ids[rng.permutation(len(ids))]
        n_val = round(val_fraction * len(ids)) if len(ids) > 1 else 0
        val.extend(ids[:n_val].tolist())
        train.extend(ids[n_val:].tolist())
    return Split(np.sort(np.array(train, np.int64)), np.sort(np.array(val, np.int64)),
                 np.sort(np.array(holdout, np.int64)))


def segment(word: str, words: WordVectors, max_parts: int = 3) -> list[str] | None:
    """Split a compound (``roadsigns``) into the fewest known words (``road signs``); None if impossible."""

    @cache
    def best(start: int) -> tuple[str, ...] | None:
        if start == len(word):
            return ()
        options = []
        for end in range(len(word), start + 1, -1):
            piece = word[start:end]
            if len(piece) > 1 and piece in words:
                rest = best(end)
                if rest is not None and len(rest) < max_parts:
                    options.append((piece, *rest))
        return min(options, key=len) if options else None

    found = best(0)
    return list(found) if found else None


def label_words(label: str, words: WordVectors) -> list[str] | None:
    """The vocabulary words that stand for a label, or None when it has none."""
    parts: list[str] = []
    for token in label.lower().replace("_", " ").replace("-", " ").split():
        if token in words:
            parts.append(token)
        else:
            pieces = segment(token, words)
            if pieces is None:
                return None
            parts.extend(pieces)
    return parts or None


def label_targets(labels: Sequence[str], words: WordVectors) -> dict[str, np.ndarray]:
    """Unit target vector per label that has word vectors."""
    targets = {}
    for label in sorted(set(labels)):
        parts = label_words(label, words)
        if parts:
            targets[label] = words.phrase(parts)
    return targets


def hinge_rank_loss(pred: torch.Tensor, target_idx: torch.Tensor, label_matrix: torch.Tensor,
                    margin: float = 0.1) -> torch.Tensor:
    """DeViSE's rank loss on cosine scores against every label vector (rows of ``label_matrix`` are unit)."""
    import torch.nn.functional as F

    scores = F.normalize(pred, dim=1) @ label_matrix.T  # (b, L)
    true = scores.gather(1, target_idx[:, None])
    losses = (margin - true + scores).clamp_min(0.0)
    losses = losses.scatter(1, target_idx[:, None], 0.0)  # the true label is not a violation of itself
    return losses.sum(1).mean()


def cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return (1.0 - F.cosine_similarity(pred, target, dim=1)).mean()


def _loss(config: TrainConfig, pred: torch.Tensor, idx: torch.Tensor, label_matrix: torch.Tensor) -> torch.Tensor:
    if config.loss == "hinge":
        return hinge_rank_loss(pred, idx, label_matrix, config.margin)
    return cosine_loss(pred, label_matrix[idx])


def train_head(
    features: np.ndarray,
    labels: Sequence[str],
    words: WordVectors,
    config: TrainConfig | None = None,
    *,
    backbone: str = "",
    progress: Callable[[int, int, dict], None] | None = None,
) -> TrainResult:
    """Fit a :class:`DeViSEHead` with early stopping on the validation split; returns the best epoch's weights."""
    import torch

    threads = torch.get_num_threads()
    # The head's matrices are small: one thread is as fast as two on an idle machine and several times faster on a
    # busy one, where BLAS threads wait on each other (docs/benchmarks.md, "Training").
    torch.set_num_threads(1)
    try:
        return _train_head(features, labels, words, config or TrainConfig(), backbone, progress)
    finally:
        torch.set_num_threads(threads)


def _train_head(
    features: np.ndarray,
    labels: Sequence[str],
    words: WordVectors,
    config: TrainConfig,
    backbone: str,
    progress: Callable[[int, int, dict], None] | None,
) -> TrainResult:
    import torch

    from .head import DeViSEHead

    if config.loss not in LOSSES:
        raise ValueError(f"Unknown loss {config.loss!r}; use one of {LOSSES}.")
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    labels = list(labels)
    targets = label_targets(labels, words)
    split = stratified_split(labels, config.val_fraction, config.seed, config.holdout_classes)
    train_ids = np.array([i for i in split.train if labels[i] in targets], np.int64)
    val_ids = np.array([i for i in split.val if labels[i] in targets], np.int64)
    if len(train_ids) < 2 or len({labels[i] for i in train_ids}) < 2:
        raise ValueError("Training needs at least two labels with word vectors and two items; "
                         f"labels with vectors: {sorted(targets)}")
    trained_labels = sorted({labels[i] for i in train_ids})
    label_index = {lab: j for j, lab in enumerate(trained_labels)}
    label_matrix = torch.from_numpy(np.stack([targets[lab] for lab in trained_labels]))
    x = torch.from_numpy(np.array(features, np.float32))  # a writable copy of a possibly read-only memmap
    y = torch.tensor([label_index.get(lab, -1) for lab in labels])

    head = DeViSEHead(in_dim=x.shape[1], hidden_dim=config.hidden_dim, out_dim=words.dim, dropout=config.dropout,
                      backbone=backbone, words=words.source)
    optimiser = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=config.epochs)
    generator = torch.Generator().manual_seed(config.seed)
    best = (float("inf"), 0, None)
    history = []
    for epoch in range(1, config.epochs + 1):
        head.train()
        order = torch.from_numpy(train_ids)[torch.randperm(len(train_ids), generator=generator)]
        total = 0.0
        for i in range(0, len(order), config.batch_size):
            batch = order[i : i + config.batch_size]
            if len(batch) < 2:  # BatchNorm needs two samples
                continue
            loss = _loss(config, head(x[batch]), y[batch], label_matrix)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        schedule.step()
        row = {"epoch": epoch, "train_loss": total / len(order)}
        head.eval()
        with torch.inference_mode():
            monitor = torch.from_numpy(val_ids if len(val_ids) else train_ids)
            row["val_loss"] = float(_loss(config, head(x[monitor]), y[monitor], label_matrix))
        history.append(row)
        if progress is not None:
            progress(epoch, config.epochs, row)
        if row["val_loss"] < best[0] - 1e-5:
            best = (row["val_loss"], epoch, {k: v.detach().clone() for k, v in head.state_dict().items()})
        elif epoch - best[1] >= config.patience:
            break
    head.load_state_dict(best[2])
    head.eval()
    return TrainResult(head, split, history, best[1], time.perf_counter() - start, trained_labels)
