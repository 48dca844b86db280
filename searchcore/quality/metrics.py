"""Retrieval metrics: how well do images and words meet in the word space? All exact (matrix products).

A *ranker* scores every collection item for a query (its unit vector and its parsed terms), so ConSE, the head
alone and the served score (:func:`searchcore.models.scoring.text_scores`) are measured by the same code:

* ``text_image_p10``: each label's words rank the pool of evaluation photos; precision over the top min(10, n)
  where n is how many pool photos carry the label (a label with 3 photos can score 1.0); the mean over labels.
  ``zero_shot_text_image_p10`` is the same for labels held out of training.
* ``caption_word_p5``: every content word (no stop words) used by at least 3 captions of the collection ranks the
  pool; a photo is relevant when its caption or label uses the word (``bird`` = ``birds``); precision@min(5, n).
* ``tag_hit5``: the share of photos with at least one wanted word among their top-5 tags; for collection photos
  the wanted words are the label's, for the public real-photo set (:mod:`searchcore.quality.realphotos`) a person's.

Which items form the pool is the caller's choice: the pipeline chooses on the validation split and reports on the
test split, so no reported figure comes from photos a choice has seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..index import unit_rows
from ..models.exemplars import Exemplars
from ..models.scoring import NO_PARTS, query_parts, text_scores
from ..models.tagging import TagVocabulary, exact_search_fn, rank_tags
from ..models.words import Term, WordVectors, label_words
from ..text import content_words, same_word, singular

if TYPE_CHECKING:
    from ..models.headview import Head

Ranker = Callable[[np.ndarray, list[Term]], np.ndarray]  # (unit query, terms) → a score per collection item


def precision_at(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Precision over the top min(k, number relevant) by score (stable order); NaN when nothing is relevant."""
    n = min(k, int(np.sum(relevant)))
    if n == 0:
        return float("nan")
    top = np.argsort(-np.asarray(scores), kind="stable")[:n]
    return float(np.asarray(relevant)[top].mean())


def mean(values: Iterable[float]) -> float:
    finite_values = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite_values)) if finite_values else float("nan")


def finite(value: float | None) -> float | None:
    """Rounded, or None where a figure cannot be computed (JSON has no NaN)."""
    return round(float(value), 4) if value is not None and np.isfinite(value) else None


def rankers(conse_emb: np.ndarray, head_emb: np.ndarray | None = None, head: Head | None = None,
            mix: float | None = None, words: WordVectors | None = None, served_emb: np.ndarray | None = None,
            features: np.ndarray | None = None, logits: np.ndarray | None = None,
            exemplars: Exemplars | None = None) -> dict[str, Ranker]:
    """ConSE, the head alone and the served mix (per query, or the fixed ``mix`` when given) as rankers.

    ``served_emb``: the photos' embeddings as Text→Image serves them (the head's blended with their
    neighbours', :mod:`searchcore.models.propagation`); the head's alone when not given. ``features`` and ``logits``:
    the photos', for the head's word classifier (:mod:`searchcore.models.wordclass`) and the class hierarchy
    (:mod:`searchcore.models.hierarchy`), which the served mix includes when both are given; ``exemplars``: every
    photo's nearest collection photos (:mod:`searchcore.models.exemplars`), for the served mix's exemplar part.
    """
    out: dict[str, Ranker] = {"conse": lambda q, _t: conse_emb @ q}
    if head_emb is not None:
        out["head"] = lambda q, _t: head_emb @ q

        def served(q: np.ndarray, terms: list[Term]) -> np.ndarray:
            parts = NO_PARTS if features is None or logits is None else query_parts(head, features, logits, terms,
                                                                                      exemplars=exemplars)
            if head is None or words is None:  # no head to read the words: the fixed mix of the two cosines
                m = 1.0 if mix is None else mix
                return (1.0 - m) * (head_emb @ q) + m * (conse_emb @ q)
            return text_scores(q, terms, head, words, head_emb if served_emb is None else served_emb, conse_emb,
                               parts, mix)

        out["served"] = served
    return out


def image_image_precision(features: np.ndarray, labels: Sequence[str]) -> float:
    """Each image ranks the others by cosine; precision@min(10, n) of its own label, the mean over images."""
    unit = unit_rows(features)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    lab = np.asarray(labels)
    others = ~np.eye(len(lab), dtype=bool)  # an image is not its own neighbour, nor counted as relevant to itself
    return mean(precision_at(sims[i], (lab == lab[i]) & others[i], 10) for i in range(len(lab))
                if (lab == lab[i]).sum() > 1)


def item_words(label: str, captions: Sequence[str], words: WordVectors) -> set[str]:
    """The singular forms of the words an item is named by: its label's and its captions' content words."""
    found = set(label_words(label, words) or label.lower().split())
    found.update(content_words(captions))
    return {singular(w) for w in found}


def caption_queries(captions: Sequence[Sequence[str]], words: WordVectors, min_captions: int = 3) -> list[str]:
    """Content words (known to the vectors) that at least ``min_captions`` items' captions use, sorted."""
    per_item = [set(content_words(c, lambda w: w in words)) for c in captions]
    counts: dict[str, int] = {}
    for found in per_item:
        for w in found:
            counts[w] = counts.get(w, 0) + 1
    return sorted(w for w, n in counts.items() if n >= min_captions)


def query_precision(ranker: Ranker, pool: np.ndarray, queries: Sequence[tuple[list[Term], np.ndarray]],
                    words: WordVectors, k: int) -> dict[str, float]:
    """Per query (terms, relevant mask over ``pool``): precision@min(k, n) of the pool ranked by ``ranker``."""
    out = {}
    for terms, relevant in queries:
        if relevant.any():
            scores = ranker(words.combine(terms), terms)[pool]
            out[" ".join(t.word for t in terms)] = precision_at(scores, relevant, k)
    return out


def label_queries(labels: Sequence[str], pool: np.ndarray, query_labels: Iterable[str],
                  words: WordVectors) -> list[tuple[list[Term], np.ndarray]]:
    pool_labels = np.asarray([labels[i] for i in pool])
    out = []
    for label in sorted(set(query_labels)):
        parts = label_words(label, words)
        if parts:
            out.append(([Term(1.0, p) for p in parts], pool_labels == label))
    return out


def word_queries(known: Sequence[set[str]], pool: np.ndarray, query_words: Iterable[str]
                 ) -> list[tuple[list[Term], np.ndarray]]:
    """Single-word queries; an item is relevant when ``known[item]`` (singular forms) holds the word."""
    return [([Term(1.0, w)], np.array([singular(w) in known[i] for i in pool], bool)) for w in query_words]


def tag_hits(embeddings: np.ndarray, wanted: Sequence[Iterable[str]], vocab: TagVocabulary, vectors: np.ndarray,
             k: int = 5, leads: Sequence[Sequence[int]] | None = None,
             neighbours: Sequence[Sequence[int]] | None = None) -> float:
    """Share of images with a wanted word in their top-``k`` tags (a phrase hits when one of its words is wanted).

    ``leads`` (the classifier's tags per image) and ``neighbours`` (tags voted by near collection photos) are
    :func:`searchcore.models.tagging.rank_tags`'s; without them the tags are the words nearest each embedding.
    """
    hits = []
    for n, (emb, want) in enumerate(zip(embeddings, wanted)):
        want = list(want)
        if want:
            tags = top_tags(emb, vocab, vectors, k, () if leads is None else leads[n],
                            () if neighbours is None else neighbours[n])
            hits.append(any(same_word(part, w) for tag in tags for part in tag.split() for w in want))
    return float(np.mean(hits)) if hits else float("nan")


def top_tags(embedding: np.ndarray, vocab: TagVocabulary, vectors: np.ndarray, k: int = 5,
             lead: Sequence[int] = (), neighbours: Sequence[int] = ()) -> list[str]:
    search, vectors_of = exact_search_fn(vectors)
    return [vocab.phrases[i] for i, _ in rank_tags(embedding, search, vectors_of, vocab, k, lead, neighbours)]
