"""Known-answer tests of the exemplar part of Text → Image (searchcore.models.exemplars): each photo's cosine to its
nearest collection photo named by the query's word, and how searchcore.models.scoring.mixed_scores mixes it in."""

from __future__ import annotations

import numpy as np
import pytest

from searchcore.models.exemplars import Exemplars, exemplar_part, nearest_photos
from searchcore.models.scoring import NO_PARTS, QueryParts, mixed_scores
from searchcore.models.words import Term


@pytest.fixture
def photos() -> tuple[np.ndarray, list[set[str]]]:
    """Five photos on a circle (unit 2-d features, 0°, 10°, 60°, 90°, 180°) and the words each is named by."""
    angles = np.radians([0, 10, 60, 90, 180])
    feats = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    return feats, [{"horse"}, set(), {"horse", "brown"}, {"bird"}, {"bird"}]


def test_nearest_photos_search_only_the_reference_and_find_a_reference_photo_itself(photos):
    feats, words = photos
    found = nearest_photos(feats, np.array([1, 2]), np.array([0, 2, 3]), words, k=2)
    # photo 1 (10°): photo 0 (10° away), then photo 2 (50° away)
    assert found.ids[0].tolist() == [0, 2]
    np.testing.assert_allclose(found.sims[0], np.cos(np.radians([10, 50])), atol=1e-6)
    assert found.ids[1].tolist() == [2, 3]  # photo 2 is in the reference: itself first, at cosine 1
    np.testing.assert_allclose(found.sims[1], [1.0, np.cos(np.radians(30))], atol=1e-6)
    # only the reference's words count: photo 4 (not in the reference) is no exemplar of "bird"
    assert found.named_by("bird").tolist() == [False, False, False, True, False]
    assert found.named_by("birds").tolist() == found.named_by("bird").tolist()  # the singular form
    assert found.named_by("cat") is None


def test_exemplar_part_is_the_cosine_to_the_nearest_exemplar_of_each_word(photos):
    feats, words = photos
    found = nearest_photos(feats, np.arange(5), np.array([0, 2, 3]), words, k=2)
    score, share = exemplar_part(found, [Term(1.0, "horse")])
    assert share == 1.0
    # photo 0: itself; photo 1: photo 0 at 10°; photo 2: itself; photo 3: photo 2 at 30°; photo 4: its two nearest
    # reference photos are 3 (90°) and 2 (120°, cosine < 0, so 0)
    np.testing.assert_allclose(score, [1.0, np.cos(np.radians(10)), 1.0, np.cos(np.radians(30)), 0.0], atol=1e-6)
    # a word no reference photo is named by has no part; in a two-word query it covers half the weight
    assert exemplar_part(found, [Term(1.0, "cat")]) == (None, 0.0)
    both, share = exemplar_part(found, [Term(1.0, "horse"), Term(1.0, "cat")])
    assert share == 0.5
    np.testing.assert_allclose(both, score / 2, atol=1e-6)
    # a minus term subtracts its word's cosine
    minus, share = exemplar_part(found, [Term(1.0, "horse"), Term(-1.0, "bird")])
    bird, _ = exemplar_part(found, [Term(1.0, "bird")])
    assert share == 1.0
    np.testing.assert_allclose(minus, (score - bird) / 2, atol=1e-6)
    assert exemplar_part(None, [Term(1.0, "horse")]) == (None, 0.0)


def test_a_photo_with_no_exemplar_among_its_nearest_photos_scores_zero():
    found = Exemplars(np.array([[0, -1], [1, -1]]), np.array([[0.9, 0.0], [0.8, 0.0]], np.float32),
                      [{"dog"}, {"cat"}])
    score, _ = exemplar_part(found, [Term(1.0, "dog")])
    np.testing.assert_allclose(score, [0.9, 0.0])


def test_mixed_scores_give_the_exemplars_their_share_of_the_whole_score():
    cosine = np.array([0.9, 0.1, 0.5])
    near = np.array([0.0, 1.0, 0.5])
    assert np.array_equal(mixed_scores(cosine, NO_PARTS, 0.5, 0.5, 0.5, 1.0), cosine)  # no part: the cosine
    parts = QueryParts((None, 0.0), (None, 0.0), (None, 0.0), (near, 1.0))
    np.testing.assert_allclose(mixed_scores(cosine, parts, 0, 0, 0, 1.0), near)
    np.testing.assert_allclose(mixed_scores(cosine, parts, 0, 0, 0, 0.25), 0.75 * cosine + 0.25 * near)
    np.testing.assert_allclose(mixed_scores(cosine, parts, 0, 0, 0, 0.0), cosine)
    # a part covering half of the query's weight takes half its share
    half = QueryParts((None, 0.0), (None, 0.0), (None, 0.0), (near / 2, 0.5))
    np.testing.assert_allclose(mixed_scores(cosine, half, 0, 0, 0, 1.0), 0.5 * cosine + near / 2)
    # after the word classifier's own share
    words = np.array([0.2, 0.4, 0.6])
    with_words = QueryParts((words, 1.0), (None, 0.0), (None, 0.0), (near, 1.0))
    np.testing.assert_allclose(mixed_scores(cosine, with_words, 0.5, 0, 0, 0.5),
                               0.5 * (0.5 * cosine + 0.5 * words) + 0.5 * near)
