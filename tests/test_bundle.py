"""Unit tests for searchcore.bundle (+ build.write_bundle): a tiny synthetic bundle is written, opened and corrupted.

The bundle: 9 generated photos in 3 class folders, features from a tiny random timm model, a synthetic word-vector
table in the cache format. Every corruption must be refused with a BundleError whose message names the file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _synthetic import LABELS, TINY_BACKBONE, make_photos, write_word_table

from searchcore import bundle as B
from searchcore.build.write import write_bundle
from searchcore.collection import folder_collection
from searchcore.errors import AssetSourceError, BundleError
from searchcore.models.backbones import load_backbone
from searchcore.models.words import load_word_vectors


def make_bundle(base: Path):
    """Write photos, word vectors and a bundle under ``base``; return (bundle root, collection, backbone, words)."""
    collection = folder_collection(make_photos(base / "photos"), name="tiny")
    words = load_word_vectors(str(write_word_table(base / "words")))
    backbone = load_backbone(TINY_BACKBONE)
    feats = backbone.extract([collection.path(item) for item in collection.items])
    root = write_bundle(base / "bundle", collection, feats, backbone.spec, backbone.class_names, words,
                        word_vocab=40)
    return Path(root), collection, backbone, words


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("tiny")
        mp.setenv("SEARCH_CACHE_DIR", str(base / "cache"))
        yield make_bundle(base)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def bundle_copy(built, tmp_path) -> Path:
    """A fresh copy of the pristine bundle that a test may damage."""
    return Path(shutil.copytree(built[0], tmp_path / "copy"))


def manifest_fields(root: Path) -> dict:
    manifest = json.loads((root / B.MANIFEST).read_text())
    return {k: v for k, v in manifest.items() if k not in ("format", "files")}


# ---- a good bundle ---------------------------------------------------------------------------------------------------
def test_bundle_layout_and_manifest(built):
    root, collection, backbone, words = built
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["format"] == B.BUNDLE_FORMAT
    assert manifest["backbone"] == backbone.spec == TINY_BACKBONE
    assert manifest["words"] == words.source
    assert manifest["feature_dim"] == backbone.feature_dim
    assert manifest["word_dim"] == 16
    assert manifest["num_classes"] == 1000
    assert manifest["count"] == len(collection) == 9
    assert manifest["labels"] == sorted(LABELS)
    assert manifest["semantic"] == "conse" and manifest["head"] is False
    files = manifest["files"]
    for rel in ["items.jsonl", "features.npy", "logits.npy", *(f"indexes/{n}.{ext}" for n in B.INDEX_NAMES
                                                             for ext in ("hnsw", "json"))]:
        assert rel in files, rel
        assert files[rel]["bytes"] == (root / rel).stat().st_size
        assert len(files[rel]["sha256"]) == 64
    for item in collection.items:
        assert (root / "images" / item.path).read_bytes() == collection.path(item).read_bytes()
    assert not list(root.rglob("*.tmp"))


def test_open_bundle(built):
    root, collection, backbone, _ = built
    bundle = B.open_bundle(root)
    assert bundle.root == root
    assert bundle.name == "tiny"
    assert [it.id for it in bundle.items] == list(range(9))
    assert [(it.path, it.label) for it in bundle.items] == [(it.path, it.label) for it in collection.items]
    assert bundle.features.shape == (9, backbone.feature_dim) and bundle.features.dtype == np.float32
    assert bundle.logits.shape == (9, 1000)
    assert set(bundle.indexes) == set(B.INDEX_NAMES)
    assert len(bundle.indexes["images"]) == 9 and len(bundle.indexes["semantic"]) == 9
    assert bundle.indexes["semantic"].dim == 16
    assert bundle.head_dir is None
    assert bundle.image_path(bundle.items[4]).is_file()


def test_open_bundle_accepts_a_str_path(built):
    assert len(B.open_bundle(str(built[0])).items) == 9


def test_word_index_holds_alphabetic_words_and_the_tag_index_the_tag_vocabulary(built):
    root, _, _, words = built
    bundle = B.open_bundle(root)
    phrases = bundle.tags.phrases
    assert len(bundle.indexes["tags"]) == len(phrases) == len(set(phrases))
    assert {"cat", "dog", "bottle"} <= set(phrases)  # the labels
    assert {"goldfish", "espresso", "tabby"} <= set(phrases)  # ImageNet class names the vocabulary knows
    assert "the" not in phrases and all(p.replace(" ", "").isalpha() for p in phrases)  # no function words, no tokens
    # each phrase's stored vector is the mean of its words' unit vectors
    np.testing.assert_allclose(bundle.indexes["tags"].get([phrases.index("goldfish")])[0], words.unit("goldfish"),
                               atol=1e-5)
    assert len(bundle.indexes["words"]) == 40
    assert all(words.words[i].isalpha() for i in bundle.indexes["words"]._index.get_ids_list())


def test_resolve_local_folder(built):
    assert B.resolve(built[0]) == built[0]
    assert B.resolve(str(built[0])) == built[0]


# ---- damaged bundles are refused, naming the file -----------------------------------------------------------------
def test_truncated_features_are_refused(bundle_copy: Path):
    features = bundle_copy / "features.npy"
    features.write_bytes(features.read_bytes()[:200])
    with pytest.raises(BundleError) as err:
        B.open_bundle(bundle_copy)
    assert "features.npy" in str(err.value)
    assert err.value.path == features
    assert "build_assets" in str(err.value)  # says how to rebuild


def test_features_of_the_wrong_dimension_are_refused_even_with_a_matching_checksum(bundle_copy: Path):
    features = np.load(bundle_copy / "features.npy")
    np.save(bundle_copy / "features.npy", features[:, :-1])
    B.write_manifest(bundle_copy, manifest_fields(bundle_copy))  # checksums now agree: the shape check must catch it
    B.verify(bundle_copy)
    with pytest.raises(BundleError) as err:
        B.open_bundle(bundle_copy)
    assert "features.npy" in str(err.value)
    assert str(features.shape[1]) in str(err.value)


def test_features_with_the_wrong_count_are_refused(bundle_copy: Path):
    features = np.load(bundle_copy / "features.npy")
    np.save(bundle_copy / "features.npy", features[:-1])
    B.write_manifest(bundle_copy, manifest_fields(bundle_copy))
    with pytest.raises(BundleError, match=r"features\.npy"):
        B.open_bundle(bundle_copy)


def test_missing_manifest_is_refused(bundle_copy: Path):
    (bundle_copy / "manifest.json").unlink()
    with pytest.raises(BundleError) as err:
        B.open_bundle(bundle_copy)
    assert "manifest.json" in str(err.value)
    assert str(bundle_copy) in str(err.value)


def test_manifest_that_is_not_json_is_refused(bundle_copy: Path):
    (bundle_copy / "manifest.json").write_text("{ half a manifest")
    with pytest.raises(BundleError, match=r"manifest\.json"):
        B.open_bundle(bundle_copy)


def test_manifest_of_another_format_is_refused(bundle_copy: Path):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["format"] = 99
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="99"):
        B.open_bundle(bundle_copy)


def test_altered_items_are_refused_by_checksum(bundle_copy: Path):
    items = bundle_copy / "items.jsonl"
    text = items.read_text(encoding="utf-8")
    altered = text.replace('"label": "dog"', '"label": "cow"', 1)
    assert altered != text and len(altered.encode()) == len(text.encode())  # same size: only the checksum tells
    items.write_text(altered, encoding="utf-8")
    with pytest.raises(BundleError) as err:
        B.open_bundle(bundle_copy)
    assert "items.jsonl" in str(err.value)
    assert "checksum" in str(err.value)
    assert err.value.path == items


def test_items_with_bad_ids_are_refused(bundle_copy: Path):
    items = bundle_copy / "items.jsonl"
    lines = items.read_text(encoding="utf-8").splitlines()
    items.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    B.write_manifest(bundle_copy, manifest_fields(bundle_copy))
    with pytest.raises(BundleError, match=r"items\.jsonl"):
        B.open_bundle(bundle_copy)


@pytest.mark.parametrize("name", ["images.hnsw", "semantic.hnsw", "words.json", "tags.hnsw"])
def test_missing_index_file_is_refused(bundle_copy: Path, name: str):
    (bundle_copy / "indexes" / name).unlink()
    with pytest.raises(BundleError) as err:
        B.open_bundle(bundle_copy)
    assert name in str(err.value)


def test_truncated_index_is_refused(bundle_copy: Path):
    index = bundle_copy / "indexes" / "images.hnsw"
    index.write_bytes(index.read_bytes()[:100])
    with pytest.raises(BundleError, match=r"images\.hnsw"):
        B.open_bundle(bundle_copy)


def test_truncated_logits_are_refused(bundle_copy: Path):
    logits = bundle_copy / "logits.npy"
    logits.write_bytes(logits.read_bytes()[:-10])
    with pytest.raises(BundleError, match=r"logits\.npy"):
        B.open_bundle(bundle_copy)


def test_index_of_the_wrong_dimension_is_refused(bundle_copy: Path):
    from searchcore.index import VectorIndex

    VectorIndex.build(np.random.default_rng(0).standard_normal((9, 7)).astype(np.float32)).save(
        bundle_copy / "indexes" / "semantic")
    B.write_manifest(bundle_copy, manifest_fields(bundle_copy))
    with pytest.raises(BundleError, match=r"semantic\.json"):
        B.open_bundle(bundle_copy)


def test_posting_tables_of_an_older_layout_are_refused_with_a_rebuild_hint(bundle_copy: Path):
    # layout 2 (the best-first order as positions into the id-ordered lists), as a bundle built before layout 3 has
    np.savez(bundle_copy / B.POSTINGS, version=np.asarray(2), **{"hierarchy.words": np.asarray(["cat"]),
                                                               "hierarchy.offsets": np.array([0, 1]),
                                                               "hierarchy.best": np.array([0], np.int32)})
    B.write_manifest(bundle_copy, manifest_fields(bundle_copy))
    with pytest.raises(BundleError, match=r"postings\.npz.*layout 2; this version reads layout 3") as caught:
        B.open_bundle(bundle_copy)
    assert "build_assets" in str(caught.value)  # the message says how to rebuild


def test_unchecked_open_still_catches_a_size_change(bundle_copy: Path):
    features = bundle_copy / "features.npy"
    features.write_bytes(features.read_bytes() + b"\0" * 16)
    with pytest.raises(BundleError, match=r"features\.npy"):
        B.open_bundle(bundle_copy, check_sums=False)


# ---- sources ---------------------------------------------------------------------------------------------------------
def test_missing_local_folder_is_an_asset_source_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssetSourceError) as err:
        B.open_bundle("no/such/path/really-not")
    assert isinstance(err.value, ValueError)
    assert "no/such/path/really-not" in str(err.value)


def test_hub_id_goes_to_snapshot_download_as_a_dataset(tmp_path, monkeypatch, built):
    import huggingface_hub

    calls = []

    def fake_download(**kwargs):
        calls.append(kwargs)
        return str(built[0])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    monkeypatch.chdir(tmp_path)
    bundle = B.open_bundle("someone/tiny-bundle")
    assert len(calls) == 1
    assert calls[0]["repo_id"] == "someone/tiny-bundle" and calls[0]["repo_type"] == "dataset"
    assert len(bundle.items) == 9


def test_unreachable_hub_id_is_an_asset_source_error(tmp_path, monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise OSError("no network in tests")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssetSourceError, match="nobody/nothing"):
        B.open_bundle("nobody/nothing")


def test_checksums_are_verified_once_and_again_after_a_change(bundle_copy: Path, monkeypatch: pytest.MonkeyPatch):
    from searchcore import storage

    B.open_bundle(bundle_copy)  # hashes every file and remembers it did (size, modification time)
    hashed: list[Path] = []
    real = storage.sha256
    monkeypatch.setattr(storage, "sha256", lambda path, *a: hashed.append(Path(path)) or real(path, *a))
    B.open_bundle(bundle_copy)
    assert hashed == []  # a start reads no gigabytes to verify what it verified before
    items = bundle_copy / "items.jsonl"
    text = items.read_text(encoding="utf-8")
    items.write_text(text.replace('"label": "dog"', '"label": "cow"', 1), encoding="utf-8")
    with pytest.raises(BundleError, match="checksum"):
        B.open_bundle(bundle_copy)
    assert hashed == [items]
