"""Retrieval metrics for a bundle's held-back items: how well do images and words meet in the word space?

All figures are computed exactly (matrix products), on the items that training did not see:

* ``text_image_p10``: for each label, its word vector ranks the evaluation images; precision over the top
  min(10, n) where n is how many evaluation images carry the label (so a label with 3 images can score 1.0);
  averaged over labels. ``zero_shot_text_image_p10`` is the same for labels held out of training.
* ``image_image_p10``: each evaluation image ranks the others; precision of the same label, as above.
* ``tag_hit5``: share of evaluation images whose label word is among their top-5 tags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .fit import Split, label_words
from .head import unit_rows
from .words import WordVectors


def _precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    k = min(10, int(relevant.sum()))
    top = np.argsort(-scores, kind="stable")[:k]
    return float(relevant[top].mean()) if k else float("nan")


def text_image_precision(emb: np.ndarray, labels: Sequence[str], words: WordVectors,
                         query_labels: Sequence[str]) -> dict[str, float]:
    """Per label: precision@min(10, n) of the label's word vector against ``emb`` (unit rows)."""
    labels_arr = np.asarray(labels)
    result = {}
    for label in sorted(set(query_labels)):
        parts = label_words(label, words)
        relevant = labels_arr == label
        if parts and relevant.any():
            result[label] = _precision(emb @ words.phrase(parts), relevant)
    return result


def image_image_precision(emb: np.ndarray, labels: Sequence[str]) -> float:
    labels_arr = np.asarray(labels)
    sims = unit_rows(emb) @ unit_rows(emb).T
    np.fill_diagonal(sims, -np.inf)
    values = [_precision(sims[i], labels_arr == labels_arr[i]) for i in range(len(labels_arr))
              if (labels_arr == labels_arr[i]).sum() > 1]
    return float(np.mean(values)) if values else float("nan")


def tag_hits(emb: np.ndarray, labels: Sequence[str], words: WordVectors, tag_ids: np.ndarray, k: int = 5) -> float:
    vocab = unit_rows(np.asarray(words.vectors[tag_ids]))
    top = np.argsort(-(emb @ vocab.T), axis=1)[:, :k]
    hits = []
    for row, label in zip(top, labels):
        parts = label_words(label, words)
        if parts:
            wanted = {*parts, label.replace(" ", "")}
            hits.append(any(words.words[tag_ids[j]] in wanted for j in row))
    return float(np.mean(hits)) if hits else float("nan")


def _mean(values: dict[str, float]) -> float:
    finite = [v for v in values.values() if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def evaluate_embeddings(emb: np.ndarray, labels: Sequence[str], split: Split, words: WordVectors,
                        tag_ids: np.ndarray) -> dict[str, float]:
    """The metrics of one way of embedding images (``emb``: all items, unit rows) on the split's held-back items."""
    labels = list(labels)
    pool = np.concatenate([split.val, split.holdout]).astype(np.int64)
    pool_labels = [labels[i] for i in pool]
    seen = sorted({labels[i] for i in split.val})
    unseen = sorted({labels[i] for i in split.holdout})
    val_emb, val_labels = emb[split.val], [labels[i] for i in split.val]
    out = {
        "text_image_p10": _mean(text_image_precision(emb[pool], pool_labels, words, seen)),
        "image_image_p10": image_image_precision(emb[pool], pool_labels),
        "tag_hit5": tag_hits(val_emb, val_labels, words, tag_ids),
    }
    if unseen:
        out["zero_shot_text_image_p10"] = _mean(text_image_precision(emb[pool], pool_labels, words, unseen))
        out["zero_shot_tag_hit5"] = tag_hits(emb[split.holdout], [labels[i] for i in split.holdout], words, tag_ids)
    return {k: finite(v) for k, v in out.items()}


def finite(value: float) -> float | None:
    """Rounded, or None where a figure cannot be computed (JSON has no NaN)."""
    return round(float(value), 4) if np.isfinite(value) else None


MIX_OBJECTIVES = {
    # what each blend weight is for → the held-back figures it must do well on (seen labels and unseen classes)
    "search": ("text_image_p10", "zero_shot_text_image_p10"),
    "tags": ("tag_hit5", "zero_shot_tag_hit5"),
}


def choose_mix(embed: Callable[[float], np.ndarray], labels: Sequence[str], split: Split, words: WordVectors,
               tag_ids: np.ndarray, grid: Sequence[float] = tuple(np.round(np.linspace(0, 1, 11), 2))
               ) -> tuple[dict[str, float], dict[str, dict[float, float]]]:
    """Pick a head/ConSE blend weight per query type ("search": Text→Image, "tags": Image→Tags).

    Each is the grid value with the best mean of its figures on held-back items: the validation split (labels the
    head was trained on) and, when ``split`` holds classes out, those unseen classes. A blend must work for things
    the head never saw (where ConSE is strong) as well as for the trained labels (where the head is strong), and
    the two query types need not agree: tags are asked of any photo, searches run over the collection.
    """
    per_mix = {float(m): evaluate_embeddings(embed(float(m)), labels, split, words, tag_ids) for m in grid}
    chosen, scores = {}, {}
    for name, keys in MIX_OBJECTIVES.items():
        scores[name] = {m: finite(np.nanmean([r[k] for k in keys if r.get(k) is not None] or [np.nan]))
                        for m, r in per_mix.items()}
        # ties (and figures that cannot be computed) go to the smaller mix: trust the trained head
        chosen[name] = max(scores[name], key=lambda m, s=scores[name]: (s[m] if s[m] is not None else -1.0, -m))
    return chosen, scores
