"""A word's probability from the classifier's classes below it in WordNet: ``dog`` is the sum of the 118 breeds.

ConSE reads a photo's ImageNet probabilities through GloVe: a ``dogs`` query meets a photo's class names by cosine,
and a beagle's name is no nearer ``dogs`` than ``fox`` is. WordNet says it outright: every ImageNet class is a
WordNet synset, and the packaged visual vocabulary (:mod:`searchcore.models.wordnet`) lists each class's names and the
names of the synsets above it (goldfish → cyprinid → … → fish → … → animal). So a query word that names a class or
one of its ancestors has a probability of its own, the classifier's mass on the classes below it:

    P(fish | photo) = Σ softmax(logits)_c over the classes c with ``fish`` among their own or broader names

It needs no training and knows any word that WordNet puts above an ImageNet class, which is what the words a
head never saw need (measured on held-out classes, docs/benchmarks.md §6). Text → Image gives it ``unseen_class_mix``
of such a word's score, or ``class_mix`` of what the word classifier left of a trained word's
(:func:`searchcore.models.scoring.mixed_scores`), both chosen on validation photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from ..text import singular
from .words import Term

IMAGENET_CLASSES = 1000  # the packaged vocabulary's classes, in timm's order
#: A word signal's probability below this says nothing about a photo and counts as 0 (here and in the head's word
#: classifier): a photo then has a score for the few words it may be called by, so a word's photos fit one stored
#: list (:mod:`searchcore.postings`) instead of every photo scoring every word. The most it takes from a score is
#: this times the signal's share, and it takes it only from photos that hardly match the word.
MIN_PROBABILITY = 0.01


def sparse(probabilities: np.ndarray) -> np.ndarray:
    """``probabilities`` with every value below :data:`MIN_PROBABILITY` set to 0."""
    p = np.asarray(probabilities, np.float32)
    return np.where(p >= MIN_PROBABILITY, p, np.float32(0.0))


@cache
def classes_below() -> dict[str, tuple[int, ...]]:
    """Single-word name → the ImageNet classes (timm's order) below what it means; empty without WordNet.

    A class's own names always name it. Above it, a word means its most frequent noun senses (the packaged
    ``senses``): ``toy`` stands above the teddy bear (a plaything), not above the toy terrier (whose broader synset
    "toy dog" is also called "toy"). A vocabulary written before senses were packaged matches names alone.
    """
    from .tagging import packaged_visual_vocab

    vocab = packaged_visual_vocab()
    if vocab is None:
        return {}
    found: dict[str, set[int]] = {}
    for c, cls in enumerate(vocab.imagenet):
        for name in cls.lemmas:  # the class's own names always name it ("cup", "crane" the bird and the machine)
            found.setdefault(name, set()).add(c)
        for synset, names in zip(cls.broader_ids or [None] * len(cls.broader), cls.broader, strict=True):
            for name in names:
                senses = vocab.senses.get(name)
                if synset is None or senses is None or synset in senses:
                    found.setdefault(name, set()).add(c)
    # a query term is one word
    return {name: tuple(sorted(ids)) for name, ids in found.items() if " " not in name and "-" not in name}


def word_classes(word: str) -> tuple[int, ...]:
    """The classes below ``word`` (or its singular: ``dogs`` → ``dog``); empty for a word WordNet does not place."""
    below = classes_below()
    return below.get(word) or below.get(singular(word)) or ()


def log_normaliser(logits: np.ndarray) -> np.ndarray:
    """Per row, ``log Σ exp(logits)``: a class's probability is ``exp(logit − this)``. One pass over every class,
    so a caller that scores many queries over the same photos (the engine, its bundle) computes it once."""
    z = np.asarray(logits, np.float32)
    top = z.max(axis=1)
    return top + np.log(np.exp(z - top[:, None]).sum(axis=1))


def hierarchy_part(logits: np.ndarray, terms: Sequence[Term], total: float | None = None,
                   log_norm: np.ndarray | None = None) -> tuple[np.ndarray | None, float]:
    """Per photo, ``Σ w·P(word | photo) / total`` over the words of ``terms`` WordNet places (each probability
    :func:`sparse`); and their share of
    ``total`` (the query's whole weight; default ``Σ|w|`` of ``terms``).

    ``logits``: (n photos, 1000) ImageNet logits in timm's order, as bundles store them. Other class counts get
    None: their class ids would mean other things. ``log_norm``: :func:`log_normaliser` of ``logits``, when the
    caller has it; only the placed words' classes are read otherwise.
    """
    if not terms or np.ndim(logits) != 2 or np.shape(logits)[1] != IMAGENET_CLASSES:
        return None, 0.0
    total = sum(abs(t.weight) for t in terms) if total is None else total
    known = [(t.weight, word_classes(t.word)) for t in terms]
    known = [(w, ids) for w, ids in known if ids]
    if not known or total <= 0:
        return None, 0.0
    z = np.asarray(logits, np.float32)
    norm = (log_normaliser(z) if log_norm is None else np.asarray(log_norm, np.float32))[:, None]
    part = sum(w * sparse(np.exp(z[:, list(ids)] - norm).sum(axis=1)) for w, ids in known) / total
    return np.asarray(part, np.float32), float(sum(abs(w) for w, _ in known) / total)
