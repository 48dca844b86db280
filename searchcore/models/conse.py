"""ConSE and the word-space embeddings Image → Tags serves: numpy only, so serving words needs no torch.

* :class:`ConSE` (Norouzi et al., 2014) embeds an image as the probability-weighted mean of the word vectors of its
  top-T ImageNet classes. It is the fallback whenever a bundle has no trained head, and the baseline the head must
  beat.
* :func:`blend` mixes a head's embedding with ConSE's by the weight the training run chose on validation items
  (``tag_conse_mix``); :func:`tag_embeddings` is Image → Tags' embedding of any photo, and :func:`conse_only` says
  which photos it embeds by ConSE alone.

The trained head itself (a torch network) is :mod:`searchcore.models.head`; these functions take any head that has
``embed``, ``tag_conse_mix`` and ``ood_distance`` (the network, or :class:`searchcore.models.headview.HeadView`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..index import unit_rows
from .classnames import broader_word, class_phrases, imagenet_broader

if TYPE_CHECKING:
    from .headview import Head
    from .words import WordVectors


def class_word_matrix(class_names: list[str], words: WordVectors,
                      broader: Sequence[Sequence[Sequence[str]]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One unit word vector per class (its first synonym whose words are all known) and a mask of known classes.

    With ``broader`` (each class's WordNet hypernym chain) the vector is the name's and the nearest everyday
    broader word's, averaged: GloVe's ``alp`` is the Australian Labor Party, ``alp`` + ``mountain`` is a mountain.
    """
    matrix = np.zeros((len(class_names), words.dim), np.float32)
    known = np.zeros(len(class_names), bool)
    for i, name in enumerate(class_names):
        for phrase in class_phrases(name):
            parts = [p for p in phrase if p]
            if parts and all(p in words for p in parts):
                above = broader_word(words, broader[i]) if broader is not None else None
                matrix[i] = words.phrase(parts + [above] * len(parts) if above and above not in parts else parts)
                known[i] = True
                break
    return matrix, known


class ConSE:
    """Convex combination of semantic embeddings: Σ_top-T p(c|x)·v(c) / Σ p, over classes with a known word vector."""

    def __init__(self, class_vectors: np.ndarray, known: np.ndarray, top_t: int = 10) -> None:
        self.class_vectors = unit_rows(class_vectors)
        self.known = np.asarray(known, bool)
        if not self.known.any():
            raise ValueError("ConSE needs word vectors for at least one class name; these word vectors know none.")
        self.top_t = int(top_t)

    @classmethod
    def from_words(cls, class_names: list[str], words: WordVectors, top_t: int = 10, disambiguate: bool = True
                   ) -> ConSE:
        """Class vectors from their names; for ImageNet's classes also their WordNet broader word (``disambiguate``)."""
        broader = imagenet_broader(class_names) if disambiguate else None
        return cls(*class_word_matrix(class_names, words, broader), top_t=top_t)

    def embed(self, logits: np.ndarray, block: int = 16_384) -> np.ndarray:
        """Each row of ``logits`` in word space, ``block`` rows at a time: the float64 work holds about 31 KB per
        row, so a collection of any size costs a bounded amount of memory (the same embedding either way)."""
        logits = np.atleast_2d(logits)
        if len(logits) > block:
            return np.concatenate([self.embed(logits[i : i + block], block) for i in range(0, len(logits), block)])
        logits = np.asarray(logits, dtype=np.float64)
        logits = np.where(self.known[None, :], logits, -np.inf)  # classes without a word vector cannot vote
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        t = min(self.top_t, int(self.known.sum()))
        top = np.argpartition(-probs, t - 1, axis=1)[:, :t]
        weights = np.take_along_axis(probs, top, 1)
        emb = np.einsum("nt,ntd->nd", weights / weights.sum(1, keepdims=True), self.class_vectors[top])
        return unit_rows(emb)


def blend(head_embedding: np.ndarray, conse_embedding: np.ndarray, conse_mix: float) -> np.ndarray:
    """``(1-m)·head + m·ConSE`` on unit vectors, renormalised; m=0 is the head alone, m=1 ConSE alone."""
    return unit_rows((1.0 - conse_mix) * unit_rows(head_embedding) + conse_mix * unit_rows(conse_embedding))


def tag_embeddings(features: np.ndarray, logits: np.ndarray, conse: ConSE, head: Head | None,
                   nearest: np.ndarray | None = None) -> np.ndarray:
    """Images in word space as Image→Tags sees them (unit rows).

    The head blended with ConSE by ``tag_conse_mix``; ConSE alone without a head, and for every image whose
    nearest collection photo (``nearest``: cosine distances, one per row; None for the collection's own photos)
    is farther than the head's ``ood_distance``: unlike anything the head learnt from, its output is guesswork,
    while ConSE rests on the classifier, which saw 1000 classes.
    """
    conse_emb = conse.embed(logits)
    if head is None:
        return conse_emb
    emb = blend(head.embed(features), conse_emb, float(head.tag_conse_mix))
    return np.where(conse_only(head, nearest, len(emb))[:, None], conse_emb, emb)


def conse_only(head: Head | None, nearest: np.ndarray | None, count: int) -> np.ndarray:
    """Per image (``count`` rows), does :func:`tag_embeddings` embed it by ConSE alone: every image without a
    head, else those whose nearest collection photo is farther than the head's ``ood_distance`` (None: the
    collection's own photos). Image→Tags serves these with the unseen-photo rule
    (:meth:`searchcore.models.tagging.TagRule.min_prob`)."""
    if head is None:
        return np.ones(count, bool)
    if nearest is None or head.ood_distance is None:
        return np.zeros(count, bool)
    return np.asarray(nearest).reshape(count) > head.ood_distance
