"""The one Text → Image score: the engine serves it, the metrics measure it, the calibration chooses its settings on it.

A query's score of a photo mixes, with settings chosen on validation photos and stored with the head:

* the cosine of the photo's head embedding to the query as the head reads it, and of its ConSE embedding to the
  query, ConSE's share per query by how well the head knows the words (:func:`query_mix`: ``conse_mix`` for words
  it was trained on, ``unseen_conse_mix`` for others);
* the word signals, per (photo, word) scores that speak for the words they know (:class:`QueryParts`): the word
  classifier (:mod:`searchcore.models.wordclass`), the classifier's mass below a word in WordNet
  (:mod:`searchcore.models.hierarchy`) and a word's exemplars (:mod:`searchcore.models.exemplars`), mixed by
  :func:`mixed_scores`.

:func:`combine` is that formula, once; :func:`text_scores` applies it to rows of embeddings. The engine reads the
parts from the bundle's posting tables (:mod:`searchcore.postings`) for the candidates it re-ranks; the metrics, the
calibration and a visitor's own photos compute them for every photo (:func:`query_parts`): the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .exemplars import Exemplars, exemplar_part
from .words import Term, WordVectors

if TYPE_CHECKING:
    from .headview import Head
    from .wordclass import WordClassifier


def query_mix(terms: list[tuple[float, str]], head: Head | None, words: WordVectors | None = None) -> float:
    """ConSE's share in a Text→Image ranking: each term votes, by its weight, for the mix of a seen or unseen word."""
    if head is None:
        return 1.0
    weights = [abs(float(w)) for w, _ in terms]
    mixes = [head.conse_mix if head.trained_on(word, words) else head.unseen_conse_mix for _, word in terms]
    return float(np.dot(weights, mixes) / max(sum(weights), 1e-12))


Part = tuple[np.ndarray | None, float]  # per photo a score in [0, 1] (or None), and the query's weight it covers


class QueryParts(NamedTuple):
    """A query's probabilities beside the cosine: the word classifier's, and the classifier's mass below its words
    in WordNet, split by whether the word classifier knows the word (it speaks first for those); and the cosine to
    the nearest collection photo named by the word (:mod:`searchcore.models.exemplars`)."""

    words: Part
    seen_classes: Part
    unseen_classes: Part
    exemplars: Part = (None, 0.0)


NO_PARTS = QueryParts((None, 0.0), (None, 0.0), (None, 0.0), (None, 0.0))


def mixed_scores(cosine: np.ndarray, parts: QueryParts, word_mix: float, class_mix: float,
                 unseen_class_mix: float, exemplar_mix: float = 0.0) -> np.ndarray:
    """Text → Image's served score: the embedding's cosine, with probabilities speaking for the words they know.

    ``parts.words``: the head's word classifier (:func:`searchcore.models.wordclass.classifier_part`) for the query's
    trained words; ``parts.seen_classes`` / ``unseen_classes``: the CNN's mass below the words WordNet places
    (:func:`searchcore.models.hierarchy.hierarchy_part`) among the words the classifier knows / does not know. For a
    one-word query the word classifier takes ``word_mix`` of the score, the hierarchy ``class_mix`` (a trained word)
    or ``unseen_class_mix`` (any other word) of what is left, the cosine the rest; a part's share (the query's
    weight it covers) scales it. ``parts.exemplars`` then takes ``exemplar_mix`` of that whole score, for the words
    some collection photo is named by.
    """
    (words_score, words_share), (seen_score, seen_share), (unseen_score, unseen_share) = parts[:3]
    word_weight = word_mix * words_share if words_score is not None else 0.0
    rest = 1.0 - word_weight
    class_weight = rest * ((class_mix * seen_share if seen_score is not None else 0.0)
                           + (unseen_class_mix * unseen_share if unseen_score is not None else 0.0))
    out = (1.0 - word_weight - class_weight) * cosine
    if word_weight:
        out = out + word_mix * words_score
    if seen_score is not None and class_mix:
        out = out + rest * class_mix * seen_score
    if unseen_score is not None and unseen_class_mix:
        out = out + rest * unseen_class_mix * unseen_score
    exemplar_score, exemplar_share = parts.exemplars
    if exemplar_score is not None and exemplar_mix:
        out = (1.0 - exemplar_mix * exemplar_share) * out + exemplar_mix * exemplar_score
    return out


def split_parts(classifier: WordClassifier | None, features: np.ndarray, logits: np.ndarray, terms: Sequence[Term],
                log_norm: np.ndarray | None = None, exemplars: Exemplars | None = None) -> QueryParts:
    """Every part of a query for rows of ``features``/``logits``, whatever weights they will get.

    ``log_norm``: :func:`searchcore.models.hierarchy.log_normaliser` of ``logits`` when the caller keeps it (one that
    scores many queries over the same photos, as bench/bench_scale.py does); else it is computed here, once for
    both hierarchy parts. ``exemplars``: the same rows'
    nearest collection photos (:mod:`searchcore.models.exemplars`), or None for no exemplar part.
    """
    from .hierarchy import hierarchy_part, log_normaliser
    from .wordclass import classifier_part

    total = sum(abs(t.weight) for t in terms)
    known = classifier.columns(terms) if classifier is not None else [None] * len(terms)
    seen = [t for t, c in zip(terms, known) if c is not None]
    unseen = [t for t, c in zip(terms, known) if c is None]
    if log_norm is None and np.ndim(logits) == 2 and len(logits):
        log_norm = log_normaliser(logits)
    return QueryParts(classifier_part(classifier, features, terms), hierarchy_part(logits, seen, total, log_norm),
                      hierarchy_part(logits, unseen, total, log_norm), exemplar_part(exemplars, terms))


def query_parts(head: Head | None, features: np.ndarray, logits: np.ndarray, terms: Sequence[Term],
                log_norm: np.ndarray | None = None, exemplars: Exemplars | None = None) -> QueryParts:
    """:func:`split_parts` for rows of ``features``/``logits``, with (None, 0) for a part the head gives no weight."""
    if head is None:
        return NO_PARTS
    classifier = head.word_classifier if head.word_mix > 0 else None
    exemplars = exemplars if head.exemplar_mix > 0 else None
    if classifier is None and head.unseen_class_mix <= 0 and exemplars is None:
        return NO_PARTS
    parts = split_parts(classifier, features, logits, terms, log_norm, exemplars)
    return QueryParts(parts.words, parts.seen_classes if head.class_mix > 0 else (None, 0.0),
                      parts.unseen_classes if head.unseen_class_mix > 0 else (None, 0.0), parts.exemplars)


def served_scores(cosine: np.ndarray, parts: QueryParts, head: Head | None) -> np.ndarray:
    """:func:`mixed_scores` with the head's chosen weights (the cosine alone without a head)."""
    if head is None:
        return cosine
    return mixed_scores(cosine, parts, *Shares.of(head))


class Shares(NamedTuple):
    """The word signals' shares in the served score (:func:`mixed_scores`), as chosen on validation photos."""

    word_mix: float = 0.0
    class_mix: float = 0.0
    unseen_class_mix: float = 0.0
    exemplar_mix: float = 0.0

    @classmethod
    def of(cls, head: Head) -> Shares:
        return cls(head.word_mix, head.class_mix, head.unseen_class_mix, head.exemplar_mix)


def combine(head_cosine: np.ndarray, conse_cosine: np.ndarray, mix: float, parts: QueryParts,
            shares: Shares) -> np.ndarray:
    """The served score from its pieces: ``(1-mix)·head_cosine + mix·conse_cosine``, then the word signals'
    ``parts`` with their ``shares`` (:func:`mixed_scores`). Every served, measured and compared score is this."""
    return mixed_scores((1.0 - mix) * head_cosine + mix * conse_cosine, parts, *shares)


def text_scores(vector: np.ndarray, terms: Sequence[Term], head: Head | None, words: WordVectors,
                head_rows: np.ndarray, conse_rows: np.ndarray, parts: QueryParts = NO_PARTS,
                mix: float | None = None) -> np.ndarray:
    """Each row's served score for the query (``vector``: its unit vector; ``terms``: its words): the head's and
    ConSE's embeddings of the photos, with the word signals' ``parts`` of the same photos. ``mix`` fixes ConSE's
    share instead of :func:`query_mix` (a measurement of one setting)."""
    if head is None:
        return conse_rows @ vector
    pairs = [(t.weight, t.word) for t in terms]
    share = query_mix(pairs, head, words) if mix is None else mix
    return combine(head_rows @ head.head_query(pairs, words), conse_rows @ vector, share, parts, Shares.of(head))
