"""The head's word classifier: for each word of its training targets, how likely a photo is to be called so.

The DeViSE head maps a photo to one point of the 50-d word space, where related labels (``cats``, ``dogs``,
``mammals``) lie close together: a 50-d point cannot be near ``bird`` and far from ``mammals`` at once. A
logistic regression per word on the photo's own 1280-d features has no such bottleneck. Measured on the offline
collection's held-back photos it ranks a label's photos and a caption word's photos far better than the embedding
(docs/benchmarks.md §6). It only knows the words it was trained on, so Text → Image uses it for those words and
keeps the embedding (head, look-alikes and ConSE) for every other word (:func:`classifier_part`,
:func:`searchcore.models.scoring.mixed_scores`).

* :func:`item_word_sets`: each item's words, the singular forms of its label's and captions' content words;
* :func:`fit_word_classifier`: one multi-label logistic regression (full-batch L-BFGS from zero, so deterministic);
* :func:`classifier_part`: a query's classifier score per photo and the share of its weight the classifier knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..text import content_words, singular
from .words import Term, WordVectors, label_words

SCALE = 10.0  # unit features times this: logits of a useful size for zero-initialised weights
WEIGHT_DECAY = 0.01  # a fixed L2 default, not chosen per run (no validation choice depends on it)
MAX_ITER = 100  # an upper bound on L-BFGS steps; it stops sooner once its tolerance is met


@dataclass
class WordClassifier:
    """Per word (``vocab``, sorted singular forms): weights over unit features and a bias."""

    vocab: list[str]
    weight: np.ndarray  # (len(vocab), feature dim), applied to SCALE · unit features
    bias: np.ndarray  # (len(vocab),)

    @cached_property
    def _rows(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.vocab)}

    def columns(self, terms: Sequence[Term]) -> list[int | None]:
        """Per term: its word's row (the word or its singular), or None where the classifier never saw it."""
        return [self._rows.get(t.word, self._rows.get(singular(t.word))) for t in terms]


def item_word_sets(labels: Sequence[str], captions: Sequence[Sequence[str]], words: WordVectors) -> list[set[str]]:
    """Per item: the singular forms of its label's words and its captions' content words that ``words`` knows.

    Colour and other non-noun words stay (``red`` is a fair query); stop words never count.
    """
    out = []
    for label, texts in zip(labels, captions, strict=True):
        found = set(label_words(label, words) or ())
        found.update(content_words([t for t in texts if t], lambda w: w in words or singular(w) in words))
        out.append({singular(w) for w in found})
    return out


def fit_word_classifier(features: np.ndarray, word_sets: Sequence[set[str]], ids: np.ndarray,
                        weight_decay: float = WEIGHT_DECAY) -> WordClassifier | None:
    """A logistic regression per word used by the items ``ids``; None when they have no words.

    Full batch, L-BFGS from zero weights: the same items give the same classifier on any machine and thread count
    (up to float rounding), with no seed to record.
    """
    import torch

    vocab = sorted(set().union(*(word_sets[i] for i in ids))) if len(ids) else []
    if not vocab:
        return None
    column = {w: j for j, w in enumerate(vocab)}
    y = np.zeros((len(ids), len(vocab)), np.float32)
    for row, i in enumerate(ids):
        y[row, [column[w] for w in word_sets[i]]] = 1.0
    x = torch.from_numpy(SCALE * _unit(np.asarray(features, np.float32)[ids]))
    target = torch.from_numpy(y)
    weight = torch.zeros(len(vocab), x.shape[1], requires_grad=True)
    bias = torch.zeros(len(vocab), requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=MAX_ITER, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        logits = x @ weight.T + bias
        # per photo, the sum over words; the mean over photos; L2 on the weights (not the biases)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(ids)
        loss = loss + weight_decay * (weight**2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return WordClassifier(vocab, weight.detach().numpy().copy(), bias.detach().numpy().copy())


def probabilities(classifier: WordClassifier, features: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """(n photos, len(columns)): P(word | photo) for the classifier's rows ``columns``."""
    x = np.asarray(features, np.float32)
    # unit rows without a unit copy of the features: a large collection's matrix is read, never duplicated
    norms = np.sqrt(np.maximum(np.einsum("ij,ij->i", x, x), 1e-24))
    logits = SCALE * (x @ classifier.weight[list(columns)].T) / norms[:, None]
    return 1.0 / (1.0 + np.exp(-(logits + classifier.bias[list(columns)])))


def classifier_part(classifier: WordClassifier | None, features: np.ndarray, terms: Sequence[Term]
                    ) -> tuple[np.ndarray | None, float]:
    """Per photo, ``Σ w·P(word | photo) / Σ|w|`` over the query's words the classifier knows (each probability
    :func:`searchcore.models.hierarchy.sparse`); and their share.

    The share (the known words' part of the query's total weight) tells how far the classifier may speak for the
    query: 1 for ``bird``, 0.5 for ``bird + ocean`` when only ``bird`` was trained, 0 (and None) for ``ocean``.
    A minus term subtracts its word's probability.
    """
    if classifier is None or not terms:
        return None, 0.0
    cols = classifier.columns(terms)
    total = sum(abs(t.weight) for t in terms)
    known = [(t.weight, c) for t, c in zip(terms, cols) if c is not None]
    if not known or total <= 0:
        return None, 0.0
    from .hierarchy import sparse

    probs = sparse(probabilities(classifier, features, [c for _, c in known]))
    weights = np.array([w for w, _ in known], np.float32)
    return probs @ weights / total, float(sum(abs(w) for w, _ in known) / total)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
