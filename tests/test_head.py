"""Unit tests for searchcore.models.head: the DeViSE head (shape, Hub-mixin round trip, embed), ConSE, blend,
classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from searchcore.errors import BundleError
from searchcore.index import unit_rows
from searchcore.models.classnames import class_phrases
from searchcore.models.conse import ConSE, blend, class_word_matrix
from searchcore.models.head import DeViSEHead
from searchcore.models.headview import HeadView
from searchcore.models.wordclass import WordClassifier
from searchcore.models.words import WordVectors
from searchcore.settings import ServedSettings


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def head() -> DeViSEHead:
    torch.manual_seed(0)
    return DeViSEHead(in_dim=12, hidden_dim=20, out_dim=6, backbone="test_resnet@random", words="synthetic-words",
                      conse_mix=0.25)


def norms(m: np.ndarray) -> np.ndarray:
    return np.linalg.norm(m, axis=1)


# ---- DeViSEHead ------------------------------------------------------------------------------------------------------
def test_forward_shape(head):
    out = head(torch.randn(5, 12))
    assert out.shape == (5, 6)
    head.eval()
    assert head(torch.randn(1, 12)).shape == (1, 6)


def test_save_pretrained_from_pretrained_round_trip(tmp_path: Path, head):
    # a few training steps so BatchNorm running statistics differ from their initial values
    head.train()
    for _ in range(3):
        head(torch.randn(16, 12) * 3 + 1)
    head.eval()
    folder = tmp_path / "head"
    head.save_pretrained(folder)
    assert (folder / "config.json").is_file()
    assert (folder / "model.safetensors").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert config["backbone"] == "test_resnet@random"
    assert config["words"] == "synthetic-words"
    assert config["conse_mix"] == 0.25
    assert (config["in_dim"], config["hidden_dim"], config["out_dim"]) == (12, 20, 6)

    loaded = DeViSEHead.from_pretrained(str(folder))
    assert isinstance(loaded, DeViSEHead)
    assert (loaded.in_dim, loaded.hidden_dim, loaded.out_dim) == (12, 20, 6)
    assert loaded.backbone == "test_resnet@random"
    assert loaded.words == "synthetic-words"
    assert loaded.conse_mix == 0.25
    loaded.eval()
    x = torch.randn(7, 12)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), head(x))


def test_the_view_of_a_saved_head_serves_as_the_head_does(tmp_path: Path, head):
    """What the engine serves (searchcore.models.headview.HeadView, no torch until an image is embedded) reads settings,
    seen words, the word classifier and a query's words as the network it was saved from, and embeds the same."""
    rng = np.random.default_rng(0)
    names = ["bird", "cat", "dog", "fish", "ocean", "sofa"]
    words = WordVectors(source="synthetic-words", words=names, vectors=rng.normal(size=(6, 6)).astype(np.float32))
    vocab = ["bird", "cat", "dog"]
    head.set_word_classifier(WordClassifier(vocab, rng.normal(size=(3, 12)).astype(np.float32),
                                            rng.normal(size=3).astype(np.float32)))
    head.set_serving(ServedSettings(conse_mix=0.2, unseen_conse_mix=0.7, seen_similarity=0.9, neighbour_mix=0.5,
                                    word_mix=0.3, class_mix=0.4, unseen_class_mix=0.6, exemplar_mix=0.1,
                                    tag_conse_mix=0.35, ood_distance=0.5), seen_words=["bird", "cats", "dog"])
    head.eval().save_pretrained(tmp_path / "head")
    view = HeadView.load(tmp_path / "head")
    assert view.settings == head.settings and view.seen_words == head.seen_words
    assert (view.in_dim, view.out_dim, view.backbone) == (12, 6, "test_resnet@random")
    assert view.word_classifier is not None and head.word_classifier is not None
    assert view.word_classifier.vocab == vocab
    np.testing.assert_array_equal(view.word_classifier.weight, head.word_classifier.weight)
    np.testing.assert_array_equal(view.word_classifier.bias, head.word_classifier.bias)
    for word in names:
        assert view.trained_on(word, words) == head.trained_on(word, words)
    terms = [(1.0, "ocean"), (-0.5, "cat"), (2.0, "sofa")]
    np.testing.assert_allclose(view.head_query(terms, words), head.head_query(terms, words), atol=1e-6)
    assert view._network is None  # nothing so far needed the network
    x = rng.normal(size=(4, 12)).astype(np.float32)
    np.testing.assert_allclose(view.embed(x), head.embed(x), atol=1e-5)
    assert not view.network.training


def test_a_view_whose_weights_went_bad_names_the_head_folder(tmp_path: Path, head):
    head.save_pretrained(tmp_path / "head")
    view = HeadView.load(tmp_path / "head")  # no word classifier: the weights are not read yet
    (tmp_path / "head" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(BundleError, match="network cannot be loaded") as caught:
        view.embed(np.zeros((1, 12), np.float32))
    assert "head" in str(caught.value) and "train_devise" in str(caught.value)


def test_embed_returns_unit_rows_and_keeps_the_mode(head):
    feats = np.random.default_rng(0).standard_normal((9, 12)).astype(np.float32)
    head.train()
    emb = head.embed(feats, batch_size=4)  # several batches, the last one short
    assert emb.shape == (9, 6) and emb.dtype == np.float32
    np.testing.assert_allclose(norms(emb), 1.0, atol=1e-5)
    assert head.training  # embed switches to eval for itself and back
    head.eval()
    with torch.no_grad():
        expected = unit_rows(head(torch.from_numpy(feats)).numpy())
    np.testing.assert_allclose(emb, expected, atol=1e-5)


def test_embed_single_row_and_empty(head):
    emb = head.embed(np.ones((1, 12), np.float32))  # eval mode, so BatchNorm accepts one row
    assert emb.shape == (1, 6)
    assert head.embed(np.zeros((0, 12), np.float32)).shape == (0, 6)


# ---- ConSE -----------------------------------------------------------------------------------------------------------
@pytest.fixture
def class_vectors() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((6, 8)).astype(np.float32) * 4


def test_conse_strongly_favoured_class_gives_its_vector(class_vectors):
    conse = ConSE(class_vectors, np.ones(6, bool), top_t=3)
    for j in range(6):
        logits = np.zeros(6)
        logits[j] = 50.0
        emb = conse.embed(logits)
        assert emb.shape == (1, 8)
        np.testing.assert_allclose(emb[0], unit_rows(class_vectors[j]), atol=1e-5)


def test_conse_is_the_probability_weighted_mean_of_the_top_t(class_vectors):
    conse = ConSE(class_vectors, np.ones(6, bool), top_t=2)
    logits = np.array([[2.0, 0.0, 1.0, -1.0, -3.0, 0.5]])
    probs = np.exp(logits[0]) / np.exp(logits[0]).sum()
    top = [0, 2]
    expected = sum(probs[i] * unit_rows(class_vectors[i]) for i in top)
    np.testing.assert_allclose(conse.embed(logits)[0], unit_rows(expected), atol=1e-5)


def test_conse_unknown_classes_never_contribute(class_vectors):
    known = np.array([True, False, True, True, False, True])
    conse = ConSE(class_vectors, known, top_t=10)
    logits = np.array([0.0, 100.0, 0.0, 3.0, 90.0, 0.0])  # the favourites have no word vector
    emb = conse.embed(logits)[0]
    probs = np.where(known, np.exp(logits - 3.0), 0.0)
    expected = unit_rows((probs[:, None] * unit_rows(class_vectors)).sum(0))
    np.testing.assert_allclose(emb, expected, atol=1e-5)
    assert float(emb @ unit_rows(class_vectors[3])) > 0.9


def test_conse_batch_of_rows_and_unit_output(class_vectors):
    conse = ConSE(class_vectors, np.ones(6, bool), top_t=4)
    logits = np.random.default_rng(2).standard_normal((5, 6))
    emb = conse.embed(logits)
    assert emb.shape == (5, 8)
    np.testing.assert_allclose(norms(emb), 1.0, atol=1e-5)
    for i in range(5):
        np.testing.assert_allclose(emb[i], conse.embed(logits[i])[0], atol=1e-6)


def test_conse_from_words_uses_the_first_known_synonym():
    words = ["tabby", "cat", "siamese", "bottle", "beer"]
    vecs = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    wv = WordVectors(source="synthetic", words=words, vectors=vecs)
    names = ["tabby, tabby cat", "Siamese cat, Siamese", "jack-o'-lantern", "beer bottle", "Zzyzx, unknown thing"]
    matrix, known = class_word_matrix(names, wv)
    np.testing.assert_array_equal(known, [True, True, False, True, False])
    np.testing.assert_allclose(matrix[0], unit_rows(vecs[0]), atol=1e-6)
    np.testing.assert_allclose(matrix[1], wv.phrase(["siamese", "cat"]), atol=1e-6)
    np.testing.assert_allclose(matrix[3], wv.phrase(["beer", "bottle"]), atol=1e-6)
    assert not matrix[2].any() and not matrix[4].any()

    conse = ConSE.from_words(names, wv, top_t=5)
    logits = np.array([0.0, 0.0, 80.0, 0.0, 90.0])  # unknown classes favoured: they must be ignored
    emb = conse.embed(logits)[0]
    known_mean = unit_rows(matrix[[0, 1, 3]].sum(0))
    np.testing.assert_allclose(emb, known_mean, atol=1e-5)


def test_conse_refuses_to_build_without_the_packaged_class_chains(monkeypatch: pytest.MonkeyPatch):
    """A damaged install (no data/visual_vocab.json) is an error that says how to fix it, not vaguer ConSE vectors."""
    from searchcore.errors import AssetSourceError
    from searchcore.models import wordnet

    def missing() -> None:
        raise AssetSourceError("visual_vocab.json is missing; regenerate it with python -m training.make_visual_vocab.")

    monkeypatch.setattr(wordnet, "load_visual_vocab", missing)
    wv = WordVectors(source="synthetic", words=["cat"], vectors=np.ones((1, 4), np.float32))
    with pytest.raises(AssetSourceError, match="make_visual_vocab"):
        ConSE.from_words(["tabby, tabby cat"] * 1000, wv)


def test_conse_refuses_a_table_where_no_class_has_a_word_vector(class_vectors):
    # with no known class every embedding would silently be the zero vector (NaN probabilities underneath)
    with pytest.raises(ValueError):
        ConSE(class_vectors, np.zeros(6, bool)).embed(np.zeros(6))


# ---- blend -----------------------------------------------------------------------------------------------------------
def test_blend_endpoints_and_middle():
    rng = np.random.default_rng(4)
    h = rng.standard_normal((3, 5)) * 2
    c = rng.standard_normal((3, 5)) * 7
    np.testing.assert_allclose(blend(h, c, 0.0), unit_rows(h), atol=1e-6)
    np.testing.assert_allclose(blend(h, c, 1.0), unit_rows(c), atol=1e-6)
    mid = blend(h, c, 0.5)
    np.testing.assert_allclose(mid, unit_rows(unit_rows(h) + unit_rows(c)), atol=1e-6)
    np.testing.assert_allclose(norms(mid), 1.0, atol=1e-6)


# ---- class names -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("tabby, tabby cat", [["tabby"], ["tabby", "cat"]]),
        ("Siamese cat, Siamese", [["siamese", "cat"], ["siamese"]]),
        ("beer bottle", [["beer", "bottle"]]),
        ("jack-o'-lantern", [["jack", "o", "lantern"]]),
        ("dining_table, board, ", [["dining", "table"], ["board"]]),
    ],
)
def test_class_phrases(description, expected):
    assert class_phrases(description) == expected


def test_unit_rows_handles_zero_rows():
    out = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_conse_embeds_in_blocks_exactly_as_at_once() -> None:
    rng = np.random.default_rng(0)
    conse = ConSE(rng.normal(size=(1000, 8)).astype(np.float32), np.ones(1000, bool), top_t=10)
    logits = rng.normal(size=(300, 1000)).astype(np.float32)
    np.testing.assert_array_equal(conse.embed(logits, block=64), conse.embed(logits))
