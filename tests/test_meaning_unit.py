"""Known-answer tests on synthetic data: the metrics, caption words, caption-aware targets, the tag vocabulary and
the tag-ranking rules (classifier lead, neighbour votes), and the per-query trust of Text→Image."""

from __future__ import annotations

import math

import numpy as np
import pytest

from searchcore.models.conse import conse_only
from searchcore.models.fit import item_targets, stratified_split, target_words
from searchcore.models.head import DeViSEHead
from searchcore.models.scoring import NO_PARTS, Shares, combine, query_mix
from searchcore.models.tagging import (
    TagRule,
    TagVocabulary,
    build_tag_vocabulary,
    classifier_tags,
    exact_search_fn,
    neighbour_tags,
    rank_tags,
)
from searchcore.models.words import Term, WordVectors
from searchcore.quality.metrics import (
    caption_queries,
    image_image_precision,
    item_words,
    label_queries,
    precision_at,
    query_precision,
    tag_hits,
    word_queries,
)
from searchcore.settings import ServedSettings
from searchcore.text import content_words, same_word, singular, tokens

# ---- a tiny word space with known geometry ------------------------------------------------------------------------
AXES = ["the", "a", "of", "horse", "equines", "bird", "birds", "penguin", "fish", "goldfish", "animal", "mountain",
        "alp", "snow", "tool", "hammer", "prayer", "rug", "piece", "cloth", "wrench"]


def words() -> WordVectors:
    """Each word its own axis, except: equines ≈ horse, birds = bird, goldfish ≈ fish, alp ≈ mountain."""
    vectors = np.eye(len(AXES), dtype=np.float32)
    near = {"equines": "horse", "birds": "bird", "goldfish": "fish", "alp": "mountain"}
    for word, other in near.items():
        vectors[AXES.index(word)] += 0.8 * vectors[AXES.index(other)]
    return WordVectors(source="axes", words=list(AXES), vectors=vectors)


# ---- text ---------------------------------------------------------------------------------------------------------
def test_tokens_singular_and_content_words():
    assert tokens("A Magellanic penguin's egg.") == ["a", "magellanic", "penguin", "egg"]
    assert [singular(w) for w in ("birds", "berries", "boxes", "bus", "glass", "fish")] == \
        ["bird", "berry", "box", "bus", "glass", "fish"]
    assert same_word("bird", "birds") and not same_word("bird", "bride")
    counts = content_words(["A horse and a pony.", "The horse runs"], keep=lambda w: w != "runs")
    assert counts == {"horse": 2, "pony": 1}


# ---- metrics ------------------------------------------------------------------------------------------------------
def test_precision_at_uses_min_k_and_relevant_count():
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    assert precision_at(scores, np.array([True, False, True, False]), 10) == 0.5  # top 2 of 2 relevant: one hit
    assert precision_at(scores, np.array([False, False, False, True]), 10) == 0.0
    assert precision_at(scores, np.array([True, True, True, True]), 2) == 1.0
    assert math.isnan(precision_at(scores, np.zeros(4, bool), 5))


def test_image_image_precision_known_answer():
    features = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]], np.float32)
    labels = ["a", "a", "b", "b", "c"]  # "c" alone: not counted
    assert image_image_precision(features, labels) == 1.0
    assert image_image_precision(features, ["a", "b", "a", "b", "c"]) == 0.0


def test_label_and_word_queries_rank_a_pool():
    wv = words()
    labels = ["equines", "birds", "birds", "fish"]
    emb = np.stack([wv.unit("horse"), wv.unit("bird"), wv.unit("fish"), wv.unit("fish")])
    pool = np.array([0, 1, 2, 3])
    queries = label_queries(labels, pool, ["equines", "birds"], wv)
    assert [[t.word for t in q] for q, _ in queries] == [["birds"], ["equines"]]
    result = query_precision(lambda q, _t: emb @ q, pool, queries, wv, 10)
    assert result == {"birds": 0.5, "equines": 1.0}  # item 2 is a bird embedded as a fish
    known = [item_words(lab, [cap], wv) for lab, cap in zip(labels, ["A horse.", "A penguin.", "A bird.", ""])]
    assert known[1] == {"bird", "penguin"} and known[0] == {"equine", "horse"}
    wq = word_queries(known, pool, ["bird", "horse"])
    assert [m.tolist() for _, m in wq] == [[False, True, True, False], [True, False, False, False]]
    assert query_precision(lambda q, _t: emb @ q, pool, wq, wv, 5) == {"bird": 0.5, "horse": 1.0}


def test_caption_queries_need_three_captions_and_no_stop_words():
    wv = words()
    captions = [("A horse.",), ("The horse and a fish.",), ("A horse!",), ("A fish.", "Another fish.")]
    assert caption_queries(captions, wv) == ["horse"]  # fish: 2 items only; "the", "a": stop words
    assert caption_queries(captions, wv, min_captions=2) == ["fish", "horse"]


def test_tag_hits_known_answer():
    vocab = TagVocabulary(["horse", "bird", "fish"], [[0], [1], [2]], [-1, -1, -1])
    vectors = np.eye(3, dtype=np.float32)
    embs = np.array([[1, 0.1, 0], [0, 0, 1]], np.float32)
    assert tag_hits(embs, [{"horse"}, {"bird"}], vocab, vectors, k=1) == 0.5
    assert tag_hits(embs, [{"horse"}, {"bird"}], vocab, vectors, k=2) == 0.5  # second image: fish, then horse
    assert tag_hits(embs, [{"horses"}, {"bird"}], vocab, vectors, k=1, leads=[[], [1]]) == 1.0  # plural, lead


# ---- targets: labels and captions -----------------------------------------------------------------------------------
def test_item_targets_blend_label_and_caption_words():
    wv = words()
    labels = ["equines", "equines", "nothingknown"]
    captions = [("A horse.",), ("",), ("A penguin.",)]
    targets, mask, report = item_targets(labels, captions, wv, caption_weight=0.5)
    expected = 0.5 * wv.unit("equines") + 0.5 * wv.unit("horse")
    np.testing.assert_allclose(targets[0], expected / np.linalg.norm(expected), atol=1e-6)
    np.testing.assert_allclose(targets[1], wv.unit("equines"), atol=1e-6)  # no caption: the label alone
    np.testing.assert_allclose(targets[2], wv.unit("penguin"), atol=1e-6)  # unknown label: the caption alone
    assert mask.all()
    assert report.from_captions == ["nothingknown"] and report.caption_items == 2
    assert report.examples["A horse."] == ["horse"]
    # a caption reaches the target: the target is nearer "horse" than the label's own vector is
    assert targets[0] @ wv.unit("horse") > wv.unit("equines") @ wv.unit("horse")
    labels_only, _, _ = item_targets(labels, captions, wv, caption_weight=0.0)
    np.testing.assert_allclose(labels_only[0], wv.unit("equines"), atol=1e-6)
    assert target_words(labels, captions, [0], wv, 0.5) == ["equines", "horse"]


def test_item_targets_report_labels_without_any_target():
    wv = words()
    _, mask, report = item_targets(["zzz", "horse"], [("qqq",), ("",)], wv, caption_weight=0.5)
    assert mask.tolist() == [False, True]
    assert report.without_target == ["zzz"] and report.captions_without_words == 1
    assert any("without a target" in line for line in report.lines())


def test_split_has_a_test_part_that_holding_classes_out_never_changes():
    labels = ["a"] * 10 + ["b"] * 5 + ["c"] * 2 + ["d"]
    split = stratified_split(labels, 0.2, seed=3, test_fraction=0.2)
    by = {k: sorted(labels[i] for i in getattr(split, k)) for k in ("train", "val", "test")}
    assert by["test"] == ["a", "a", "b", "c"] and by["val"] == ["a", "a", "b"]
    assert by["train"].count("d") == 1 and by["train"].count("c") == 1
    held = stratified_split(labels, 0.2, seed=3, holdout_classes=["b"], test_fraction=0.2)
    keep = [i for i in split.test if labels[i] != "b"]
    assert sorted(held.test.tolist()) == sorted(keep)  # the other labels split exactly as before


# ---- the tag vocabulary ---------------------------------------------------------------------------------------------
class _Class:
    def __init__(self, broader):
        self.broader = broader


class _Visual:
    nouns = ("snow", "hammer", "tool", "fish", "rug", "cloth", "piece")
    caption_nouns = ("wrench",)  # untagged in WordNet, a visible later sense: a caption may name it
    imagenet = (_Class([["cyprinid"], ["fish"], ["animal"]]), _Class([["mountain"]]), _Class([["rug"]]),
                _Class([]))


def test_tag_vocabulary_is_built_for_images():
    wv = words()
    classes = ["goldfish, Carassius auratus", "alp", "prayer rug, prayer mat", "piece of cloth"]
    vocab = build_tag_vocabulary(wv, classes, labels=["birds"],
                                 captions=["A penguin on snow.", "The horse.", "A wrench."], visual=_Visual())
    phrases = set(vocab.phrases)
    assert {"goldfish", "alp", "prayer rug", "fish", "animal", "mountain", "snow", "hammer", "birds"} <= phrases
    assert "wrench" in phrases and vocab.sources["captions"] == 1  # from its caption, not as a noun by itself
    alone = build_tag_vocabulary(wv, classes, labels=["birds"], captions=["The horse."], visual=_Visual())
    assert "wrench" not in alone.phrases
    assert "piece of cloth" not in phrases  # a phrase with a function word is not a tag
    assert "the" not in phrases and "horse" not in phrases  # a stop word; a caption word that is not a seen noun
    assert vocab.phrases[vocab.class_tags[0][0]] == "goldfish"
    assert vocab.phrases[vocab.class_broader[0]] == "fish"  # the nearest everyday broader word, not "cyprinid"
    assert vocab.class_tags[3] == [] and vocab.class_broader[3] == -1
    assert vocab.sources["imagenet"] == 3 and vocab.sources["labels"] == 1
    # without WordNet: class names, labels and caption words
    plain = build_tag_vocabulary(wv, classes, labels=["birds"], captions=["A penguin."], use_wordnet=False)
    assert "fish" not in plain.phrases and {"goldfish", "penguin", "birds"} <= set(plain.phrases)


def test_classifier_tags_confident_class_and_probable_classes():
    vocab = TagVocabulary(["goldfish", "fish", "shark", "tench"], [[0], [2], [3]], [1, 1, 1])
    confident = np.log(np.array([0.9, 0.06, 0.04]))
    assert classifier_tags(confident, vocab, None) == [0, 1]  # its name, then its broader word
    unsure = np.log(np.array([0.4, 0.35, 0.25]))
    assert classifier_tags(unsure, vocab, None) == []
    assert classifier_tags(unsure, vocab, 0.3) == [0, 2]  # the classes at least 30 % probable, by probability


def test_an_unseen_photo_has_its_own_class_floor():
    """A photo embedded by ConSE alone is named by the classes above the unseen-photo floor; others by the usual."""
    vocab = TagVocabulary(["goldfish", "fish", "shark", "tench"], [[0], [2], [3]], [1, 1, 1])
    logits = np.log(np.array([0.45, 0.4, 0.15]))
    rule = TagRule(0.5, None, 0.1)
    assert classifier_tags(logits, vocab, rule.min_prob(unseen=False)) == []  # no class reaches 50 %
    assert classifier_tags(logits, vocab, rule.min_prob(unseen=True)) == [0, 2, 3]  # each at least 10 %, in order
    assert TagRule(0.2, 0.6, None).min_prob(unseen=True) is None  # None: only a confident class, as ever


def test_tag_rule_reads_a_manifest_with_or_without_the_unseen_floor():
    old = {"serving": {"class_min_prob": 0.2, "neighbour_distance": 0.6}}  # trained before the unseen floor
    assert TagRule.from_manifest(old) == TagRule(0.2, 0.6, 0.2)  # served as it was: one floor for every photo
    new = TagRule(0.2, 0.6, 0.05)
    assert TagRule.from_manifest({"serving": new.to_dict()}) == new
    assert TagRule.from_manifest({"serving": TagRule(0.2, 0.6, None).to_dict()}).unseen_class_min_prob is None
    assert TagRule.from_manifest({}) == TagRule()  # no head, no serving: only a confident class


def test_conse_only_marks_the_photos_farther_than_the_unseen_distance():
    head = DeViSEHead(in_dim=4, hidden_dim=4, out_dim=3, ood_distance=0.5)
    assert conse_only(head, np.array([0.4, 0.5, 0.6]), 3).tolist() == [False, False, True]
    assert conse_only(head, None, 2).tolist() == [False, False]  # the collection's own photos
    assert conse_only(None, np.array([0.1]), 1).tolist() == [True]  # no head: ConSE embeds every photo
    assert conse_only(DeViSEHead(in_dim=4, hidden_dim=4, out_dim=3), np.array([0.9]), 1).tolist() == [False]


def test_rank_tags_says_a_word_once_whatever_its_number():
    """"tool" after "tools", or "bird" voted after the lead's "birds", would fill a slot that says nothing new."""
    vocab = TagVocabulary(["tools", "tool", "hammer", "birds", "bird", "snow"], [], [])
    vectors = np.array([[1, 0, 0], [0.99, 0.14, 0], [0.8, 0.6, 0], [0, 0, 1], [0, 0.1, 0.99], [0.6, 0, 0.8]],
                       np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    search, vectors_of = exact_search_fn(vectors)
    emb = np.array([1, 0.05, 0], np.float32)
    assert [i for i, _ in rank_tags(emb, search, vectors_of, vocab, 3)] == [0, 2, 5]  # "tool" left out
    ranked = rank_tags(emb, search, vectors_of, vocab, 4, lead=[3], neighbours=[4, 1, 2])
    assert [i for i, _ in ranked] == [3, 1, 2, 5]  # votes: "bird" is the lead's "birds"; nearest: "tools" is "tool"


def test_neighbour_tags_vote_by_nearness_within_the_distance():
    per_item = [[0, 1], [1], [2]]
    assert neighbour_tags([0, 1, 2], [0.1, 0.2, 0.9], per_item, 0.5) == [1, 0]  # 1: 0.9 + 0.8 votes, 0: 0.9
    assert neighbour_tags([0, 1, 2], [0.1, 0.2, 0.9], per_item, None) == []


def test_rank_tags_puts_the_lead_first_and_keeps_multiword_phrases_out_of_the_nearest():
    vocab = TagVocabulary(["mountain", "mountain tent", "snow", "alp"], [], [])
    vectors = np.array([[1, 0, 0], [0.99, 0.14, 0], [0.8, 0.6, 0], [0.6, 0, 0.8]], np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    search, vectors_of = exact_search_fn(vectors)
    emb = np.array([1, 0.05, 0], np.float32)
    assert [i for i, _ in rank_tags(emb, search, vectors_of, vocab, 2)] == [0, 2]  # "mountain tent" skipped
    ranked = rank_tags(emb, search, vectors_of, vocab, 3, lead=[3], neighbours=[1, 2, 0])
    assert [i for i, _ in ranked] == [3, 1, 2]
    assert ranked[0][1] == pytest.approx(1 - vectors[3] @ (emb / np.linalg.norm(emb)), abs=1e-6)


# ---- per-query trust ------------------------------------------------------------------------------------------------
def test_query_mix_and_the_combined_score():
    head = DeViSEHead(in_dim=4, hidden_dim=4, out_dim=3)
    head.set_serving(ServedSettings(conse_mix=0.2, tag_conse_mix=0.3, unseen_conse_mix=0.9),
                     seen_words=["birds", "horse"])
    assert head.trained_on("bird") and head.trained_on("horses") and not head.trained_on("fish")
    assert query_mix([(1.0, "horse")], head) == pytest.approx(0.2)
    assert query_mix([(1.0, "fish")], head) == pytest.approx(0.9)
    assert query_mix([(2.0, "horse"), (-1.0, "fish")], head) == pytest.approx((2 * 0.2 + 0.9) / 3)
    assert query_mix([(1.0, "x")], None) == 1.0
    q = np.array([1.0, 0, 0])
    h, c = np.array([[1.0, 0, 0], [0, 1.0, 0]]), np.array([[0, 1.0, 0], [1.0, 0, 0]])
    np.testing.assert_allclose(combine(h @ q, c @ q, 0.25, NO_PARTS, Shares()), [0.75, 0.25])


def test_rankers_mean_and_finite():
    from searchcore.quality.metrics import finite, mean, rankers

    wv = words()
    conse = np.stack([wv.unit("horse"), wv.unit("fish")])
    head_emb = np.stack([wv.unit("fish"), wv.unit("horse")])
    head = DeViSEHead(in_dim=4, hidden_dim=4, out_dim=len(AXES))
    head.set_serving(ServedSettings(unseen_conse_mix=1.0), seen_words=["horse"])
    r = rankers(conse, head_emb, head, words=wv)
    q = wv.unit("horse")
    np.testing.assert_allclose(r["conse"](q, [Term(1.0, "horse")]), [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(r["head"](q, [Term(1.0, "horse")]), [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(r["served"](q, [Term(1.0, "horse")]), [0.0, 1.0], atol=1e-6)  # seen: the head
    f = wv.unit("fish")
    np.testing.assert_allclose(r["served"](f, [Term(1.0, "fish")]), [0.0, 1.0], atol=1e-6)  # unseen: ConSE
    fixed = rankers(conse, head_emb, head, mix=0.5, words=wv)["served"](q, [Term(1.0, "horse")])
    np.testing.assert_allclose(fixed, [0.5, 0.5], atol=1e-6)
    assert mean([0.5, float("nan"), 1.0]) == 0.75 and math.isnan(mean([]))
    assert finite(0.123456) == 0.1235 and finite(float("nan")) is None and finite(None) is None


def test_the_choice_scores_a_trained_words_query_over_the_photos_it_ranks_only():
    from searchcore.models.scoring import NO_PARTS
    from searchcore.quality.evaluation import _precisions

    # four photos; the query's relevant photo is 2; photo 0 (of a held-out label) scores highest
    head_scores = [np.array([0.9, 0.1, 0.5, 0.2])]
    relevant = np.array([False, False, True, False])
    queries = [([Term(1.0, "bird")], relevant)]
    args = (head_scores, [np.zeros(4)], [1.0], queries, [NO_PARTS], 0.0, 0.0, (0.0, 0.0, 0.0, 0.0))
    assert _precisions(*args) == [0.0]  # photo 0 leads
    assert _precisions(*args, [np.array([False, True, True, True])]) == [1.0]  # photo 0 is not ranked
    assert _precisions(*args, [None]) == [0.0]


def test_real_validation_photos_are_served_as_a_visitors_photo():
    """A real photo near the collection is tagged from the head's embedding blended with ConSE's; one unlike every
    collection photo from ConSE's alone, with the unseen-photo floor (the rules choose_serving scores them by)."""
    from searchcore.quality.evaluation import RealTagPhotos, Space

    rng = np.random.default_rng(0)
    names = ["horse", "fish", "bird", "snow", "tool", "hammer", "rug", "cloth", "cat", "dog", "tree", "car"]
    vectors = rng.normal(size=(len(names), 16)).astype(np.float32)
    wv = WordVectors(source="random", words=names, vectors=vectors)
    vocab = TagVocabulary(names, [[i] for i in range(len(names))], [-1] * len(names))
    tag_vectors = vocab.vectors(wv)
    horse = tag_vectors[0]
    space = Space([], [], wv, np.zeros((0, 16), np.float32), np.zeros((0, 12)), vocab, tag_vectors,
                  np.zeros((0, 4), np.float32))
    logits = np.log(np.full(12, 0.7 / 11))[None]
    logits[0, 0] = np.log(0.3)  # the classifier's first class, "horse", at 30 %: not confident
    photo = dict(features=np.ones((1, 4), np.float32), logits=logits, wanted=[("horse",)],
                 head_emb=horse[None], conse_emb=-horse[None])  # the head is right, ConSE points away
    none = np.zeros(0, np.int64)
    seen = RealTagPhotos(**photo, unseen=np.array([False]))
    assert seen.hits(space, 0.0, TagRule(), none) == 1.0  # the head's embedding
    assert seen.hits(space, 1.0, TagRule(), none) == 0.0  # all ConSE
    unseen = RealTagPhotos(**photo, unseen=np.array([True]))
    assert unseen.hits(space, 0.0, TagRule(), none) == 0.0  # ConSE alone, whatever the head's share
    assert unseen.hits(space, 0.0, TagRule(None, None, 0.2), none) == 1.0  # the unseen floor lets "horse" lead
    assert unseen.unseen_hits(space, 0.2) == 1.0 and unseen.unseen_hits(space, 0.5) == 0.0
    assert seen.unseen_hits(space, 0.2) == 1.0  # judged as if unlike the collection, whatever its distance
