"""Known-answer tests of the probabilities beside the embedding: the head's word classifier
(searchcore.models.wordclass), the classifier's mass below a word in WordNet (searchcore.models.hierarchy), and how Text
→ Image mixes them in (searchcore.models.scoring.mixed_scores), on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from searchcore.models.head import DeViSEHead, load_head
from searchcore.models.hierarchy import IMAGENET_CLASSES, MIN_PROBABILITY, hierarchy_part, log_normaliser, word_classes
from searchcore.models.scoring import QueryParts, mixed_scores, split_parts
from searchcore.models.tagging import packaged_visual_vocab
from searchcore.models.wordclass import classifier_part, fit_word_classifier, item_word_sets, probabilities
from searchcore.models.words import Term, WordVectors
from searchcore.settings import ServedSettings

WORDS = ["bird", "horse", "red", "apple", "art", "tools", "the", "fish"]


@pytest.fixture
def words() -> WordVectors:
    rng = np.random.default_rng(0)
    return WordVectors("test", WORDS, rng.standard_normal((len(WORDS), 8)).astype(np.float32))


def clustered(n_per: int = 12, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, list[set[str]]]:
    """Three clusters of features: birds, red apples, horses; each photo's words as a classifier target."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, dim)) * 3
    feats = np.concatenate([c + rng.standard_normal((n_per, dim)) for c in centres]).astype(np.float32)
    sets = [{"bird"}] * n_per + [{"apple", "red"}] * n_per + [{"horse"}] * n_per
    return feats, [set(s) for s in sets]


def test_item_word_sets_take_label_words_and_caption_content_words_in_singular(words):
    sets = item_word_sets(["arttools", "horse"], [("The red apples.",), ("",)], words)
    assert sets[0] == {"art", "tool", "red", "apple"}  # a compound label segmented; every word singular
    assert sets[1] == {"horse"}  # an empty caption adds nothing


def test_fit_word_classifier_ranks_each_words_photos_first():
    feats, sets = clustered()
    train = np.arange(0, 36, 2)  # every other photo; the others are held back
    clf = fit_word_classifier(feats, sets, train)
    assert clf.vocab == ["apple", "bird", "horse", "red"]
    held = np.arange(1, 36, 2)
    probs = probabilities(clf, feats[held], range(4))
    for j, word in enumerate(clf.vocab):
        relevant = np.array([word in sets[i] for i in held])
        top = np.argsort(-probs[:, j])[: relevant.sum()]
        assert relevant[top].all(), word  # every held-back photo of the word outranks every other one
        assert probs[relevant, j].min() > 0.5 > probs[~relevant, j].max()
    again = fit_word_classifier(feats, sets, train)  # full-batch L-BFGS from zero: no seed, same answer
    np.testing.assert_allclose(again.weight, clf.weight, atol=1e-5)
    assert fit_word_classifier(feats, [set()] * len(sets), train) is None  # no words: no classifier


def test_classifier_part_covers_known_words_by_weight_and_subtracts_minus_terms():
    feats, sets = clustered()
    clf = fit_word_classifier(feats, sets, np.arange(36))
    p = probabilities(clf, feats, range(len(clf.vocab)))
    assert ((p > 0) & (p < MIN_PROBABILITY)).any()  # some photos are hardly called by some words...
    p = np.where(p >= MIN_PROBABILITY, p, 0.0)  # ...and those probabilities count as 0 (sparse, as the tables hold)
    col = {w: j for j, w in enumerate(clf.vocab)}
    part, share = classifier_part(clf, feats, [Term(1.0, "birds")])  # the singular form is found
    np.testing.assert_allclose(part, p[:, col["bird"]], atol=1e-6)
    assert share == 1.0
    part, share = classifier_part(clf, feats, [Term(2.0, "apple"), Term(-1.0, "red"), Term(1.0, "ocean")])
    np.testing.assert_allclose(part, (2 * p[:, col["apple"]] - p[:, col["red"]]) / 4, atol=1e-6)
    assert share == 0.75  # "ocean" was never trained: a quarter of the weight is the embedding's alone
    assert classifier_part(clf, feats, [Term(1.0, "ocean")]) == (None, 0.0)
    assert classifier_part(None, feats, [Term(1.0, "bird")]) == (None, 0.0)


def test_mixed_scores_known_answers():
    cosine = np.array([0.2, 0.8])
    words_p, class_p = np.array([1.0, 0.0]), np.array([0.5, 0.5])
    none = (None, 0.0)
    np.testing.assert_allclose(mixed_scores(cosine, QueryParts(none, none, none), 0.7, 0.7, 0.7), cosine)
    # a trained word: 0.7 of the score is the classifier's
    np.testing.assert_allclose(mixed_scores(cosine, QueryParts((words_p, 1.0), none, none), 0.7, 0.0, 0.0),
                               0.3 * cosine + 0.7 * words_p)
    # a word only the hierarchy places: unseen_class_mix of the score
    np.testing.assert_allclose(mixed_scores(cosine, QueryParts(none, none, (class_p, 1.0)), 0.0, 0.9, 0.4),
                               0.6 * cosine + 0.4 * class_p)
    # a trained word the hierarchy also places: class_mix of what the classifier left
    want = 0.5 * 0.5 * cosine + 0.5 * words_p + 0.5 * 0.5 * class_p
    np.testing.assert_allclose(mixed_scores(cosine, QueryParts((words_p, 1.0), (class_p, 1.0), none), 0.5, 0.5, 0.9),
                               want)
    # a part covering half the query's weight speaks for half as much
    np.testing.assert_allclose(mixed_scores(cosine, QueryParts((words_p * 0.5, 0.5), none, none), 1.0, 0.0, 0.0),
                               0.5 * cosine + 0.5 * words_p)


def test_split_parts_send_each_word_to_the_hierarchy_share_of_its_kind():
    feats, sets = clustered()
    clf = fit_word_classifier(feats, sets, np.arange(36))
    logits = np.zeros((len(feats), IMAGENET_CLASSES), np.float32)
    parts = split_parts(clf, feats, logits, [Term(1.0, "bird"), Term(1.0, "fish"), Term(2.0, "qzxv")])
    assert parts.words[1] == 0.25  # "bird" is a quarter of the weight
    # both words are WordNet's (its packaged data: test_the_wordnet_data_is_packaged); only "bird" is trained
    assert parts.seen_classes[1] == 0.25 and parts.unseen_classes[1] == 0.25
    assert split_parts(None, feats, logits, [Term(1.0, "qzxv")]) == QueryParts((None, 0.0), (None, 0.0),
                                                                                  (None, 0.0))


def test_the_wordnet_data_is_packaged():
    # the word classes below come from WordNet data shipped in the checkout: without it every test here would
    # measure nothing, so its absence fails instead of skipping
    vocab = packaged_visual_vocab()
    assert vocab is not None and len(vocab.imagenet) == IMAGENET_CLASSES


def test_word_classes_follow_wordnet_above_imagenet_classes():
    vocab = packaged_visual_vocab()
    names = {i: c.lemmas[0] for i, c in enumerate(vocab.imagenet)}
    fish = {names[i] for i in word_classes("fish")}
    assert {"goldfish", "tench", "great white shark"} <= fish and "golden retriever" not in fish
    dogs = word_classes("dogs")  # the plural finds the singular's classes
    assert len(dogs) > 100 and "golden retriever" in {names[i] for i in dogs} and "goldfish" not in {
        names[i] for i in dogs}
    assert word_classes("goldfish") == (1,)  # a class's own name: that class
    # a word stands for what it mostly means: "toy" is a plaything (the teddy bear), not the toy terrier, although
    # the toy terrier's broader synset "toy dog" is also called "toy"
    toys = {names[i] for i in word_classes("toys")}
    assert "teddy" in toys and not toys & {"toy terrier", "toy poodle"}
    assert word_classes("qzxv") == () and word_classes("the") == ()


def test_hierarchy_part_is_the_mass_below_the_word():
    logits = np.full((3, IMAGENET_CLASSES), -20.0, np.float32)
    logits[0, 1] = 10.0  # a goldfish
    logits[1, 207] = 10.0  # a golden retriever
    logits[2, [1, 207]] = 10.0  # half and half
    part, share = hierarchy_part(logits, [Term(1.0, "fish")])
    np.testing.assert_allclose(part, [1.0, 0.0, 0.5], atol=1e-4)
    assert share == 1.0
    part, share = hierarchy_part(logits, [Term(1.0, "fish"), Term(-1.0, "dog"), Term(2.0, "qzxv")])
    np.testing.assert_allclose(part, [0.25, -0.25, 0.0], atol=1e-4)
    assert share == 0.5
    assert hierarchy_part(logits[:, :10], [Term(1.0, "fish")]) == (None, 0.0)  # not ImageNet's 1000 classes
    assert hierarchy_part(logits, [Term(1.0, "qzxv")]) == (None, 0.0)
    np.testing.assert_allclose(np.exp(logits - log_normaliser(logits)[:, None]).sum(1), 1.0, atol=1e-5)
    # a caller's own normaliser gives the same part
    np.testing.assert_allclose(hierarchy_part(logits, [Term(1.0, "fish")], log_norm=log_normaliser(logits))[0],
                               [1.0, 0.0, 0.5], atol=1e-4)


def test_a_head_saves_and_loads_its_word_classifier_and_shares(tmp_path):
    feats, sets = clustered(dim=16)
    torch.manual_seed(0)
    head = DeViSEHead(in_dim=16, hidden_dim=8, out_dim=4)
    head.set_word_classifier(fit_word_classifier(feats, sets, np.arange(36)))
    head.set_serving(ServedSettings(conse_mix=0.1, tag_conse_mix=0.2, unseen_conse_mix=0.9, word_mix=0.6,
                                    class_mix=0.8, unseen_class_mix=0.4), seen_words=["bird"])
    head.save_pretrained(tmp_path / "head")
    loaded = load_head(tmp_path / "head")
    assert loaded.word_vocab == ["apple", "bird", "horse", "red"]
    assert (loaded.word_mix, loaded.class_mix, loaded.unseen_class_mix) == (0.6, 0.8, 0.4)
    np.testing.assert_allclose(loaded.word_classifier.weight, head.word_classifier.weight)
    np.testing.assert_allclose(probabilities(loaded.word_classifier, feats, [1]),
                               probabilities(head.word_classifier, feats, [1]))
    # a head saved before word classifiers existed loads without one, and gives it no weight
    plain = DeViSEHead(in_dim=16, hidden_dim=8, out_dim=4)
    plain.set_serving(ServedSettings(conse_mix=0.1, tag_conse_mix=0.2, word_mix=0.6))
    plain.save_pretrained(tmp_path / "plain")
    old = load_head(tmp_path / "plain")
    assert old.word_classifier is None and old.word_mix == 0.0
