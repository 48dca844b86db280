"""Photos described by their nearest labelled photos: what the collection says a photo's look-alikes are.

The head maps one photo's features into word space on its own. The collection's photos also carry words (labels
and captions), and a photo's nearest neighbours in feature space mostly show the same kind of thing. So Text→Image
blends each photo's head embedding with the weighted mean of its neighbours' training targets
(:func:`searchcore.models.fit.item_targets`: label and caption words), by ``neighbour_mix``, chosen on validation photos
(:func:`searchcore.quality.evaluation.choose_search`).

The look-alikes are the photos whose words are known. Served, that is every photo of the collection, a photo
itself included (the served head was trained on every photo too); measured, it is the training and validation
photos, and the test photos' own words stay hidden, so the figures describe a photo new to the collection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..index import Neighbours, exact_search, unit_rows
from .conse import blend
from .fit import item_targets
from .words import WordVectors

NEIGHBOURS = 5  # look-alikes that speak for a photo
TEMPERATURE = 10.0  # weight exp(T·cosine): a much nearer photo counts for more, without silencing the others

Search = Callable[[np.ndarray, int], Neighbours]  # (queries, k) → nearest reference photos


def caption_keep(words: WordVectors) -> Callable[[str], bool]:
    """Which caption words may join a training target: things you can see (WordNet's nouns, ImageNet's words).

    Without the packaged WordNet data every content word the vectors know is kept.
    """
    from ..text import singular
    from .tagging import caption_nouns, packaged_visual_vocab

    visual = packaged_visual_vocab()
    if visual is None:
        return lambda _w: True
    nouns = caption_nouns(visual) | {w for c in visual.imagenet for lemma in c.lemmas for w in lemma.split()}
    return lambda w: w in nouns or singular(w) in nouns


def collection_targets(labels: Sequence[str], captions: Sequence[Sequence[str]], words: WordVectors,
                       caption_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Every photo's training target and whether it has one, exactly as the head was trained (same words kept)."""
    targets, has_target, _ = item_targets(list(labels), captions, words, caption_weight, caption_keep(words))
    return targets, has_target


def neighbour_embedding(ids: np.ndarray, distances: np.ndarray, targets: np.ndarray, has_target: np.ndarray,
                        self_ids: np.ndarray | None = None, k: int = NEIGHBOURS) -> np.ndarray:
    """Unit rows: per photo, the exp(T·cosine)-weighted mean target of its ``k`` nearest photos that have one.

    ``ids``/``distances`` are nearest reference photos (cosine distances), a few more than ``k`` so the photo
    itself (``self_ids``, one per row, -1 for none) and photos without a target can be skipped. A row whose
    neighbours have no target is zero (:func:`searchcore.models.conse.blend` then keeps the head's embedding).
    """
    out = np.zeros((len(ids), targets.shape[1]), np.float32)
    for row, (near, dist) in enumerate(zip(np.asarray(ids), np.asarray(distances))):
        own = -1 if self_ids is None else int(self_ids[row])
        keep = [(int(i), float(d)) for i, d in zip(near, dist) if int(i) != own and i >= 0 and has_target[int(i)]][:k]
        if keep:
            weights = np.exp(TEMPERATURE * (1.0 - np.array([d for _, d in keep])))
            out[row] = weights @ targets[[i for i, _ in keep]]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.where(norms > 1e-9, out / np.maximum(norms, 1e-9), 0.0).astype(np.float32)


def served_embedding(head_emb: np.ndarray, neighbour_emb: np.ndarray, neighbour_mix: float) -> np.ndarray:
    """``(1-m)·head + m·neighbours`` (unit rows); a photo with no neighbour target keeps the head's embedding."""
    if neighbour_mix <= 0.0:
        return unit_rows(head_emb)
    mixed = blend(head_emb, neighbour_emb, neighbour_mix)
    empty = np.linalg.norm(neighbour_emb, axis=1) < 1e-9
    return np.where(empty[:, None], unit_rows(head_emb), mixed).astype(np.float32)


def exact_neighbours(features: np.ndarray, items: np.ndarray, reference: np.ndarray, k: int = NEIGHBOURS
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ``reference`` photos of each of ``items`` by feature cosine (ids into the collection), exactly."""
    if len(reference) == 0:
        return np.full((len(items), 1), -1, np.int64), np.ones((len(items), 1), np.float32)
    found = exact_search(features[reference], features[items], k + 1)
    return np.asarray(reference)[found.ids], found.distances
