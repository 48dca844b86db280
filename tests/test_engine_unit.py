"""Unit tests for searchcore.serve.engine: the five searches and load_engine over a tiny synthetic bundle.

The bundle: 9 generated photos in 3 class folders, features from a tiny random timm model (passed to load_engine so
a photo given by path gets the very features stored in the bundle), and a synthetic word-vector table written in
the cache format, so the engine loads it from the manifest's ``words`` source with the real loader.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from _synthetic import LABELS, TINY_BACKBONE, tiny_bundle
from PIL import Image

from searchcore.build.write import rebuild_semantic
from searchcore.bundle import open_bundle
from searchcore.errors import AssetSourceError, BadArgumentError, BundleError, QueryError, UnknownWordError
from searchcore.index import exact_search, unit_rows
from searchcore.models.backbones import load_backbone
from searchcore.models.conse import blend
from searchcore.models.exemplars import exemplar_part, nearest_photos
from searchcore.models.head import DeViSEHead
from searchcore.models.headview import HeadView
from searchcore.models.hierarchy import hierarchy_part
from searchcore.models.propagation import collection_targets, neighbour_embedding, served_embedding
from searchcore.models.wordclass import fit_word_classifier, probabilities
from searchcore.models.words import Term, WordVectors
from searchcore.serve.engine import Hit, SearchEngine, WordHit, load_engine
from searchcore.settings import ServedSettings

WORD_VOCAB = 40


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(bundle root, collection, backbone, words) for a 9-photo bundle."""
    yield tiny_bundle(tmp_path_factory.mktemp("engine"), WORD_VOCAB)


@pytest.fixture(scope="module")
def engine(built) -> SearchEngine:
    root, _, backbone, _ = built
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEARCH_CACHE_DIR", str(root.parent / "cache"))
        return load_engine(root, backbone=backbone)  # words come from the manifest's source


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


# ---- the engine as built ------------------------------------------------------------------------------------------
def test_engine_uses_the_manifest_sources(engine, built):
    words = built[3]
    info = engine.info
    assert info.collection == "tiny"
    assert info.count == 9
    assert info.labels == sorted(LABELS)
    assert info.backbone == TINY_BACKBONE
    assert info.words == words.source
    assert info.word_dim == 16
    assert info.semantic == "conse"
    assert engine.head is None
    assert engine.words.words == words.words
    assert len(engine.class_names) == 1000


# ---- Image → Image ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("item", [0, 4, 8])
def test_similar_images_by_item_id_returns_itself_first(engine, item):
    hits = engine.similar_images(item, k=3)
    assert len(hits) == 3
    assert all(isinstance(h, Hit) for h in hits)
    assert hits[0].id == item
    assert hits[0].distance < 1e-4
    assert hits[0].label == engine.bundle.items[item].label
    assert hits[0].path == engine.bundle.image_path(engine.bundle.items[item])
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)


def test_similar_images_by_numpy_integer_id(engine):
    assert engine.similar_images(np.int64(2), k=1)[0].id == 2


@pytest.mark.parametrize("item", [1, 5, 7])
def test_similar_images_by_path_returns_itself_first(engine, built, item):
    _, collection, _, _ = built
    for source in (collection.path(collection.items[item]), str(engine.bundle.image_path(engine.bundle.items[item]))):
        hits = engine.similar_images(source, k=2)
        assert hits[0].id == item
        assert hits[0].distance < 1e-3


def test_similar_images_by_pil_image_and_array(engine):
    path = engine.bundle.image_path(engine.bundle.items[3])
    img = Image.open(path).convert("RGB")
    assert engine.similar_images(img, k=1)[0].id == 3
    assert engine.similar_images(np.asarray(img), k=1)[0].id == 3


def test_hits_carry_label_caption_and_path(engine):
    hit = engine.similar_images(6, k=1)[0]
    item = engine.bundle.items[6]
    assert (hit.id, hit.label, hit.caption) == (6, item.label, item.caption)
    assert isinstance(hit.distance, float)
    assert isinstance(hit.path, Path) and hit.path.is_file()


def test_k_larger_than_the_collection_returns_every_item(engine):
    hits = engine.similar_images(0, k=50)
    assert len(hits) == 9
    assert sorted(h.id for h in hits) == list(range(9))


@pytest.mark.parametrize("k", [0, -1, 10_000, 1001, "5", None, True, 2.5])
def test_bad_k_is_refused(engine, k):
    with pytest.raises(BadArgumentError):
        engine.similar_images(0, k=k)
    with pytest.raises(BadArgumentError):
        engine.search_images("cat", k=k)
    with pytest.raises(BadArgumentError):
        engine.similar_words("cat", k=k)
    with pytest.raises(BadArgumentError):
        engine.tag_image(0, k=k)
    with pytest.raises(BadArgumentError):
        engine.similar_images_by_class(0, 284, k=k)


@pytest.mark.parametrize("item", [-1, 9, 1000])
def test_unknown_item_id_is_refused(engine, item):
    with pytest.raises(BadArgumentError):
        engine.similar_images(item, k=3)


def test_unreadable_image_is_an_image_error(engine, tmp_path):
    from searchcore.errors import ImageError

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageError):
        engine.similar_images(bad, k=3)


# ---- Image → Image, by class -----------------------------------------------------------------------------------------
def test_similar_images_by_class_accepts_index_text_and_name(engine):
    by_int = engine.similar_images_by_class(0, 284, k=4)
    by_text = engine.similar_images_by_class(0, "284", k=4)
    by_name = engine.similar_images_by_class(0, "Siamese cat", k=4)
    by_lower = engine.similar_images_by_class(0, "siamese cat", k=4)
    assert [h.id for h in by_int] == [h.id for h in by_text] == [h.id for h in by_name] == [h.id for h in by_lower]
    assert by_int[0].id == 0
    assert by_int[0].distance < 1e-4
    assert all(isinstance(h, Hit) for h in by_int)


def test_resolve_class(engine):
    assert engine.resolve_class(284) == 284
    assert engine.resolve_class("284") == 284
    assert engine.resolve_class("284: Siamese cat, Siamese") == 284
    assert engine.resolve_class("Siamese cat") == 284
    assert engine.resolve_class("  SIAMESE CAT ") == 284
    assert engine.resolve_class(np.int64(0)) == 0
    assert engine.resolve_class(999) == 999


def test_the_class_changes_the_ranking_measure(engine):
    plain = engine.similar_images(0, k=9)
    weighted = [engine.similar_images_by_class(0, c, k=9) for c in (1, 284, 907)]
    distances = {tuple(round(h.distance, 5) for h in hits) for hits in weighted}
    assert len(distances) > 1  # re-weighting by different class rows gives different distances
    assert tuple(round(h.distance, 5) for h in plain) not in distances


@pytest.mark.parametrize("cls", [-1, 1000, "1000", "-1", "no such class", "", 2.0, None])
def test_bad_class_is_refused(engine, cls):
    with pytest.raises(BadArgumentError):
        engine.similar_images_by_class(0, cls, k=3)


def test_ambiguous_class_name_lists_candidates(engine):
    with pytest.raises(BadArgumentError, match="matches"):
        engine.similar_images_by_class(0, "terrier", k=3)


# ---- Text → Text -----------------------------------------------------------------------------------------------------
def test_similar_words_excludes_the_query_word(engine):
    hits = engine.similar_words("cat", k=5)
    assert len(hits) == 5
    assert all(isinstance(h, WordHit) for h in hits)
    assert "cat" not in [h.word for h in hits]
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    assert all(h.word.isalpha() for h in hits)


def test_similar_words_matches_exact_search(engine, built):
    words = built[3]
    ids = words.alpha_ids(WORD_VOCAB)
    query = words.unit("tiger")
    sims = unit_rows(np.asarray(words.vectors)[ids]) @ query
    ranked = [words.words[i] for i in ids[np.argsort(-sims)] if words.words[i] != "tiger"][:3]
    assert [h.word for h in engine.similar_words("Tiger", k=3)] == ranked


def test_similar_words_excludes_every_query_word(engine):
    hits = engine.similar_words("cat + dog", k=10)
    assert len(hits) == 10
    assert not {"cat", "dog"} & {h.word for h in hits}


def test_similar_words_k_above_vocabulary(engine):
    hits = engine.similar_words("cat", k=500)
    assert len(hits) == WORD_VOCAB - 1
    assert len({h.word for h in hits}) == len(hits)


def test_unknown_word_is_refused(engine):
    with pytest.raises(UnknownWordError, match="zzyzx"):
        engine.similar_words("zzyzx", k=3)
    with pytest.raises(UnknownWordError, match="zzyzx"):
        engine.search_images("cat + zzyzx", k=3)


@pytest.mark.parametrize("query", ["", "   ", "+", "cat - cat"])
def test_empty_or_cancelling_query_is_refused(engine, query):
    with pytest.raises(QueryError):
        engine.search_images(query, k=3)


# ---- Image → Tags, Text → Image --------------------------------------------------------------------------------------
def test_tag_image_returns_word_hits_from_the_tag_vocabulary(engine):
    hits = engine.tag_image(2, k=5)
    assert len(hits) == 5 == len({h.word for h in hits})
    assert all(isinstance(h, WordHit) and isinstance(h.distance, float) for h in hits)
    assert {h.word for h in hits} <= set(engine.bundle.tags.phrases)
    # no classifier lead and no neighbour rule on an untrained bundle: the nearest words, nearest first
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)


def test_tag_image_by_path_matches_by_id(engine):
    path = engine.bundle.image_path(engine.bundle.items[2])
    by_path = engine.tag_image(path, k=5)
    by_id = engine.tag_image(2, k=5)
    assert [h.word for h in by_path] == [h.word for h in by_id]
    np.testing.assert_allclose([h.distance for h in by_path], [h.distance for h in by_id], atol=1e-4)


def test_embed_image_is_a_unit_word_vector(engine):
    emb, feats = engine.embed_image(0)
    assert emb.shape == (16,) and feats.features.shape == (1, engine.backbone.feature_dim)
    assert abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5


def test_search_images_returns_hits(engine):
    hits = engine.search_images("cat sofa", k=4)
    assert len(hits) == 4
    assert all(isinstance(h, Hit) for h in hits)
    assert all(h.label in LABELS and h.path.is_file() for h in hits)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    assert len(engine.search_images("cat", k=100)) == 9


def test_the_semantic_index_holds_each_photos_own_embedding(engine):
    # what Text → Image reads: the semantic index holds the photos' word-space embeddings, the ones embed_image gives
    # for a collection photo, so a photo's own embedding finds that photo first
    emb, _ = engine.embed_image(5)
    found = engine.bundle.indexes["semantic"].query(emb, 1)
    assert found.ids[0, 0] == 5


# ---- load_engine: sources and mismatches ---------------------------------------------------------------------------
def test_load_engine_builds_everything_from_the_manifest(built):
    engine = load_engine(str(built[0]))
    assert engine.backbone.spec == TINY_BACKBONE
    assert engine.words.source == built[3].source
    assert engine.similar_images(3, k=1)[0].id == 3
    assert engine.similar_words("cat", k=3)


def test_load_engine_missing_path_is_an_asset_source_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssetSourceError) as err:
        load_engine("no/such/path/really-not")
    assert isinstance(err.value, ValueError)
    assert "no/such/path/really-not" in str(err.value)


def test_load_engine_empty_source_is_a_value_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "" must not silently mean the current folder
    with pytest.raises(AssetSourceError):
        load_engine("")


def test_load_engine_unreachable_hub_id_names_the_id(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def offline(*args, **kwargs):
        calls.append(kwargs)
        raise OSError("no network in tests")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssetSourceError, match="nobody/nothing"):
        load_engine("nobody/nothing")
    assert calls and calls[0]["repo_id"] == "nobody/nothing"


def test_load_engine_refuses_a_damaged_bundle(built, tmp_path):
    root = Path(shutil.copytree(built[0], tmp_path / "copy"))
    (root / "indexes" / "tags.hnsw").unlink()
    with pytest.raises(BundleError, match=r"tags\.hnsw"):
        load_engine(root, backbone=built[2])


def test_backbone_of_another_dimension_is_refused(built):
    other = load_backbone("test_convnext@random")
    assert other.feature_dim != built[2].feature_dim
    with pytest.raises(BundleError, match="features"):
        load_engine(built[0], backbone=other)


def test_other_word_vectors_are_refused(built):
    words = built[3]
    other = WordVectors(source="something-else", words=list(words.words), vectors=np.asarray(words.vectors))
    with pytest.raises(BundleError, match="something-else"):
        load_engine(built[0], backbone=built[2], words=other)


# ---- a bundle with a trained head ------------------------------------------------------------------------------------
def test_engine_with_a_head_blends_it_with_conse(built, tmp_path):
    root, _, backbone, words = built
    root = Path(shutil.copytree(root, tmp_path / "with-head"))
    torch.manual_seed(0)
    head = DeViSEHead(in_dim=backbone.feature_dim, hidden_dim=32, out_dim=16, backbone=backbone.spec,
                      words=words.source, conse_mix=0.5).eval()
    head.save_pretrained(root / "head")
    rebuild_semantic(root, words, backbone.class_names, head)

    engine = load_engine(root, backbone=backbone)
    assert isinstance(engine.head, HeadView) and not engine.head.network.training
    assert engine.info.semantic == "head+conse per query"
    feats = engine.bundle.features[4:5]
    # tags: the head's and ConSE's embeddings blended by tag_conse_mix (conse_mix when not given)
    expected = blend(head.embed(feats), engine.conse.embed(engine.bundle.logits[4:5]), 0.5)[0]
    np.testing.assert_allclose(engine.embed_image(4)[0], expected, atol=1e-5)
    # the semantic index holds the head's own embeddings, the conse index ConSE's
    assert engine.bundle.indexes["semantic"].query(head.embed(feats), 1).ids[0, 0] == 4
    assert engine.bundle.indexes["conse"].query(engine.conse.embed(engine.bundle.logits[4:5]), 1).ids[0, 0] == 4
    assert len(engine.search_images("dog", k=3)) == 3


def served_copy(built, folder: Path, seed: int, tag_mix: float = 0.0, word_sets: list[set[str]] | None = None,
                seen_words: list[str] | None = None, **serving) -> SearchEngine:
    """A copy of the built bundle served by a fresh head (torch seed ``seed``) with these serving settings; with
    ``word_sets`` (one per photo), a word classifier fitted on them over every photo."""
    root, _, backbone, words = built
    root = Path(shutil.copytree(root, folder))
    torch.manual_seed(seed)
    head = DeViSEHead(in_dim=backbone.feature_dim, hidden_dim=32, out_dim=16, backbone=backbone.spec,
                      words=words.source).eval()
    if word_sets is not None:
        feats = np.asarray(open_bundle(root).features)
        head.set_word_classifier(fit_word_classifier(feats, word_sets, np.arange(len(feats))))
    head.set_serving(ServedSettings(tag_conse_mix=tag_mix, **serving), seen_words=seen_words)
    head.save_pretrained(root / "head")
    rebuild_semantic(root, words, backbone.class_names, head)
    return load_engine(root, backbone=backbone)


def ranking(scores: np.ndarray) -> list[int]:
    """Photo ids by descending score, ties in id order (as the engine sorts)."""
    return [int(i) for i in np.argsort(-scores, kind="stable")]


def test_semantic_index_blends_the_head_with_the_look_alikes_words(built, tmp_path):
    words = built[3]
    engine = served_copy(built, tmp_path / "neighbours", 2, neighbour_mix=0.5)
    head = engine.head
    assert engine.head.neighbour_mix == 0.5  # travels in config.json
    feats = np.asarray(engine.bundle.features)
    labels = [it.label for it in engine.bundle.items]
    captions = [tuple(it.captions or (it.caption,)) for it in engine.bundle.items]
    targets, has = collection_targets(labels, captions, words, 0.5)
    every = np.arange(len(feats))
    found = exact_search(feats, feats, 5)  # a collection photo is its own nearest labelled photo
    want = served_embedding(head.embed(feats), neighbour_embedding(found.ids, found.distances, targets, has), 0.5)
    stored = engine.bundle.indexes["semantic"].get(every)
    np.testing.assert_allclose(stored, want, atol=1e-4)
    assert not np.allclose(stored, head.embed(feats), atol=1e-3)  # the neighbours did move the photos


def test_search_images_trusts_the_head_for_seen_words_and_conse_for_unseen_ones(built, tmp_path):
    words = built[3]
    engine = served_copy(built, tmp_path / "trust", 1, tag_mix=0.5, unseen_conse_mix=1.0, seen_words=["dog"])
    head = engine.head
    n = len(engine.bundle.items)
    head_emb, conse_emb = head.embed(engine.bundle.features), engine.conse.embed(engine.bundle.logits)

    # "dog" was trained on: the head alone ranks; "cat" was not: ConSE alone
    assert [h.id for h in engine.search_images("dog", k=n)] == ranking(head_emb @ words.unit("dog"))
    assert [h.id for h in engine.search_images("cat", k=n)] == ranking(conse_emb @ words.unit("cat"))
    # a query of both: each term votes for its own mix, (0 + 1) / 2; the head reads the unseen "cat" as its nearest
    # seen words (here "dog" alone, if it points the same way at all)
    q = words.encode("dog cat")
    head_q = head.head_query([(1.0, "dog"), (1.0, "cat")], words)
    cat_as_seen = words.unit("dog") if words.unit("dog") @ words.unit("cat") > 0 else words.unit("cat")
    expected_q = words.unit("dog") + cat_as_seen
    np.testing.assert_allclose(head_q, expected_q / np.linalg.norm(expected_q), atol=1e-5)
    mixed = 0.5 * (head_emb @ head_q) + 0.5 * (conse_emb @ q)
    hits = engine.search_images("dog cat", k=n)
    assert [h.id for h in hits] == ranking(mixed)
    np.testing.assert_allclose([h.distance for h in hits], 1 - np.sort(mixed)[::-1], atol=1e-4)


def test_head_trained_on_another_backbone_is_refused(built, tmp_path):
    root, _, backbone, words = built
    root = Path(shutil.copytree(root, tmp_path / "wrong-head"))
    head = DeViSEHead(in_dim=backbone.feature_dim, hidden_dim=8, out_dim=16, backbone="vgg16.tv_in1k",
                      words=words.source)
    head.save_pretrained(root / "head")
    rebuild_semantic(root, words, backbone.class_names, head)
    with pytest.raises(BundleError, match="vgg16"):
        load_engine(root, backbone=backbone)


def test_search_images_lets_the_word_classifier_and_the_class_hierarchy_speak_for_their_words(built, tmp_path):
    words = built[3]
    n = len(open_bundle(built[0]).items)
    # a classifier that knows "dog" and calls the photos "dog" in an order unrelated to the embedding
    word_sets = [{"dog"} if i % 3 == 1 else set() for i in range(n)]
    engine = served_copy(built, tmp_path / "probabilities", 3, word_sets=word_sets, unseen_conse_mix=1.0,
                         seen_words=["dog"], word_mix=1.0, class_mix=1.0, unseen_class_mix=1.0)
    feats = np.asarray(engine.bundle.features)
    # they travel in config.json
    assert (engine.head.word_mix, engine.head.class_mix, engine.head.unseen_class_mix) == (1.0, 1.0, 1.0)

    # "dog" is all the classifier's (word_mix 1): the ranking is its probabilities, over every photo
    p_dog = probabilities(engine.head.word_classifier, feats, [engine.head.word_vocab.index("dog")])[:, 0]
    hits = engine.search_images("dog", k=n)
    assert [h.id for h in hits] == ranking(p_dog)
    np.testing.assert_allclose([h.distance for h in hits], 1 - np.sort(p_dog)[::-1], atol=1e-5)
    # "goldfish" was never trained, but names an ImageNet class: the CNN's mass on it ranks (unseen_class_mix 1)
    mass = hierarchy_part(engine.bundle.logits, [Term(1.0, "goldfish")])[0]
    assert [h.id for h in engine.search_images("goldfish", k=n)] == ranking(mass)
    # a word neither knows keeps the embedding's rule: ConSE for an unseen word
    conse_emb = engine.conse.embed(engine.bundle.logits)
    assert [h.id for h in engine.search_images("beer", k=n)] == ranking(conse_emb @ words.unit("beer"))


def test_search_images_ranks_by_the_nearest_exemplar_of_the_word_when_the_exemplars_take_it_all(built, tmp_path):
    words = built[3]
    engine = served_copy(built, tmp_path / "exemplars", 4, unseen_conse_mix=1.0, seen_words=[], exemplar_mix=1.0)
    assert engine.head.exemplar_mix == 1.0  # it travels in config.json
    feats = np.asarray(engine.bundle.features)
    labels = [it.label for it in engine.bundle.items]
    n = len(labels)
    # served, every photo's neighbours are all the photos, itself included: computed here exactly
    found = nearest_photos(feats, np.arange(n), np.arange(n), [{lab} for lab in labels])
    label = labels[0]
    expected = exemplar_part(found, [Term(1.0, label)])[0]
    hits = engine.search_images(label, k=n)
    np.testing.assert_allclose([h.distance for h in hits], np.maximum(1 - np.sort(expected)[::-1], 0), atol=1e-5)
    # a photo of the label is its own exemplar: every one of them comes first
    assert {h.id for h in hits[: labels.count(label)]} == {i for i, lab in enumerate(labels) if lab == label}
    # a word no photo is named by keeps the embedding's rule: ConSE for an unseen word
    conse_emb = engine.conse.embed(engine.bundle.logits)
    assert [h.id for h in engine.search_images("beer", k=n)] == ranking(conse_emb @ words.unit("beer"))
