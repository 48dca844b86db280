"""Unit tests for searchcore.models.words: query parsing, WordVectors on a synthetic vocabulary, and the three
loaders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from searchcore.errors import AssetSourceError, QueryError, UnknownWordError
from searchcore.models.words import Term, WordVectors, load_word_vectors, parse_query

VOCAB = ["the", ",", "cat", ".", "dog", "1999", "sofa", "u.s.", "bottle", "caf\u00e9", "mid-1990s", "a", "b"]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def vectors() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((len(VOCAB), 8)).astype(np.float32)


@pytest.fixture
def wv(vectors) -> WordVectors:
    return WordVectors(source="synthetic", words=list(VOCAB), vectors=vectors)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(unit(a) @ unit(b))


# ---- parse_query ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cat sofa", [(1.0, "cat"), (1.0, "sofa")]),
        ("cat + sofa - dog", [(1.0, "cat"), (1.0, "sofa"), (-1.0, "dog")]),
        ("2:cat", [(2.0, "cat")]),
        ("0.5:cat -dog", [(0.5, "cat"), (-1.0, "dog")]),
        ("  CAT  ", [(1.0, "cat")]),
        ("Cat Sofa", [(1.0, "cat"), (1.0, "sofa")]),
        ("cat - 2:dog", [(1.0, "cat"), (-2.0, "dog")]),
        ("cat, sofa", [(1.0, "cat"), (1.0, "sofa")]),
        ("cat \u2212 dog", [(1.0, "cat"), (-1.0, "dog")]),
    ],
)
def test_parse_query(text, expected):
    terms = parse_query(text)
    assert [(t.weight, t.word) for t in terms] == expected
    assert all(isinstance(t, Term) for t in terms)


@pytest.mark.parametrize("text", ["", "   ", "\t\n", "+", "-", "+ -", ":"])
def test_parse_query_refuses_empty_queries(text):
    with pytest.raises(QueryError):
        parse_query(text)


def test_query_error_is_a_value_error():
    assert issubclass(QueryError, ValueError)
    assert issubclass(UnknownWordError, QueryError)
    assert issubclass(UnknownWordError, KeyError)


# ---- WordVectors ---------------------------------------------------------------------------------------------------
def test_lookup_is_case_insensitive(wv, vectors):
    assert "CAT" in wv and "cat" in wv and "zebra" not in wv
    assert wv.id("Cat") == 2
    np.testing.assert_array_equal(wv.vector("CAT"), vectors[2])
    assert len(wv) == len(VOCAB) and wv.dim == 8


def test_unknown_word_names_the_word(wv):
    with pytest.raises(UnknownWordError) as err:
        wv.vector("zebra")
    assert "zebra" in str(err.value)
    assert err.value.word == "zebra"
    assert not str(err.value).startswith("'\"")  # KeyError's quoting must not wrap the message


def test_unknown_word_in_a_query_names_the_word(wv):
    with pytest.raises(UnknownWordError, match="platypus"):
        wv.encode("cat + platypus")


def test_encode_is_unit_norm(wv):
    for query in ["cat", "cat sofa", "cat + sofa - dog", "2:cat", "0.5:cat -dog", "CAT"]:
        assert abs(float(np.linalg.norm(wv.encode(query))) - 1.0) < 1e-5


def test_encode_is_the_normalised_sum_of_unit_vectors(wv, vectors):
    expected = unit(unit(vectors[2]) + unit(vectors[6]) - unit(vectors[4]))
    np.testing.assert_allclose(wv.encode("cat + sofa - dog"), expected, atol=1e-5)
    np.testing.assert_allclose(wv.encode("cat sofa"), unit(unit(vectors[2]) + unit(vectors[6])), atol=1e-5)


def test_each_word_counts_by_its_weight_not_its_norm(vectors):
    scaled = vectors.copy()
    scaled[2] *= 100.0  # a frequent word with a long vector must not dominate the average
    wv = WordVectors(source="synthetic", words=list(VOCAB), vectors=scaled)
    emb = wv.encode("cat sofa")
    assert abs(cos(emb, vectors[2]) - cos(emb, vectors[6])) < 1e-5


def test_a_minus_a_is_a_query_error(wv):
    with pytest.raises(QueryError):
        wv.encode("cat - cat")
    with pytest.raises(QueryError):
        wv.encode("0:cat")


def test_weights_matter(wv, vectors):
    a, b = vectors[11], vectors[12]
    weighted, plain = wv.encode("2:a + b"), wv.encode("a + b")
    assert cos(weighted, a) > cos(plain, a)
    assert cos(weighted, b) < cos(plain, b)


def test_phrase_is_the_mean_of_unit_vectors(wv, vectors):
    np.testing.assert_allclose(wv.phrase("cat sofa"), unit(unit(vectors[2]) + unit(vectors[6])), atol=1e-5)
    np.testing.assert_allclose(wv.phrase(["cat", "sofa"]), wv.phrase("cat sofa"), atol=1e-6)


def test_alpha_ids_keep_only_alphabetic_words_in_frequency_order(wv):
    ids = wv.alpha_ids()
    assert ids.dtype == np.int64
    assert [VOCAB[i] for i in ids] == ["the", "cat", "dog", "sofa", "bottle", "a", "b"]
    assert [VOCAB[i] for i in wv.alpha_ids(3)] == ["the", "cat", "dog"]


def test_words_and_vectors_must_agree():
    with pytest.raises(AssetSourceError):
        WordVectors(source="synthetic", words=["a", "b"], vectors=np.zeros((3, 4), np.float32))


# ---- loaders ---------------------------------------------------------------------------------------------------------
def write_cache(folder: Path, words: list[str], vectors: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    np.save(folder / "vectors.npy", vectors)
    (folder / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    return folder


def write_glove_text(path: Path, words: list[str], vectors: np.ndarray) -> Path:
    lines = [w + " " + " ".join(repr(float(x)) for x in row) for w, row in zip(words, vectors, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_sentence_transformers(folder: Path, words: list[str], vectors: np.ndarray) -> Path:
    import torch

    emb = folder / "0_WordEmbeddings"
    emb.mkdir(parents=True)
    (emb / "whitespacetokenizer_config.json").write_text(json.dumps({"vocab": words, "do_lower_case": False}))
    torch.save({"emb_layer.weight": torch.from_numpy(vectors.copy())}, emb / "pytorch_model.bin")
    (folder / "modules.json").write_text("[]")
    return folder


@pytest.fixture
def alpha_vocab() -> list[str]:
    return ["the", "cat", "dog", "sofa", "bottle", "a", "b", "zebra"]


def test_load_cache_folder(tmp_path, alpha_vocab):
    vecs = np.random.default_rng(1).standard_normal((len(alpha_vocab), 6)).astype(np.float32)
    folder = write_cache(tmp_path / "cached", alpha_vocab, vecs)
    wv = load_word_vectors(str(folder))
    assert wv.words == alpha_vocab
    assert wv.source == str(folder)  # the manifest records this string; the engine reloads from it
    np.testing.assert_array_equal(np.asarray(wv.vectors), vecs)
    assert wv.vector("zebra").dtype == np.float32


def test_three_formats_give_the_same_vectors(tmp_path, cache_dir, alpha_vocab):
    vecs = np.random.default_rng(2).standard_normal((len(alpha_vocab), 6)).astype(np.float32)
    cached = load_word_vectors(str(write_cache(tmp_path / "cached", alpha_vocab, vecs)))
    glove = load_word_vectors(str(write_glove_text(tmp_path / "glove.6B.6d.txt", alpha_vocab, vecs)))
    st = load_word_vectors(str(write_sentence_transformers(tmp_path / "st", alpha_vocab, vecs)))
    for wv in (cached, glove, st):
        assert wv.words == alpha_vocab
        assert wv.dim == 6
        np.testing.assert_allclose(np.asarray(wv.vectors), vecs, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(wv.encode("cat - dog"), cached.encode("cat - dog"), atol=1e-6)
    # the conversions were cached under SEARCH_CACHE_DIR, nowhere else
    converted = sorted(p.parent for p in cache_dir.rglob("vectors.npy"))
    assert len(converted) == 2
    assert all(cache_dir in p.parents for p in converted)


def test_converted_cache_is_reused(tmp_path, cache_dir, alpha_vocab):
    vecs = np.random.default_rng(3).standard_normal((len(alpha_vocab), 4)).astype(np.float32)
    glove = write_glove_text(tmp_path / "g.txt", alpha_vocab, vecs)
    load_word_vectors(str(glove))
    (cached,) = list(cache_dir.rglob("vectors.npy"))
    mtime = cached.stat().st_mtime_ns
    again = load_word_vectors(str(glove))
    assert cached.stat().st_mtime_ns == mtime
    assert again.words == alpha_vocab


def test_sentence_transformers_embedding_folder_directly(tmp_path, alpha_vocab):
    vecs = np.random.default_rng(4).standard_normal((len(alpha_vocab), 5)).astype(np.float32)
    root = write_sentence_transformers(tmp_path / "st", alpha_vocab, vecs)
    wv = load_word_vectors(str(root / "0_WordEmbeddings"))
    np.testing.assert_allclose(np.asarray(wv.vectors), vecs, rtol=1e-6)


@pytest.mark.parametrize("source", ["definitely not a source", "glove-7b-13d", "nothing?here"])
def test_unknown_source_is_an_asset_source_error(tmp_path, monkeypatch, source):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssetSourceError) as err:
        load_word_vectors(source)
    assert isinstance(err.value, ValueError)
    assert "glove-6b-50d" in str(err.value)  # says what to pass instead


def test_unreachable_hub_id_is_an_asset_source_error(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def offline(*args, **kwargs):
        calls.append(kwargs)
        raise OSError("no network in tests")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssetSourceError, match="nobody/nothing"):
        load_word_vectors("nobody/nothing")
    assert calls and calls[0]["repo_id"] == "nobody/nothing"


def test_empty_source_is_an_asset_source_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssetSourceError):
        load_word_vectors("")


def test_folder_in_no_known_layout_is_an_asset_source_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AssetSourceError, match="empty"):
        load_word_vectors(str(empty))


def test_damaged_cache_is_an_asset_source_error(tmp_path, alpha_vocab):
    vecs = np.zeros((len(alpha_vocab), 4), np.float32)
    folder = write_cache(tmp_path / "cached", alpha_vocab, vecs)
    (folder / "vectors.npy").write_bytes(b"garbage, not numpy")
    with pytest.raises(AssetSourceError, match=r"vectors\.npy"):
        load_word_vectors(str(folder))


def test_cache_with_wrong_vocabulary_length_is_an_asset_source_error(tmp_path, alpha_vocab):
    folder = write_cache(tmp_path / "cached", alpha_vocab, np.zeros((len(alpha_vocab) + 2, 4), np.float32))
    with pytest.raises(AssetSourceError):
        load_word_vectors(str(folder))
