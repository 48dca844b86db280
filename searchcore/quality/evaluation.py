"""Measure a bundle's word space, and choose how it is served: ConSE, the head, and the served mix side by side.

:func:`evaluate_bundle` reports every figure on the **test** split (photos no choice has seen) plus the held-out
classes (zero-shot) and the public real-photo set (:mod:`searchcore.quality.realphotos`). :func:`choose_serving` picks
the served settings on **validation** items with a calibration head that never saw a quarter of the labels:

* ``conse_mix`` / ``unseen_conse_mix``: ConSE's share in Text→Image for words the head was trained on and for
  words it never saw (:func:`searchcore.models.scoring.query_mix`);
* ``tag_conse_mix``: ConSE's share in the embedding that Image→Tags ranks tags by.

With a CLIP bundle of the same photos (:mod:`searchcore.models.clip`), :func:`clip_figures` adds CLIP zero-shot to the
table: the same queries, the same held-back photos, the same metrics.

    python -m training.evaluate --bundle BUNDLE [--clip CLIP_BUNDLE] --json
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import bundle as B
from ..index import exact_search
from ..models.conse import ConSE, blend
from ..models.exemplars import Exemplars, nearest_photos
from ..models.fit import Split
from ..models.head import DeViSEHead, load_head
from ..models.propagation import collection_targets, exact_neighbours, neighbour_embedding, served_embedding
from ..models.scoring import QueryParts, Shares, combine, split_parts
from ..models.tagging import TagRule, TagVocabulary, classifier_tags, item_tags, neighbour_tags
from ..models.wordclass import item_word_sets
from ..models.words import Term, WordVectors, load_word_vectors
from ..settings import ServedSettings
from ..text import singular
from .metrics import (
    caption_queries,
    finite,
    image_image_precision,
    item_words,
    label_queries,
    mean,
    precision_at,
    query_precision,
    rankers,
    tag_hits,
    word_queries,
)

if TYPE_CHECKING:
    from ..models.backbone import Backbone

GRID = tuple(float(m) for m in np.round(np.linspace(0, 1, 11), 2))
DISTANCES = (None, *(float(d) for d in np.round(np.arange(0.3, 0.81, 0.05), 2)))  # None: no neighbour tags
SIMILARITIES = (None, 0.9, 0.8, 0.7, 0.6)  # None: only the trained words themselves count as seen
NEIGHBOUR_MIXES = (0.0, 0.25, 0.5, 0.75)  # the look-alikes' share in a photo's Text→Image embedding
CLASS_PROBS = (None, 0.5, 0.3, 0.2, 0.15, 0.1, 0.05)  # None: only a confident class names the photo
# for a photo embedded by ConSE alone the grid goes lower: its nearest words are what the top classes share, so a
# class's own name may beat them from a lower probability (searchcore.models.tagging.TagRule)
UNSEEN_CLASS_PROBS = (*CLASS_PROBS, 0.02, 0.01)
NEIGHBOURS = 5  # as many as the engine asks (searchcore.serve.engine.NEIGHBOURS)
SHARES = tuple(float(m) for m in np.round(np.linspace(0, 1, 6), 2))  # the word classifier's and hierarchy's shares


@dataclass
class Space:
    """Everything the metrics need about one collection and one head: embeddings, words, tags."""

    labels: list[str]
    captions: list[tuple[str, ...]]
    words: WordVectors
    conse_emb: np.ndarray
    logits: np.ndarray
    tags: TagVocabulary
    tag_vectors: np.ndarray
    features: np.ndarray
    head: DeViSEHead | None = None
    head_emb: np.ndarray | None = None
    relevant_words: list[set[str]] = field(default_factory=list)  # per item: the words whose queries it answers
    caption_words: list[str] = field(default_factory=list)  # the caption-word queries
    item_tags: list[list[int]] = field(default_factory=list)  # per item: the tags its label and captions give
    targets: np.ndarray | None = None  # per item: its training target (searchcore.models.propagation)
    has_target: np.ndarray | None = None
    word_sets: list[set[str]] = field(default_factory=list)  # per item: its words (searchcore.models.wordclass)

    def neighbour_emb(self, items: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Rows for ``items``: their nearest ``reference`` photos' targets (:func:`neighbour_embedding`)."""
        if self.targets is None or len(items) == 0:
            return np.zeros((len(items), self.words.dim), np.float32)
        ids, dists = exact_neighbours(self.features, items, reference)
        return neighbour_embedding(ids, dists, self.targets, self.has_target, self_ids=np.asarray(items))

    def exemplars(self, items: np.ndarray, reference: np.ndarray) -> Exemplars:
        """Rows for ``items``: their nearest ``reference`` photos, with words (:mod:`searchcore.models.exemplars`)."""
        return nearest_photos(self.features, items, reference, self.word_sets)

    def served_head_emb(self, items: np.ndarray, reference: np.ndarray, neighbour_mix: float) -> np.ndarray:
        """The head's embeddings with ``items``' rows blended with their neighbours', as Text→Image serves them."""
        out = np.array(self.head_emb, copy=True)
        if neighbour_mix > 0 and len(items):
            out[items] = served_embedding(out[items], self.neighbour_emb(items, reference), neighbour_mix)
        return out

    def served_tags(self, emb: np.ndarray, logits: np.ndarray, feats: np.ndarray, wanted: list[set[str]] | list,
                    rule: TagRule | None, reference: np.ndarray, unseen: np.ndarray | None = None) -> float:
        """Tag hit@5 of images (rows of ``emb``, ``logits``, ``feats``); ``rule`` None: the nearest words alone.

        ``unseen``: per row, is the image embedded by ConSE alone (:func:`searchcore.models.conse.conse_only`), so
        served with the rule's unseen-photo floor (None: no row is)."""
        if rule is None:
            return tag_hits(emb, wanted, self.tags, self.tag_vectors)
        unseen = np.zeros(len(logits), bool) if unseen is None else np.asarray(unseen, bool)
        leads = [classifier_tags(row, self.tags, rule.min_prob(bool(u))) for row, u in zip(logits, unseen)]
        voted = self.voted(feats, reference, rule.neighbour_distance)
        return tag_hits(emb, wanted, self.tags, self.tag_vectors, leads=leads, neighbours=voted)

    def voted(self, queries: np.ndarray, reference: np.ndarray, max_distance: float | None) -> list[list[int]]:
        """Per query (features), the tags voted for by its near ``reference`` items (:func:`neighbour_tags`)."""
        if max_distance is None or len(reference) == 0:
            return [[] for _ in range(len(queries))]
        found = exact_search(self.features[reference], queries, NEIGHBOURS)
        return [neighbour_tags(reference[ids], dists, self.item_tags, max_distance)
                for ids, dists in zip(found.ids, found.distances)]

    @classmethod
    def of(cls, bundle: B.Bundle, words: WordVectors, conse: ConSE, head: DeViSEHead | None,
           caption_weight: float | None = None) -> Space:
        labels = [it.label for it in bundle.items]
        captions = [tuple(it.captions or (it.caption,)) for it in bundle.items]
        weight = caption_weight if caption_weight is not None else B.caption_weight(bundle.manifest)
        targets, has_target = collection_targets(labels, captions, words, weight)
        return cls(labels, captions, words, conse.embed(bundle.logits), np.asarray(bundle.logits), bundle.tags,
                   bundle.tags.vectors(words), np.asarray(bundle.features), head,
                   None if head is None else head.embed(bundle.features),
                   [item_words(lab, cap, words) for lab, cap in zip(labels, captions)],
                   caption_queries(captions, words), item_tags(bundle.tags, labels, captions, words),
                   targets, has_target, item_word_sets(labels, captions, words))

    def tag_embeddings(self, tag_mix: float | None) -> dict[str, np.ndarray]:
        out = {"conse": self.conse_emb}
        if self.head_emb is not None:
            out["head"] = self.head_emb
            mix = self.head.tag_conse_mix if tag_mix is None else tag_mix
            out["served"] = blend(self.head_emb, self.conse_emb, mix)
        else:
            out["served"] = self.conse_emb
        return out


def figures(space: Space, pool: np.ndarray, seen_labels: set[str], zero_labels: set[str], tag_items: np.ndarray,
            mix: float | None = None, tag_mix: float | None = None, zero_tag_items: np.ndarray | None = None,
            reference: np.ndarray | None = None, tag_rule: TagRule | None = None
            ) -> dict[str, dict[str, float]]:
    """Per ranker: Text→Image p@10 (labels), caption-word p@5, zero-shot p@10, tag hit@5 (not rounded).

    Served tags use the collection's ``reference`` items as neighbours (never the pool's own items).
    """
    words = space.words
    trained_q, zero_q, caption_q = _queries(space, pool, seen_labels, zero_labels)
    tag_emb = space.tag_embeddings(tag_mix)
    served_emb, exemplars = None, None
    if space.head is not None and space.head_emb is not None:
        # the pool's photos are described by their look-alikes among the other photos, never among themselves
        others = np.setdiff1d(np.arange(len(space.labels)), pool) if reference is None else reference
        served_emb = space.served_head_emb(pool, others, space.head.neighbour_mix)
        if space.head.exemplar_mix > 0:  # rows for every photo, as the rankers score them; only the pool's are read
            exemplars = space.exemplars(np.arange(len(space.labels)), others)
    out: dict[str, dict[str, float]] = {}
    for name, ranker in rankers(space.conse_emb, space.head_emb, space.head, mix, words, served_emb,
                                space.features, space.logits, exemplars).items():
        row = {"text_image_p10": mean(query_precision(ranker, pool, trained_q, words, 10).values()),
               "caption_word_p5": mean(query_precision(ranker, pool, caption_q, words, 5).values())}
        if zero_q:
            row["zero_shot_text_image_p10"] = mean(query_precision(ranker, pool, zero_q, words, 10).values())
        out[name] = row
    reference = np.zeros(0, np.int64) if reference is None else reference
    for name, emb in tag_emb.items():
        rule = tag_rule if name == "served" else None  # the classifier and neighbour rules are part of serving
        for key, items in (("tag_hit5", tag_items), ("zero_shot_tag_hit5", zero_tag_items)):
            if items is not None and len(items):
                out.setdefault(name, {})[key] = _tag_hits(space, emb, items, rule, reference)
    return out


def _queries(space: Space, pool: np.ndarray, seen_labels: set[str], zero_labels: set[str]) -> tuple[list, list, list]:
    """The label queries of seen and of held-out labels, and the caption-word queries, over ``pool``."""
    words, labels = space.words, space.labels
    pool_labels = {labels[i] for i in pool}
    return (label_queries(labels, pool, pool_labels & seen_labels, words),
            label_queries(labels, pool, pool_labels & zero_labels, words),
            word_queries(space.relevant_words, pool, space.caption_words))


def _tag_hits(space: Space, emb: np.ndarray, items: np.ndarray, rule: TagRule | None, reference: np.ndarray
              ) -> float:
    return space.served_tags(emb[items], space.logits[items], space.features[items],
                             [space.relevant_words[i] for i in items],
                             rule, reference)


@dataclass
class RealTagPhotos:
    """Real photos from outside the collection that tag rules are chosen on
    (:mod:`searchcore.quality.validation_photos`).

    ``unseen``: per photo, is it farther from every reference photo than the calibration head's unseen-photo
    distance, so served by ConSE alone with the unseen-photo floor, as the engine serves such a photo.
    """

    features: np.ndarray
    logits: np.ndarray
    wanted: list[tuple[str, ...]]
    head_emb: np.ndarray  # the calibration head's embedding
    conse_emb: np.ndarray
    unseen: np.ndarray

    def __len__(self) -> int:
        return len(self.wanted)

    def hits(self, space: Space, tag_mix: float, rule: TagRule, reference: np.ndarray) -> float:
        """Tag hit@5 as served with ConSE's share ``tag_mix``, ``rule`` and ``reference`` as the collection."""
        emb = np.where(self.unseen[:, None], self.conse_emb, blend(self.head_emb, self.conse_emb, tag_mix))
        return space.served_tags(emb, self.logits, self.features, list(self.wanted), rule, reference, self.unseen)

    def unseen_hits(self, space: Space, min_prob: float | None) -> float:
        """Tag hit@5 of every photo served as one unlike the collection: ConSE alone, the floor ``min_prob``."""
        return space.served_tags(self.conse_emb, self.logits, self.features, list(self.wanted), TagRule(None, None,
                                 min_prob), np.zeros(0, np.int64), np.ones(len(self), bool))


@dataclass
class Serving:
    """The served settings (Text → Image's and Image → Tags'), the tag rule, and the validation scores they were
    chosen on."""

    settings: ServedSettings
    tag_rule: TagRule
    scores: dict[str, dict[str, Any]]


def _best(table: dict[str, Any]) -> str:
    """The key with the highest score; ties (and scores that cannot be computed) go to the earliest key."""
    order = list(table)

    def score(key: str) -> float:
        value = table[key]["score"] if isinstance(table[key], dict) else table[key]
        return value if value is not None else -1.0

    return max(order, key=lambda key: (score(key), -order.index(key)))


def choose_search(space: Space, pool: np.ndarray, queries: list[tuple[list[Term], np.ndarray]],
                  reference: np.ndarray, neighbour_mixes: tuple[float, ...] = NEIGHBOUR_MIXES,
                  class_mixes: tuple[float, ...] = SHARES, exemplar_mixes: tuple[float, ...] = SHARES,
                  ranked: list[np.ndarray | None] | None = None) -> SearchChoice:
    """Text→Image's trust rule, chosen on ``queries`` over ``pool`` with the calibration head.

    ``ranked``: per query, which ``pool`` photos it ranks (None: all of them).

    For each share of the neighbours' words in a photo's embedding (:mod:`searchcore.models.propagation`, neighbours
    from ``reference``) and each seen-word similarity (None: only the words themselves count as seen), every pair
    of ConSE weights (seen, unseen) is scored by the mean precision@10 of the queries, each ranked with its own
    :func:`searchcore.models.scoring.query_mix`; the best combination wins. Then, with those settings, every combination
    of shares of the word classifier (:mod:`searchcore.models.wordclass`), the class hierarchy
    (:mod:`searchcore.models.hierarchy`) and the exemplars (:mod:`searchcore.models.exemplars`, nearest among
    ``reference``), and for the best one the ConSE weights again, since probabilities that speak for the words they know
    change how much ConSE should.
    """
    head, words = space.head, space.words
    if ranked is not None:  # a photo a query does not rank is neither relevant nor a distractor for it
        queries = [(terms, relevant if rows is None else relevant & rows)
                   for (terms, relevant), rows in zip(queries, ranked, strict=True)]
    conse_scores = [space.conse_emb[pool] @ words.combine(terms) for terms, _ in queries]
    neighbours = space.neighbour_emb(pool, reference)
    exemplars = space.exemplars(pool, reference) if any(exemplar_mixes) else None
    parts = [split_parts(head.word_classifier, space.features[pool], space.logits[pool], terms, exemplars=exemplars)
             for terms, _ in queries]
    table: dict[str, Any] = {}
    inputs: dict[str, tuple[list[np.ndarray], list[float]]] = {}
    for n_mix in neighbour_mixes:
        head_emb = served_embedding(space.head_emb[pool], neighbours, n_mix)
        for similarity in SIMILARITIES:
            head.seen_similarity = similarity
            head_scores = [head_emb @ head.head_query([(t.weight, t.word) for t in terms], words)
                           for terms, _ in queries]
            # each query: the share of its weight on seen words (the mix is linear in the two weights)
            seen_share = [sum(abs(t.weight) for t in terms if head.trained_on(t.word, words))
                          / sum(abs(t.weight) for t in terms) for terms, _ in queries]
            key = f"{n_mix}/{similarity}"
            inputs[key] = (head_scores, seen_share)
            score, m_seen, m_unseen = _best_conse(head_scores, conse_scores, seen_share, queries, parts,
                                                  (0.0, 0.0, 0.0, 0.0), ranked)
            table[key] = {"score": finite(score), "neighbour_mix": n_mix, "seen_similarity": similarity,
                          "conse_mix": m_seen, "unseen_conse_mix": m_unseen, "word_mix": 0.0, "class_mix": 0.0,
                          "unseen_class_mix": 0.0, "exemplar_mix": 0.0,
                          "seen_queries": int(sum(share == 1.0 for share in seen_share))}
    row = dict(table[_best(table)])
    head.seen_similarity = None
    head_scores, seen_share = inputs[f"{row['neighbour_mix']}/{row['seen_similarity']}"]
    trained = head.word_classifier is not None
    mixes_table: dict[str, Any] = {}
    # the ConSE weights stay as chosen above while the shares are swept; a trained word's hierarchy share only
    # matters where the word classifier leaves some of the score
    for w_mix in SHARES if trained else (0.0,):
        for c_mix in class_mixes if trained else (0.0,):
            for u_mix in class_mixes:
                for e_mix in exemplar_mixes:
                    values = _precisions(head_scores, conse_scores, seen_share, queries, parts, row["conse_mix"],
                                         row["unseen_conse_mix"], (w_mix, c_mix, u_mix, e_mix), ranked)
                    mixes_table[f"{w_mix}/{c_mix}/{u_mix}/{e_mix}"] = {
                        "score": finite(mean(values)), "word_mix": w_mix, "class_mix": c_mix,
                        "unseen_class_mix": u_mix, "exemplar_mix": e_mix}
    chosen = mixes_table[_best(mixes_table)]
    shares = (chosen["word_mix"], chosen["class_mix"], chosen["unseen_class_mix"], chosen["exemplar_mix"])
    score, m_seen, m_unseen = _best_conse(head_scores, conse_scores, seen_share, queries, parts, shares, ranked)
    row.update(word_mix=shares[0], class_mix=shares[1], unseen_class_mix=shares[2], exemplar_mix=shares[3],
               conse_mix=m_seen, unseen_conse_mix=m_unseen, score=finite(score))
    return SearchChoice(ServedSettings.from_dict(row), {"embedding": table, "mixes": mixes_table, "chosen": row})


def _precisions(head_scores: list[np.ndarray], conse_scores: list[np.ndarray], seen_share: list[float],
                queries: list[tuple[list[Term], np.ndarray]], parts: list[QueryParts], m_seen: float,
                m_unseen: float, shares: tuple[float, float, float, float],
                ranked: list[np.ndarray | None] | None = None) -> list[float]:
    """Each query's precision@10 under one setting of the served rule (:func:`searchcore.models.scoring.mixed_scores`;
    ``shares``: word_mix, class_mix, unseen_class_mix, exemplar_mix), over the photos it ranks (``ranked``)."""
    values = []
    for q, (share, hs, cs, query_parts, (_, relevant)) in enumerate(zip(seen_share, head_scores, conse_scores,
                                                                        parts, queries)):
        mix = share * m_seen + (1 - share) * m_unseen
        scores = combine(hs, cs, mix, query_parts, Shares(*shares))
        rows = None if ranked is None else ranked[q]
        values.append(precision_at(scores if rows is None else np.where(rows, scores, -np.inf), relevant, 10))
    return values


def _best_conse(head_scores: list[np.ndarray], conse_scores: list[np.ndarray], seen_share: list[float],
                queries: list[tuple[list[Term], np.ndarray]], parts: list[QueryParts],
                shares: tuple[float, float, float, float], ranked: list[np.ndarray | None] | None = None
                ) -> tuple[float, float, float]:
    """The best (precision@10, seen ConSE weight, unseen ConSE weight) over the grid, the shares as given."""
    best = (-1.0, 0.0, 0.0)
    for m_seen in GRID:
        for m_unseen in GRID:
            score = mean(_precisions(head_scores, conse_scores, seen_share, queries, parts, m_seen, m_unseen,
                                     shares, ranked))
            if score > best[0] + 1e-12:
                best = (score, m_seen, m_unseen)
    return best


def _trained_words(head: DeViSEHead, terms: list[Term]) -> bool:
    """Was the head trained on every word of the query (its word classifier's words, else its seen words)?"""
    if head.word_classifier is not None:
        return all(c is not None for c in head.word_classifier.columns(terms))
    return all(t.word in head.seen_words or singular(t.word) in head.seen_words for t in terms)


@dataclass
class SearchChoice:
    """Text→Image's served settings (:func:`choose_search`) and the validation scores they were chosen on."""

    settings: ServedSettings
    table: dict[str, Any]


def choose_serving(space: Space, pool: np.ndarray, seen_labels: set[str], unseen_labels: set[str],
                   tag_items: np.ndarray, unseen_tag_items: np.ndarray, reference: np.ndarray,
                   neighbour_mixes: tuple[float, ...] = NEIGHBOUR_MIXES, class_mixes: tuple[float, ...] = SHARES,
                   exemplar_mixes: tuple[float, ...] = SHARES, real: RealTagPhotos | None = None) -> Serving:
    """Pick the served settings on validation items with a calibration head (``space.head``).

    Text→Image (:func:`choose_search`): the queries are the labels and caption words of ``pool`` (validation
    items and the items of classes the calibration head never saw). Image→Tags, one after the other: the ConSE
    weight, the classifier's probability floor, the neighbour distance, on the tag hits of validation photos and of
    never-seen classes' photos, with the calibration head's training items (``reference``) as the collection; then
    the floor for a photo from outside the collection, on all these photos (``reference`` too) served as the engine
    serves such a photo: embedded by ConSE alone, with no collection photo near enough to vote.
    ``real`` (public real photos of :mod:`searchcore.quality.validation_photos`, never those the figures are measured
    on) joins every tag score as a group of its own, served as the engine serves a visitor's photo: a tag rule is for
    real photos as much as for the collection's cut-outs.
    Ties go to the earlier grid value: the smaller weight (trust the head), the stricter rule.
    """
    words, labels = space.words, space.labels
    pool_labels = {labels[i] for i in pool}
    queries = label_queries(labels, pool, pool_labels & (seen_labels | unseen_labels), words)
    queries += word_queries(space.relevant_words, pool, space.caption_words)
    queries = [q for q in queries if q[1].any()]
    # Served, every photo of the collection is of a label the head knows. So a query whose words the calibration
    # head knows ranks only the pool's photos of the labels it was trained on, as a test photo's query ranks the
    # test photos; the held-out labels' photos are there for the words it never saw.
    known_rows = ~np.isin([labels[i] for i in pool], sorted(unseen_labels))
    ranked = [known_rows if _trained_words(space.head, terms) else None for terms, _ in queries]
    search = choose_search(space, pool, queries, reference, neighbour_mixes, class_mixes, exemplar_mixes, ranked)
    scores: dict[str, dict[str, Any]] = {"search": search.table["embedding"], "mixes": search.table["mixes"],
                                         "tags": {}, "class_min_prob": {}, "neighbour_distance": {},
                                         "unseen_class_min_prob": {}}

    real = real if real is not None and len(real) else None
    if real is not None:
        scores["real_photos"] = {"count": len(real), "unseen": int(real.unseen.sum())}

    def tag_score(mix: float, rule: TagRule) -> float | None:
        emb = blend(space.head_emb, space.conse_emb, mix)
        groups = [_tag_hits(space, emb, items, rule, reference) for items in (tag_items, unseen_tag_items)
                  if len(items)]
        if real is not None:
            groups.append(real.hits(space, mix, rule, reference))
        return finite(mean(groups))

    for m in GRID:
        scores["tags"][str(m)] = tag_score(m, TagRule())
    tag_mix = float(_best(scores["tags"]))
    for p in CLASS_PROBS:
        scores["class_min_prob"][str(p)] = tag_score(tag_mix, TagRule(p, None))
    chosen = _best(scores["class_min_prob"])
    min_prob = None if chosen == "None" else float(chosen)
    for d in DISTANCES:
        scores["neighbour_distance"][str(d)] = tag_score(tag_mix, TagRule(min_prob, d))
    chosen = _best(scores["neighbour_distance"])
    distance = None if chosen == "None" else float(chosen)
    # ConSE and the classifier never learnt from the collection, so every photo no figure is measured on may judge
    # the unseen-photo rule, the calibration head's training photos too: the more photos, the steadier the choice
    photos = np.concatenate([tag_items, unseen_tag_items, reference]).astype(np.int64)
    for p in UNSEEN_CLASS_PROBS:  # served as an unseen photo: ConSE's embedding, no votes (conse.conse_only)
        groups = [_tag_hits(space, space.conse_emb, photos, TagRule(p), photos)]
        if real is not None:  # every real photo, as if unlike the collection: the rule is ConSE's, not the head's
            groups.append(real.unseen_hits(space, p))
        scores["unseen_class_min_prob"][str(p)] = finite(mean(groups))
    chosen = _best(scores["unseen_class_min_prob"])
    rule = TagRule(min_prob, distance, None if chosen == "None" else float(chosen))
    return Serving(search.settings.replace(tag_conse_mix=tag_mix), rule, scores)


def real_photo_figures(bundle: B.Bundle, space: Space, conse: ConSE, rule: TagRule,
                       backbone: Backbone | None = None) -> dict[str, Any]:
    """Tag hit@5 on the public real-photo set, for ConSE, the head and the served rule (unseen-photo fallback);
    ``backbone``: the bundle's, already loaded (default: load it)."""
    from ..models.backbones import load_backbone
    from ..models.conse import conse_only, tag_embeddings
    from .realphotos import real_photo_set

    photos = real_photo_set()
    if not photos.photos:
        return {"count": 0, "missing": photos.missing}
    backbone = backbone or load_backbone(bundle.manifest["backbone"])
    feats = backbone.extract([path for _, path in photos.photos])
    wanted = [entry.words for entry, _ in photos.photos]
    embs = {"conse": conse.embed(feats.logits)}
    if space.head is not None:
        embs["head"] = space.head.embed(feats.features)
    nearest = exact_search(bundle.features, feats.features, 1).distances[:, 0]
    embs["served"] = tag_embeddings(feats.features, feats.logits, conse, space.head, nearest)  # as the engine does
    unseen = conse_only(space.head, nearest, len(nearest))  # served by the unseen-photo rule, as the engine does
    out: dict[str, Any] = {"count": len(photos.photos), "missing": photos.missing,
                           "unseen": int(unseen.sum())}
    every = np.arange(len(space.labels))  # the whole collection, as served
    for name, emb in embs.items():
        out[name] = finite(space.served_tags(emb, feats.logits, feats.features, wanted,
                                             rule if name == "served" else None, every, unseen))
    return out


def evaluate_bundle(root: str | Path, words: WordVectors | None = None, head: DeViSEHead | None = None,
                    split: Split | None = None, real_photos: bool = True,
                    tag_rule: TagRule | None = None, clip: str | Path | None = None,
                    backbone: Backbone | None = None) -> dict[str, Any]:
    """ConSE, the head alone and the served rules side by side on the test split recorded at training time.

    ``clip``: a CLIP bundle of the same photos, measured alongside as ``results["clip"]`` (:func:`clip_figures`).
    ``backbone``: the bundle's backbone when the caller has it loaded already (the real photos are extracted by it).
    """
    from ..models.backbone import imagenet_class_names

    bundle = B.open_bundle(root)
    manifest = bundle.manifest
    words = words or load_word_vectors(manifest["words"])
    training = manifest.get("training", {})
    if B.is_clip(manifest):
        raise B.BundleError("is a CLIP bundle: it has no head and no split of its own to measure on. Measure it "
                            "beside a trained bundle of the same photos: python -m training.evaluate --bundle "
                            f"TRAINED --clip {bundle.root}", bundle.root / B.MANIFEST)
    if split is None:
        if "split" not in training:
            if bundle.head_dir is not None:  # kept by --update, which drops the split and figures of other photos
                raise B.BundleError("has a trained head but no recorded training split to measure it on (an update "
                                    "of the bundle's photos keeps the head and drops its figures).",
                                    bundle.root / B.MANIFEST, "Train it again to measure it: python -m "
                                    f"training.train_devise --bundle {bundle.root}")
            raise B.BundleError("has no trained head to evaluate.", bundle.root / B.MANIFEST,
                                f"Train one with: python -m training.train_devise --bundle {bundle.root}")
        split = Split.from_dict(training["split"])
    if head is None and bundle.head_dir is not None:
        measured = bundle.head_dir / B.MEASURED
        # the served head may have trained on the test photos; the measured one never did
        head = load_head(measured if (measured / "config.json").is_file() else bundle.head_dir)
    tag_rule = tag_rule or TagRule.from_manifest(manifest)
    conse = ConSE.from_words(imagenet_class_names(), words, top_t=int(manifest.get("conse_top_t", 10)))
    space = Space.of(bundle, words, conse, head)
    test = split.test if len(split.test) else split.val  # bundles trained before the test split: say so below
    pool = np.concatenate([test, split.holdout]).astype(np.int64)
    held = {space.labels[i] for i in split.holdout}
    seen = {space.labels[i] for i in test} - held
    reference = np.setdiff1d(np.arange(len(space.labels)), pool)  # the photos whose captions the system may use
    table = figures(space, pool, seen, held, test, zero_tag_items=split.holdout, reference=reference,
                    tag_rule=tag_rule)
    results: dict[str, Any] = {name: {k: finite(v) for k, v in row.items()} for name, row in table.items()}
    results["split"] = "test" if len(split.test) else "validation"
    results["eval_items"] = len(pool)
    results["caption_queries"] = len(space.caption_words)
    if head is not None:
        results["served"].update(conse_mix=head.conse_mix, unseen_conse_mix=head.unseen_conse_mix,
                                 seen_similarity=head.seen_similarity, neighbour_mix=head.neighbour_mix,
                                 word_mix=head.word_mix, class_mix=head.class_mix,
                                 unseen_class_mix=head.unseen_class_mix, exemplar_mix=head.exemplar_mix,
                                 tag_conse_mix=head.tag_conse_mix)
    results["served"].update(tag_rule.to_dict())
    if real_photos:
        real = real_photo_figures(bundle, space, conse, tag_rule, backbone)
        for name in ("conse", "head", "served"):
            if name in real and name in results:
                results[name]["real_photo_tag_hit5"] = real[name]
        results["real_photos"] = {"count": real["count"], "missing": real["missing"], "unseen": real.get("unseen", 0)}
    results["features_image_image_p10"] = finite(image_image_precision(bundle.features[pool],
                                                                       [space.labels[i] for i in pool]))
    if clip is not None:
        results["clip"] = clip_figures(clip, bundle, space, pool, seen, held, test, split.holdout, real_photos)
    return results


def clip_figures(source: str | Path, bundle: B.Bundle, space: Space, pool: np.ndarray, seen_labels: set[str],
                 zero_labels: set[str], tag_items: np.ndarray, zero_tag_items: np.ndarray, real_photos: bool = True
                 ) -> dict[str, Any]:
    """CLIP zero-shot on the figures' own terms: ``bundle``'s photos, queries and held-back items, CLIP's embeddings.

    ``source`` is a CLIP bundle of the same photos (matched by path; every one of ``bundle``'s must be there).
    Text → Image ranks by the cosine of CLIP's prompted text embedding of the same query words; tags are served
    as the engine serves a CLIP bundle (the nearest tag phrases in CLIP's space, a confident zero-shot class first).
    Nothing here was trained on these photos, so every label is zero-shot for CLIP.
    """
    from ..models.backbones import load_backbone
    from .metrics import tag_hits

    other = B.open_bundle(source)
    if not B.is_clip(other.manifest):
        raise B.BundleError("is not a CLIP bundle; build one with: python -m training.build_assets --backbone "
                            "clip:openai/clip-vit-base-patch32 ...", other.root / B.MANIFEST)
    rows_by_path = {it.path: i for i, it in enumerate(other.items)}
    missing = [it.path for it in bundle.items if it.path not in rows_by_path]
    if missing:
        raise B.BundleError(f"lacks {len(missing)} of the photos it is compared on (e.g. {missing[0]}); build it "
                            "from the same collection.", other.root)
    rows = np.array([rows_by_path[it.path] for it in bundle.items], np.int64)
    emb, logits = np.asarray(other.features[rows]), np.asarray(other.logits[rows])
    net = load_backbone(other.manifest["backbone"])
    words = space.words
    trained_q, zero_q, caption_q = _queries(space, pool, seen_labels, zero_labels)

    def ranker(_q: np.ndarray, terms: list[Term]) -> np.ndarray:
        return emb @ net.embed_query(terms)

    out: dict[str, Any] = {"text_image_p10": mean(query_precision(ranker, pool, trained_q, words, 10).values()),
                           "caption_word_p5": mean(query_precision(ranker, pool, caption_q, words, 5).values())}
    if zero_q:
        out["zero_shot_text_image_p10"] = mean(query_precision(ranker, pool, zero_q, words, 10).values())
    tags = other.tags
    vectors = other.indexes["tags"].get(np.arange(len(tags.phrases)))
    rule = TagRule.from_manifest(other.manifest)  # what the engine serves for a CLIP bundle

    def hits(images: np.ndarray, image_logits: np.ndarray, wanted: list) -> float:
        leads = [classifier_tags(row, tags, rule.class_min_prob) for row in image_logits]
        return tag_hits(images, wanted, tags, vectors, leads=leads)

    for key, items in (("tag_hit5", tag_items), ("zero_shot_tag_hit5", zero_tag_items)):
        if len(items):
            out[key] = hits(emb[items], logits[items], [space.relevant_words[i] for i in items])
    if real_photos:
        from .realphotos import real_photo_set

        photos = real_photo_set()
        if photos.photos:
            feats = net.extract([path for _, path in photos.photos])
            out["real_photo_tag_hit5"] = hits(feats.features, feats.logits, [e.words for e, _ in photos.photos])
    out["image_image_p10"] = image_image_precision(emb[pool], [space.labels[i] for i in pool])
    out = {k: finite(v) for k, v in out.items()}
    out["backbone"] = other.manifest["backbone"]
    return out
