"""A word's exemplars: how close a photo is to the nearest collection photo named by the query's word.

The collection's photos carry words (labels and captions). A photo new to the collection that looks almost like a
photo called ``horse`` is very likely a horse, even where the head's embedding and the word classifier hesitate:
near-duplicate photos (the same thing drawn again, another colour, another pose) are common, and a nearest
neighbour keeps every one of them apart where a linear classifier averages them. So Text → Image also scores each
photo by its cosine to its nearest *exemplar* of each query word, among its :data:`EXEMPLARS` nearest collection
photos, and gives that ``exemplar_mix`` of a query's score for the words some photo is named by
(:func:`searchcore.models.scoring.mixed_scores`), chosen on validation photos
(:func:`searchcore.quality.evaluation.choose_search`).

Unlike the look-alikes of :mod:`searchcore.models.propagation`, which blend the neighbours' word *vectors* into a 50-d
embedding, the exemplar part asks about the query's own word exactly: a photo near a ``cats`` photo gains nothing
for ``dogs``.

Served, a photo's neighbours are every collection photo, the photo itself included (its own words count, as the
served head and word classifier were trained on them); measured, the training and validation photos, so a figure
describes a photo new to the collection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ..index import exact_search
from ..text import singular
from .words import Term, WordVectors

if TYPE_CHECKING:
    from ..collection import Item

EXEMPLARS = 10  # a photo's nearest collection photos searched for an exemplar of the query's word
BLOCK = 2048  # photos searched at once when the neighbour lists are computed exactly


@dataclass
class Exemplars:
    """Per photo (rows), its nearest collection photos (``ids``, -1 for none) and their cosines (``sims``); per
    collection photo, the words it is named by (``words``: singular forms,
    :func:`searchcore.models.wordclass.item_word_sets`).
    """

    ids: np.ndarray  # (n photos, k) ids into ``words``
    sims: np.ndarray  # (n photos, k) cosine similarity
    words: Sequence[set[str]]

    @cached_property
    def _postings(self) -> dict[str, np.ndarray]:
        """Per word, the collection photos named by it: built once, as large as the word sets themselves."""
        postings: dict[str, list[int]] = {}
        for i, known in enumerate(self.words):
            for word in known:
                postings.setdefault(word, []).append(i)
        return {word: np.asarray(ids, np.int64) for word, ids in postings.items()}

    def named_by(self, word: str) -> np.ndarray | None:
        """Which collection photos are named by ``word`` (or its singular), as a mask; None when none is."""
        ids = self._postings.get(singular(word), self._postings.get(word))
        if ids is None:
            return None
        mask = np.zeros(len(self.words), bool)
        mask[ids] = True
        return mask


def nearest_photos(features: np.ndarray, items: np.ndarray, reference: np.ndarray, word_sets: Sequence[set[str]],
                   k: int = EXEMPLARS) -> Exemplars:
    """:class:`Exemplars` of ``items`` among ``reference`` photos (ids into ``features``), exactly, by cosine.

    An item that is itself in ``reference`` finds itself first (cosine 1): served, a photo's own words count. Only
    the ``reference`` photos' words are kept: a word no reference photo is named by has no exemplar (and no share).
    """
    items, reference = np.asarray(items, np.int64), np.asarray(reference, np.int64)
    in_reference = np.zeros(len(word_sets), bool)
    in_reference[reference] = True
    word_sets = [w if keep else set() for w, keep in zip(word_sets, in_reference)]
    k = min(k, len(reference))
    if k == 0 or len(items) == 0:
        return Exemplars(np.full((len(items), 1), -1, np.int64), np.zeros((len(items), 1), np.float32), word_sets)
    ids = np.empty((len(items), k), np.int64)
    sims = np.empty((len(items), k), np.float32)
    matrix = np.asarray(features)[reference]
    for start in range(0, len(items), BLOCK):  # bounded memory for a large collection
        block = items[start : start + BLOCK]
        found = exact_search(matrix, np.asarray(features)[block], k)
        ids[start : start + len(block)] = reference[found.ids]
        sims[start : start + len(block)] = 1.0 - found.distances
    return Exemplars(ids, sims, word_sets)


def served_exemplars(images: Any, features: np.ndarray, items: Sequence[Item], words: WordVectors,
                     k: int = EXEMPLARS) -> Exemplars:
    """Every collection photo's nearest collection photos by the bundle's image index (``images``), itself
    included, and the words each is named by: the exemplars as served (a photo's own words count)."""
    from .wordclass import item_word_sets

    found = images.query(features, min(k, len(items)))
    word_sets = item_word_sets([it.label for it in items], [it.captions or (it.caption,) for it in items], words)
    return Exemplars(found.ids.astype(np.int64), 1.0 - found.distances, word_sets)


def exemplar_part(exemplars: Exemplars | None, terms: Sequence[Term]) -> tuple[np.ndarray | None, float]:
    """Per photo, ``Σ w·cos(photo, nearest exemplar of the word) / Σ|w|`` over the query's words some collection
    photo is named by; and their share of the query's weight (as :func:`searchcore.models.wordclass.classifier_part`).

    A photo with no exemplar of a word among its nearest photos scores 0 for it; a minus term subtracts.
    """
    if exemplars is None or not terms:
        return None, 0.0
    total = sum(abs(t.weight) for t in terms)
    if total <= 0:
        return None, 0.0
    out = np.zeros(len(exemplars.ids), np.float32)
    covered = 0.0
    valid = exemplars.ids >= 0
    for term in terms:
        mask = exemplars.named_by(term.word)
        if mask is None:
            continue
        hit = valid & mask[np.maximum(exemplars.ids, 0)]
        nearest = np.where(hit, np.maximum(exemplars.sims, 0.0), 0.0).max(axis=1)
        out += term.weight * nearest
        covered += abs(term.weight)
    if covered == 0:
        return None, 0.0
    return out / total, covered / total
