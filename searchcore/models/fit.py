"""Train the DeViSE head on cached features: split, targets, the two losses, early stopping.

The seed ran VGG16 over every image in every epoch; here the backbone runs once (``extract``) and the head trains
on the stored features in seconds. Each item's target says what its label *and its captions* say: the unit word
vector of the label (multi-word labels averaged; a compound folder name such as ``roadsigns`` is segmented into
vocabulary words) blended with the mean vector of the captions' content words (``caption_weight``), so a horse
filed under ``equines`` learns "horse" too. :class:`TargetReport` records which labels were segmented, which got
their target from captions alone and which were left without one. Two losses:

* ``cosine`` (the seed's): 1 − cos(head(x), target);
* ``hinge`` (DeViSE, Frome et al. 2013): Σ_j max(0, margin − cos(head(x), t_label) + cos(head(x), t_j)) over the
  other labels j, margin 0.1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .words import WordVectors, label_words

if TYPE_CHECKING:  # torch is imported where it is used, so TrainConfig and --help stay light
    import torch

    from .head import DeViSEHead

LOSSES = ("hinge", "cosine")


@dataclass
class TrainConfig:
    loss: str = "cosine"  # the seed's; "hinge" (DeViSE's) measures about the same (docs/benchmarks.md §6)
    epochs: int = 80
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    margin: float = 0.1
    hidden_dim: int = 2000
    dropout: float = 0.25
    patience: int = 12
    val_fraction: float = 0.2  # early stopping, blend weights and thresholds are chosen on these items
    test_fraction: float = 0.2  # every reported figure is measured on these items, which no choice has seen
    caption_weight: float = 0.5  # share of the captions' words in each target; 0 trains on labels alone
    # once early stopping has found the epoch count: train the measured head again on training + validation items,
    # and the served head on every item (the figures come from the first, on test items it never saw)
    refit: bool = True
    # the share of a photo's look-alikes' words in its Text→Image embedding (searchcore.models.propagation);
    # None: chosen on validation photos, a number fixes it (0: the head alone)
    neighbour_mix: float | None = None
    # a logistic regression per trained word beside the embedding (searchcore.models.wordclass); False: the embedding
    # alone
    word_classifier: bool = True
    # the classifier's probability below a word WordNet places (searchcore.models.hierarchy) in Text→Image; False: never
    class_hierarchy: bool = True
    # the cosine to the nearest collection photo named by a query word (searchcore.models.exemplars); False: never
    exemplars: bool = True
    seed: int = 0
    holdout_classes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {**asdict(self), "holdout_classes": list(self.holdout_classes)}


@dataclass
class Split:
    """Item ids: trained on, watched by every choice (validation), reported on (test), of held-out classes."""

    train: np.ndarray
    val: np.ndarray
    holdout: np.ndarray  # items of held-out classes: never trained on, used for zero-shot evaluation
    test: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def to_dict(self) -> dict:
        return {k: [int(i) for i in v] for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> Split:
        return cls(*(np.asarray(data.get(k, []), dtype=np.int64) for k in ("train", "val", "holdout", "test")))


@dataclass
class TrainResult:
    measured: DeViSEHead  # trained on the training items only: the head every recorded figure describes
    split: Split
    history: list[dict] = field(default_factory=list)  # one row per epoch: train_loss, val_loss
    best_epoch: int = 0
    seconds: float = 0.0
    labels: list[str] = field(default_factory=list)  # the labels trained on
    targets: TargetReport | None = None
    seen_words: list[str] = field(default_factory=list)  # every word in the training items' targets
    refit: bool = False  # the returned head was trained again on training + validation items for best_epoch epochs
    final: DeViSEHead | None = None  # with refit: the same recipe on every item, test items too (what the engine loads)
    final_seen_words: list[str] = field(default_factory=list)


def stratified_split(labels: Sequence[str], val_fraction: float = 0.2, seed: int = 0,
                     holdout_classes: Sequence[str] = (), test_fraction: float = 0.0) -> Split:
    """Per label, a fixed-seed shuffle sends items to test, validation and training.

    A label with n items gives round(test_fraction·n) items to test and round(val_fraction·n) to validation, at
    least one each while the label keeps a training item (test first: n == 2 gives one training and one test
    item, n == 1 only a training item).
    """
    rng = np.random.default_rng(seed)
    labels = list(labels)
    held = set(holdout_classes)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": [], "holdout": []}
    for label in sorted(set(labels)):
        ids = np.array([i for i, lab in enumerate(labels) if lab == label], dtype=np.int64)
        # shuffled even when held out, so holding a class out never changes how the other labels split
        ids = ids[rng.permutation(len(ids))]
        if label in held:
            parts["holdout"].extend(sorted(ids.tolist()))
            continue
        n = len(ids)
        n_test = min(max(round(test_fraction * n), 1), n - 1) if test_fraction > 0 and n > 1 else 0
        n_val = min(max(round(val_fraction * n), 1), n - 1 - n_test) if val_fraction > 0 and n - n_test > 1 else 0
        parts["test"].extend(ids[:n_test].tolist())
        parts["val"].extend(ids[n_test : n_test + n_val].tolist())
        parts["train"].extend(ids[n_test + n_val :].tolist())
    out = {k: np.sort(np.array(v, np.int64)) for k, v in parts.items()}
    return Split(out["train"], out["val"], out["holdout"], out["test"])


def label_targets(labels: Sequence[str], words: WordVectors) -> dict[str, np.ndarray]:
    """Unit target vector per label that has word vectors."""
    targets = {}
    for label in sorted(set(labels)):
        parts = label_words(label, words)
        if parts:
            targets[label] = words.phrase(parts)
    return targets


@dataclass
class TargetReport:
    """What the targets were made of: said in the build log and the model card."""

    segmented: dict[str, list[str]] = field(default_factory=dict)  # compound label → the words it was split into
    from_captions: list[str] = field(default_factory=list)  # labels without vectors whose items learn their captions
    without_target: list[str] = field(default_factory=list)  # labels none of whose items has a target
    caption_items: int = 0  # items whose target includes caption words
    captions_without_words: int = 0  # items with a caption but no usable content word in it
    examples: dict[str, list[str]] = field(default_factory=dict)  # a few captions and the words taken from them

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """The report as log lines."""
        out = [f"caption words join the target of {self.caption_items} items; "
               f"{self.captions_without_words} captions gave no usable word"]
        if self.segmented:
            out.append("segmented labels: " + ", ".join(f"{k} → {' '.join(v)}" for k, v in self.segmented.items()))
        if self.from_captions:
            out.append("labels with no word vector, targets from captions alone: " + ", ".join(self.from_captions))
        if self.without_target:
            out.append("labels left without a target (not trained on): " + ", ".join(self.without_target))
        return out


def item_targets(
    labels: Sequence[str],
    captions: Sequence[Sequence[str]],
    words: WordVectors,
    caption_weight: float = 0.5,
    keep: Callable[[str], bool] = lambda _w: True,
) -> tuple[np.ndarray, np.ndarray, TargetReport]:
    """One unit target per item: its label's vector blended with its captions' content words (``keep`` filters them).

    Returns the (n, dim) targets, a mask of items that have one, and the :class:`TargetReport`. A word's weight in
    the caption vector is how many of the item's captions use it (Pascal Sentences has five per photo).
    """
    from ..text import content_words

    by_label = label_targets(labels, words)
    report = TargetReport()
    for label in sorted(set(labels)):
        parts = label_words(label, words)
        if parts and " ".join(parts) != label.lower().replace("_", " ").replace("-", " "):
            report.segmented[label] = parts
    out = np.zeros((len(labels), words.dim), np.float32)
    mask = np.zeros(len(labels), bool)
    for i, (label, texts) in enumerate(zip(labels, captions, strict=True)):
        texts = [t for t in texts if t]
        counts = content_words(texts, lambda w: w in words and keep(w)) if caption_weight > 0 else {}
        label_vec = by_label.get(label)
        caption_vec = None
        if counts:
            total = sum(n * words.unit(w) for w, n in counts.items())
            caption_vec = total / max(float(np.linalg.norm(total)), 1e-12)
            report.caption_items += 1
            if len(report.examples) < 8:
                report.examples[texts[0]] = sorted(counts)
        elif texts and caption_weight > 0:
            report.captions_without_words += 1
        if label_vec is not None and caption_vec is not None:
            target = (1.0 - caption_weight) * label_vec + caption_weight * caption_vec
        else:
            target = label_vec if label_vec is not None else caption_vec
        if target is not None:
            out[i] = target / max(float(np.linalg.norm(target)), 1e-12)
            mask[i] = True
    for label in sorted(set(labels)):
        has = any(mask[i] for i, lab in enumerate(labels) if lab == label)
        if not has:
            report.without_target.append(label)
        elif label not in by_label:
            report.from_captions.append(label)
    return out, mask, report


def target_words(labels: Sequence[str], captions: Sequence[Sequence[str]], ids: Sequence[int], words: WordVectors,
                 caption_weight: float, keep: Callable[[str], bool] = lambda _w: True) -> list[str]:
    """Every word in the targets of items ``ids``: the words the head was trained on ("seen" query words)."""
    from ..text import content_words

    seen: set[str] = set()
    for i in ids:
        seen.update(label_words(labels[i], words) or [])
        if caption_weight > 0:
            seen.update(content_words([t for t in captions[i] if t], lambda w: w in words and keep(w)))
    return sorted(seen)


def hinge_rank_loss(pred: torch.Tensor, target_idx: torch.Tensor, label_matrix: torch.Tensor,
                    margin: float = 0.1, target: torch.Tensor | None = None) -> torch.Tensor:
    """DeViSE's rank loss on cosine scores against every label vector (rows of ``label_matrix`` are unit).

    With ``target`` (each item's own unit target, captions included) the true score is the cosine to that target;
    the other labels' vectors stay the negatives.
    """
    import torch.nn.functional as F

    pred = F.normalize(pred, dim=1)
    scores = pred @ label_matrix.T  # (b, L)
    true = scores.gather(1, target_idx[:, None]) if target is None else (pred * target).sum(1, keepdim=True)
    losses = (margin - true + scores).clamp_min(0.0)
    losses = losses.scatter(1, target_idx[:, None], 0.0)  # the true label is not a violation of itself
    return losses.sum(1).mean()


def cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return (1.0 - F.cosine_similarity(pred, target, dim=1)).mean()


def _loss(config: TrainConfig, pred: torch.Tensor, idx: torch.Tensor, label_matrix: torch.Tensor,
          target: torch.Tensor) -> torch.Tensor:
    if config.loss == "hinge":
        return hinge_rank_loss(pred, idx, label_matrix, config.margin, target)
    return cosine_loss(pred, target)


def train_head(
    features: np.ndarray,
    labels: Sequence[str],
    words: WordVectors,
    config: TrainConfig | None = None,
    *,
    captions: Sequence[Sequence[str]] | None = None,
    keep: Callable[[str], bool] = lambda _w: True,
    backbone: str = "",
    progress: Callable[[int, int, dict], None] | None = None,
) -> TrainResult:
    """Fit a :class:`DeViSEHead` with early stopping on the validation split; returns the best epoch's weights.

    ``captions`` (one sequence of caption strings per item) join the targets (:func:`item_targets`, filtered by
    ``keep``); without them the targets are the labels alone.
    """
    import torch

    threads = torch.get_num_threads()
    # The head's matrices are small, so training runs on one thread and leaves the other cores to the server's
    # searches (the app trains in the background while it serves); bench/bench_training.py times it so.
    torch.set_num_threads(1)
    try:
        return _train_head(features, labels, captions or [()] * len(labels), keep, words, config or TrainConfig(),
                           backbone, progress)
    finally:
        torch.set_num_threads(threads)


def _train_head(
    features: np.ndarray,
    labels: Sequence[str],
    captions: Sequence[Sequence[str]],
    keep: Callable[[str], bool],
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
    labels = list(labels)
    targets, has_target, report = item_targets(labels, captions, words, config.caption_weight, keep)
    split = stratified_split(labels, config.val_fraction, config.seed, config.holdout_classes, config.test_fraction)
    train_ids = np.array([i for i in split.train if has_target[i]], np.int64)
    val_ids = np.array([i for i in split.val if has_target[i]], np.int64)
    if len(train_ids) < 2 or len({labels[i] for i in train_ids}) < 2:
        raise ValueError("Training needs at least two labels with word vectors and two items; "
                         f"labels without a target: {report.without_target}")
    trained_labels = sorted({labels[i] for i in train_ids})
    label_index = {lab: j for j, lab in enumerate(trained_labels)}
    # each label's vector for the hinge loss's negatives: the mean of its training items' targets
    label_rows = np.stack([targets[[i for i in train_ids if labels[i] == lab]].mean(0) for lab in trained_labels])
    label_matrix = torch.from_numpy((label_rows / np.linalg.norm(label_rows, axis=1, keepdims=True)).astype(np.float32))
    target_t = torch.from_numpy(targets)
    x = torch.from_numpy(np.array(features, np.float32))  # a writable copy of a possibly read-only memmap
    y = torch.tensor([label_index.get(lab, 0) for lab in labels])

    def fresh() -> DeViSEHead:
        torch.manual_seed(config.seed)
        return DeViSEHead(in_dim=x.shape[1], hidden_dim=config.hidden_dim, out_dim=words.dim,
                          dropout=config.dropout, backbone=backbone, words=words.source)

    def loss_of(model: DeViSEHead, ids: torch.Tensor) -> torch.Tensor:
        return _loss(config, model(x[ids]), y[ids], label_matrix, target_t[ids])

    head = fresh()
    history, best_epoch = _fit(head, loss_of, train_ids, val_ids if len(val_ids) else train_ids, config,
                               config.epochs, config.patience, progress)
    trained_ids, final, final_ids = train_ids, head, train_ids
    if config.refit and best_epoch > 0:
        # The epoch count is settled. The measured head is trained again, as long, on training and validation
        # items (the test items stay unseen); the final head, the one the engine loads, on every item with a target,
        # test items included.
        test_ids = np.array([i for i in split.test if has_target[i]], np.int64)
        if len(val_ids):
            trained_ids = np.concatenate([train_ids, val_ids])
            head = fresh()
            _fit(head, loss_of, trained_ids, val_ids, config, best_epoch, best_epoch, None, keep_last=True)
        final, final_ids = head, trained_ids
        if len(test_ids):
            final_ids = np.concatenate([trained_ids, test_ids])
            final = fresh()
            _fit(final, loss_of, final_ids, test_ids, config, best_epoch, best_epoch, None, keep_last=True)
    if config.word_classifier:
        # the same items as each head: the measured head's never include a test item
        from .wordclass import fit_word_classifier, item_word_sets

        word_sets = item_word_sets(labels, captions, words)
        head.set_word_classifier(fit_word_classifier(features, word_sets, trained_ids))
        if final is not head:
            final.set_word_classifier(fit_word_classifier(features, word_sets, final_ids))
    seen = target_words(labels, captions, trained_ids, words, config.caption_weight, keep)
    final_seen = target_words(labels, captions, final_ids, words, config.caption_weight, keep)
    return TrainResult(head, split, history, best_epoch, time.perf_counter() - start, trained_labels, report, seen,
                       refit=bool(config.refit and best_epoch > 0), final=final, final_seen_words=final_seen)


def _fit(head: DeViSEHead, loss_of: Callable, train_ids: np.ndarray, monitor_ids: np.ndarray, config: TrainConfig,
         epochs: int, patience: int, progress: Callable[[int, int, dict], None] | None, keep_last: bool = False
         ) -> tuple[list[dict], int]:
    """AdamW with a cosine schedule; keeps the weights of the epoch with the lowest monitored loss (or the last)."""
    import torch

    optimiser = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=config.epochs)
    generator = torch.Generator().manual_seed(config.seed)
    monitor = torch.from_numpy(monitor_ids)
    best: tuple[float, int, dict | None] = (float("inf"), 0, None)
    history = []
    for epoch in range(1, epochs + 1):
        head.train()
        order = torch.from_numpy(train_ids)[torch.randperm(len(train_ids), generator=generator)]
        total = 0.0
        for i in range(0, len(order), config.batch_size):
            batch = order[i : i + config.batch_size]
            if len(batch) < 2:  # BatchNorm needs two samples
                continue
            loss = loss_of(head, batch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        schedule.step()
        row = {"epoch": epoch, "train_loss": total / len(order)}
        head.eval()
        with torch.inference_mode():
            row["val_loss"] = float(loss_of(head, monitor))
        history.append(row)
        if progress is not None:
            progress(epoch, epochs, row)
        if keep_last:
            continue
        if row["val_loss"] < best[0] - 1e-5:
            best = (row["val_loss"], epoch, {k: v.detach().clone() for k, v in head.state_dict().items()})
        elif epoch - best[1] >= patience:
            break
    if not keep_last and best[2] is not None:
        head.load_state_dict(best[2])
    head.eval()
    return history, (epochs if keep_last else best[1])
