"""A query made of a photo and words ("this photo, but green"): SearchEngine.search_images_by_photo_and_words.

Known answers on a tiny synthetic bundle (9 generated photos, a tiny random backbone, a synthetic word table, heads
with chosen settings), each score written out from its definition: the photo is one more term of weight 1, on the
head's side and on ConSE's; it votes for ConSE's share as a word does; the word signals speak only for the words, so
the photo halves a one-word query's share of them. Then the real offline bundle: a photo and a colour word rank the
photos that are both (that colour, and the photo's kind) above those that are only one, which neither the photo
nor the words do alone; and the bad inputs, each with a message that says what to do.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from _synthetic import LABELS, make_photos, tiny_bundle, write_tiny_clip, write_word_table
from PIL import Image

from searchcore.build.write import rebuild_semantic
from searchcore.bundle import open_bundle
from searchcore.errors import BadArgumentError, ImageError, QueryError, UnknownWordError
from searchcore.index import unit_rows
from searchcore.models.exemplars import exemplar_part, nearest_photos
from searchcore.models.head import DeViSEHead
from searchcore.models.words import Term
from searchcore.serve.engine import SearchEngine, load_engine

WORD_VOCAB = 40


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(bundle root, collection, backbone, words) for a 9-photo bundle without a head (ConSE serves)."""
    yield tiny_bundle(tmp_path_factory.mktemp("photo-words"), WORD_VOCAB)


def load_word_vectors_for(base: Path):
    from searchcore.models.words import load_word_vectors

    return load_word_vectors(str(write_word_table(base / "words")))


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def conse_engine(built) -> SearchEngine:
    return load_engine(built[0], backbone=built[2])


def served(built, folder: Path, seed: int, **settings) -> SearchEngine:
    """A copy of the bundle served by a fresh head (torch seed ``seed``) with these settings (seen words: dog)."""
    root, _, backbone, words = built
    root = Path(shutil.copytree(root, folder))
    torch.manual_seed(seed)
    # the settings as constructor arguments: config.json records them, and the engine serves what it reads there
    head = DeViSEHead(in_dim=backbone.feature_dim, hidden_dim=32, out_dim=16, backbone=backbone.spec,
                      words=words.source, seen_words=["dog"], **settings).eval()
    head.save_pretrained(root / "head")
    rebuild_semantic(root, words, backbone.class_names, head)
    return load_engine(root, backbone=backbone)


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def assert_answer(hits, scores: np.ndarray) -> None:
    """The engine's hits are every photo, each at distance 1 − its score in ``scores``, nearest first (photos whose
    scores tie may come in either order: float rounding decides)."""
    assert sorted(h.id for h in hits) == list(range(len(scores)))
    distances = np.array([h.distance for h in hits])
    np.testing.assert_allclose(distances, np.maximum(1 - scores[[h.id for h in hits]], 0), atol=1e-4)
    assert np.all(np.diff(distances) >= -1e-5), distances


def new_photo(folder: Path) -> Path:
    """A photo that is not in the collection (noise unlike the generated ones)."""
    folder.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(7).integers(0, 255, (40, 40, 3)).astype(np.uint8)
    Image.fromarray(arr).save(folder / "new.png")
    return folder / "new.png"


# ---- known answers on tiny data --------------------------------------------------------------------------------------
def test_without_a_head_the_photo_joins_the_words_in_conse_space(conse_engine, built):
    words, n = built[3], 9
    rows = np.asarray(conse_engine.bundle.vectors("conse", np.arange(n)))
    for photo in (4, built[1].path(built[1].items[4])):  # a collection item (stored row) and the same photo's file
        # stored row, or the photo's logits through ConSE: the same place
        place = rows[4] if isinstance(photo, int) else conse_engine.conse.embed(
            conse_engine.features(photo).logits)[0]
        query = unit(words.unit("cat") - 2 * words.unit("dog") + place)
        assert_answer(conse_engine.search_images_by_photo_and_words(photo, "cat - 2:dog", n), rows @ query)


def test_with_a_head_each_side_adds_the_photo_and_the_photo_votes_for_conses_share(built, tmp_path):
    engine = served(built, tmp_path / "mix", 1, conse_mix=0.2, unseen_conse_mix=0.8)
    words, head, n = built[3], engine.head, 9
    ids = np.arange(n)
    semantic, conse = engine.bundle.vectors("semantic", ids), engine.bundle.vectors("conse", ids)
    # "dog" is a seen word (ConSE's share 0.2), "cat" is not (0.8); the photo, like the collection, votes 0.2
    head_side = unit(head.head_query([(1.0, "dog")], words) + 2 * head.head_query([(1.0, "cat")], words)
                     + semantic[2])
    conse_side = unit(words.unit("dog") + 2 * words.unit("cat") + conse[2])
    mix = (1 * 0.2 + 2 * 0.8 + 1 * 0.2) / 4
    expected = (1 - mix) * (semantic @ head_side) + mix * (conse @ conse_side)
    assert_answer(engine.search_images_by_photo_and_words(2, "dog + 2:cat", n), expected)
    # a photo with no words: the photo's own place on each side, and its own vote: itself first
    alone = engine.search_images_by_photo_and_words(2, "", n)
    assert_answer(alone, 0.8 * (semantic @ semantic[2]) + 0.2 * (conse @ conse[2]))
    assert alone[0].id == 2 and alone[0].distance < 1e-4
    # words with no photo are plain Text → Image, to the last digit
    assert engine.search_images_by_photo_and_words(None, "dog + 2:cat", n) == engine.search_images("dog + 2:cat", n)


def test_a_photo_unlike_the_collection_is_placed_by_conse_and_votes_for_the_unseen_share(built, tmp_path):
    # every photo not in the collection is unlike it (ood_distance 0), the collection's own photos are not
    engine = served(built, tmp_path / "unseen", 2, conse_mix=0.0, unseen_conse_mix=0.6, ood_distance=0.0)
    words, head, n = built[3], engine.head, 9
    photo = new_photo(tmp_path / "new")
    placed = engine.query_photo(photo)
    assert placed.unseen
    np.testing.assert_allclose(placed.head, placed.conse, atol=1e-6)  # no guess of the head's: ConSE's place
    ids = np.arange(n)
    semantic, conse = engine.bundle.vectors("semantic", ids), engine.bundle.vectors("conse", ids)
    mix = (1 * 0.0 + 1 * 0.6) / 2  # "dog" is seen (share 0), the photo unseen (0.6)
    expected = ((1 - mix) * (semantic @ unit(head.head_query([(1.0, "dog")], words) + placed.conse))
                + mix * (conse @ unit(words.unit("dog") + placed.conse)))
    assert_answer(engine.search_images_by_photo_and_words(photo, "dog", n), expected)
    # the same photo's file from the collection is like it: the head places it, with the trained share
    known = engine.query_photo(built[1].path(built[1].items[0]))
    assert not known.unseen
    np.testing.assert_allclose(known.head, head.embed(engine.bundle.features[0:1])[0], atol=1e-5)


def test_the_word_signals_speak_for_the_words_only_so_the_photo_lowers_their_share(built, tmp_path):
    # the exemplars take the whole score of the words they know; ConSE the whole embedding side
    engine = served(built, tmp_path / "exemplars", 3, conse_mix=1.0, unseen_conse_mix=1.0, exemplar_mix=1.0)
    words, n = built[3], 9
    feats = np.asarray(engine.bundle.features)
    labels = [it.label for it in engine.bundle.items]
    conse = engine.bundle.vectors("conse", np.arange(n))
    found = nearest_photos(feats, np.arange(n), np.arange(n), [{lab} for lab in labels])
    exemplar = exemplar_part(found, [Term(1.0, "cat")])[0]
    # the words alone: the exemplars are the score
    assert_answer(engine.search_images("cat", n), exemplar)
    # with a photo, "cat" is half the query's weight: the exemplars take half, the cosine to the query the rest
    expected = 0.5 * (conse @ unit(words.unit("cat") + conse[7])) + 0.5 * exemplar
    assert_answer(engine.search_images_by_photo_and_words(7, "cat", n), expected)
    # "2:cat" weighs 2 of the query's 3: the exemplars take 2/3 of the score
    expected = (1 / 3) * (conse @ unit(2 * words.unit("cat") + conse[7])) + (2 / 3) * exemplar
    assert_answer(engine.search_images_by_photo_and_words(7, "2:cat", n), expected)


def test_a_visitors_collection_is_scored_by_the_same_rule(built, tmp_path, monkeypatch):
    from searchcore.serve.uploads import Candidate

    engine = served(built, tmp_path / "visitor", 4, conse_mix=0.3, unseen_conse_mix=0.7)
    collection = built[1]
    monkeypatch.setenv("SEARCH_MY_MAX_PHOTOS", "20")
    store = engine.collection_store(root=tmp_path / "store")
    try:
        with store.using("visitor", create=True) as mine:
            photos = [Candidate(Path(it.path).name, it.label, collection.path(it).read_bytes())
                      for it in collection.items]
            assert engine.add_images(mine, photos, train=False).added == 9  # served head, no own head
            photo = collection.path(collection.items[5])
            own = engine.search_images_by_photo_and_words(photo, "cat - dog", 9, collection=mine)
            bundle = engine.search_images_by_photo_and_words(photo, "cat - dog", 9)
            # the same photos, the same head, no word signals: the same answer
            assert [h.id for h in own] == [h.id for h in bundle]
            np.testing.assert_allclose([h.distance for h in own], [h.distance for h in bundle], atol=1e-4)
            assert {h.label for h in own} <= set(LABELS)
    finally:
        store.close()


def test_a_clip_bundle_adds_the_photos_image_embedding_to_the_words_text_embeddings(tmp_path, monkeypatch):
    from training import build_assets

    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    checkpoint = write_tiny_clip(tmp_path / "tiny-clip")
    photos, words = make_photos(tmp_path / "photos"), write_word_table(tmp_path / "words")
    out = tmp_path / "bundle"
    assert build_assets.main(["--collection", str(photos), "--out", str(out), "--backbone", f"clip:{checkpoint}",
                              "--words", str(words), "--word-vocab", str(WORD_VOCAB)]) == 0
    engine = load_engine(out)
    clip = engine.clip
    assert clip is not None
    rows = np.asarray(open_bundle(out).features)
    text = clip.embed_phrases(["cat", "sofa"])
    query = unit(text[0] - 2 * text[1] + rows[3])
    hits = engine.search_images_by_photo_and_words(3, "cat - 2:sofa", 9)
    assert_answer(hits, rows @ query)
    image = photos / "dog" / "dog_1.png"
    photo_alone = engine.search_images_by_photo_and_words(image, None, 9)
    assert_answer(photo_alone, rows @ unit_rows(clip.extract([image]).features)[0])


# ---- bad input -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("query", ["", "   ", None])
def test_no_photo_and_no_words_is_refused_saying_to_give_one(conse_engine, query):
    with pytest.raises(QueryError, match="Give a photo, some words, or both"):
        conse_engine.search_images_by_photo_and_words(None, query, 5)


def test_an_unknown_word_beside_a_photo_is_named(conse_engine):
    with pytest.raises(UnknownWordError, match="'qwzxv' is not in the vocabulary"):
        conse_engine.search_images_by_photo_and_words(0, "cat + qwzxv", 5)


def test_an_unreadable_photo_is_an_image_error(conse_engine, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all" * 10)
    with pytest.raises(ImageError):
        conse_engine.search_images_by_photo_and_words(str(bad), "cat", 5)
    with pytest.raises(BadArgumentError, match="no item 99"):
        conse_engine.search_images_by_photo_and_words(99, "cat", 5)


@pytest.mark.parametrize("k", [0, 1001, 2.5, "5", None, True])
def test_a_bad_k_is_refused(conse_engine, k):
    with pytest.raises(BadArgumentError, match="whole number from 1 to"):
        conse_engine.search_images_by_photo_and_words(0, "cat", k)


@pytest.mark.parametrize("query", [5, ["cat"]])
def test_words_that_are_not_text_are_refused(conse_engine, query):
    with pytest.raises(QueryError, match="must be text"):
        conse_engine.search_images_by_photo_and_words(0, query, 5)  # type: ignore[arg-type]


def test_a_query_that_is_only_signs_is_refused_even_with_a_photo(conse_engine):
    with pytest.raises(QueryError, match="No words found"):
        conse_engine.search_images_by_photo_and_words(0, "+ -", 5)


# ---- the real offline bundle -----------------------------------------------------------------------------------------
COLOURS = {"red", "green", "yellow", "blue", "white", "black", "brown", "purple", "orange", "pink"}
# (the photo, by its caption; a colour word; the kind of thing the photo shows, by the collection's label)
CASES = [("A red apple.", "green", "fruit"), ("A red apple.", "yellow", "fruit"),
         ("A yellow flower.", "red", "flowers"), ("A ripe, red tomato!", "green", "vegetables")]


def colours(caption: str) -> set[str]:
    return set(re.findall(r"[a-z]+", caption.lower())) & COLOURS


def both_and_one(engine, colour: str, kind: str) -> tuple[set[int], set[int]]:
    """Photos that are ``colour`` and of ``kind``, and those that are only one: ``colour`` but of another kind, or of
    ``kind`` but of another colour. The captions say the colours, the labels the kind (a photo whose caption names no
    colour is in neither)."""
    items = engine.bundle.items
    both = {i for i, it in enumerate(items) if it.label == kind and colour in colours(it.caption)}
    one = {i for i, it in enumerate(items)
           if (it.label != kind and colour in colours(it.caption))
           or (it.label == kind and colours(it.caption) and colour not in colours(it.caption))}
    return both, one


def orders_both_first(hits, both: set[int], one: set[int]) -> bool:
    rank = {h.id: r for r, h in enumerate(hits)}
    return max(rank[i] for i in both) < min(rank[i] for i in one)


@pytest.mark.parametrize(("caption", "colour", "kind"), CASES)
def test_a_photo_and_a_colour_rank_what_is_both_above_what_is_one(offline_engine, caption, colour, kind):
    engine = offline_engine
    items = engine.bundle.items
    item = next(i for i, it in enumerate(items) if it.caption == caption)
    both, one = both_and_one(engine, colour, kind)
    assert both and len(one) >= 4, (both, one)  # a claim about several photos, not one
    n = len(items)
    for photo in (item, str(engine.bundle.image_path(items[item]))):  # the collection's item, and its file
        hits = engine.search_images_by_photo_and_words(photo, colour, n)
        assert orders_both_first(hits, both, one), [(h.caption, h.label) for h in hits[:10]]


def test_neither_the_photo_nor_the_words_alone_do_it(offline_engine):
    """The combination is what ranks them: the photo alone (its kind, any colour) never orders them so in these
    cases, the words alone (the colour, any kind) in at most one of them."""
    engine = offline_engine
    n = len(engine.bundle.items)
    photo_alone = words_alone = 0
    for caption, colour, kind in CASES:
        item = next(i for i, it in enumerate(engine.bundle.items) if it.caption == caption)
        both, one = both_and_one(engine, colour, kind)
        photo_alone += orders_both_first(engine.search_images_by_photo_and_words(item, "", n), both, one)
        words_alone += orders_both_first(engine.search_images(colour, n), both, one)
    assert photo_alone == 0 and words_alone <= 1, (photo_alone, words_alone)


def test_any_photo_with_a_word_finds_that_word_among_the_photos_kind(offline_engine):
    """scikit-image's espresso (not in the collection: placed by ConSE) with 'red': red food, the page's example."""
    from searchcore.serve.page import sample_photos

    found = sample_photos(["coffee.png"])
    if not found:
        pytest.skip("scikit-image's photos are not installed")
    assert offline_engine.query_photo(found[0]).unseen
    hits = offline_engine.search_images_by_photo_and_words(found[0], "red", 5)
    food = {"fruit", "vegetables", "food"}
    assert sum(h.label in food and "red" in colours(h.caption) for h in hits) >= 2, [h.caption for h in hits]
