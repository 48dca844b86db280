"""Tests for ``python -m training.build_assets --update``: a bundle brought up to date with its photo folder.

The tiny synthetic collection (9 photos in 3 class folders) is built, then a photo is added, one rewritten with
other pixels and one deleted; the updated bundle must equal a full rebuild of the same folder (items, features,
index answers), survive an interruption with the old bundle still verifying, and keep a trained head.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _synthetic import TINY_BACKBONE, make_photos, write_word_table
from PIL import Image

from searchcore import bundle as B
from searchcore.build import update as U
from searchcore.build.write import rebuild_semantic
from searchcore.models.head import DeViSEHead, load_head
from searchcore.models.words import load_word_vectors
from training import build_assets

ADDED, CHANGED, REMOVED = "dog/dog_new.png", "cat/cat_1.png", "bottle/bottle_2.png"


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


def build(photos: Path, words: Path, out: Path) -> None:
    args = ["--collection", str(photos), "--out", str(out), "--backbone", TINY_BACKBONE, "--words", str(words),
            "--word-vocab", "40"]
    assert build_assets.main(args) == 0


def save_photo(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 255, (48, 56, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(path)


def edit_photos(photos: Path) -> None:
    """Add one photo, rewrite one with other pixels, delete one."""
    save_photo(photos / ADDED, 11)
    save_photo(photos / CHANGED, 12)
    (photos / REMOVED).unlink()


def update(bundle: Path, capsys, *extra: str) -> dict:
    assert build_assets.main(["--update", str(bundle), *extra]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(photos, words, bundle): the bundle built from the photos before they were edited."""
    photos, words = make_photos(tmp_path / "photos"), write_word_table(tmp_path / "words")
    build(photos, words, tmp_path / "bundle")
    edit_photos(photos)
    return photos, words, tmp_path / "bundle"


def assert_same_bundle(updated: Path, rebuilt: Path) -> None:
    """Same items in the same order, features and logits within 1e-5, the same answers from every photo index."""
    a, b = B.open_bundle(updated), B.open_bundle(rebuilt)
    assert [(it.id, it.path, it.label, it.caption) for it in a.items] == \
        [(it.id, it.path, it.label, it.caption) for it in b.items]
    np.testing.assert_allclose(a.features, b.features, atol=1e-5)
    np.testing.assert_allclose(a.logits, b.logits, atol=1e-5)
    for name in ("images", "semantic", "conse"):
        queries = np.asarray(b.indexes[name].get(list(range(len(b.items)))))
        mine, theirs = a.indexes[name].query(queries, 4), b.indexes[name].query(queries, 4)
        np.testing.assert_array_equal(mine.ids, theirs.ids)
        np.testing.assert_allclose(mine.distances, theirs.distances, atol=1e-5)
    assert a.tags.phrases == b.tags.phrases
    assert {k: v for k, v in a.manifest.items() if k not in ("build", "files")} == \
        {k: v for k, v in b.manifest.items() if k not in ("build", "files")}
    for item in a.items:
        assert a.image_path(item).read_bytes() == b.image_path(item).read_bytes()


def test_update_equals_a_full_rebuild(setup, tmp_path, capsys):
    photos, words, bundle = setup
    built = B.verify(bundle)["build"]
    summary = update(bundle, capsys)
    assert {k: summary[k] for k in ("added", "changed", "removed", "kept")} == \
        {"added": 1, "changed": 1, "removed": 1, "kept": 7}
    assert summary["seconds"] >= 0
    build(photos, words, tmp_path / "rebuilt")
    assert_same_bundle(bundle, tmp_path / "rebuilt")
    assert not (bundle / B.IMAGES / REMOVED).exists()
    assert not U.staging_dir(bundle).exists() and not (tmp_path / ".bundle.old").exists()
    record = B.verify(bundle)["build"]
    assert record["update"]["added"] == 1 and record["update"]["extracted"] == 2
    # the times are the update's own: its 2 photos' extraction, not the first build's 9
    assert record["images_per_second"] == pytest.approx(2 / record["extract_seconds"], rel=0.05, abs=0.02)
    assert record["extract_seconds"] != built["extract_seconds"]


def test_an_unchanged_folder_extracts_nothing(setup, capsys, monkeypatch):
    _, _, bundle = setup
    update(bundle, capsys)

    def refuse(*_args, **_kwargs):
        raise AssertionError("nothing is new: nothing should be extracted")

    monkeypatch.setattr(U, "extract_collection", refuse)
    summary = update(bundle, capsys)
    assert (summary["added"], summary["changed"], summary["removed"], summary["kept"]) == (0, 0, 0, 9)
    build_record = B.verify(bundle)["build"]
    assert build_record["update"]["extracted"] == 0
    assert "extract_seconds" not in build_record and "images_per_second" not in build_record  # no stale times


def test_an_interrupted_update_leaves_the_old_bundle_and_a_rerun_completes(setup, tmp_path, capsys, monkeypatch):
    photos, words, bundle = setup
    before = B.verify(bundle)
    real = U.extract_collection
    # one photo per chunk, stopped after the first: the update is interrupted with extraction half done
    monkeypatch.setattr(U, "extract_collection", functools.partial(real, chunk_size=1, stop_after_chunks=1))
    assert build_assets.main(["--update", str(bundle)]) == 2
    assert "stopped after 1 chunks" in capsys.readouterr().err
    assert B.verify(bundle) == before and len(B.open_bundle(bundle).items) == 9  # the old bundle, still servable
    chunks = sorted((U.staging_dir(bundle) / ".extract").glob("chunk-*.npz"))
    assert len(chunks) == 1

    extracted = []

    def resumed(backbone, *args, **kwargs):
        def counted(images, **kw):
            extracted.append(len(images))
            return real_extract(images, **kw)

        real_extract = backbone.extract
        monkeypatch.setattr(backbone, "extract", counted)
        return real(backbone, *args, **{**kwargs, "chunk_size": 1})

    monkeypatch.setattr(U, "extract_collection", resumed)
    summary = update(bundle, capsys)
    assert extracted == [1]  # only the photo the interrupted run had not reached
    assert (summary["added"], summary["changed"], summary["removed"]) == (1, 1, 1)
    build(photos, words, tmp_path / "rebuilt")
    assert_same_bundle(bundle, tmp_path / "rebuilt")


def test_a_swap_stopped_between_its_renames_is_finished_by_the_next_run(setup, capsys, monkeypatch):
    _, _, bundle = setup
    real_rename = Path.rename

    def stop_after_the_first(self: Path, target):
        if self == U.staging_dir(bundle):
            raise KeyboardInterrupt  # the old bundle is already in the trash folder
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", stop_after_the_first)
    assert build_assets.main(["--update", str(bundle)]) == 130
    assert not bundle.exists()
    monkeypatch.setattr(Path, "rename", real_rename)
    summary = update(bundle, capsys)  # the staged bundle is complete: it is taken, nothing is extracted again
    assert (summary["added"], summary["changed"], summary["removed"]) == (0, 0, 0)
    assert len(B.open_bundle(bundle).items) == 9


def test_a_head_is_kept_and_the_semantic_index_rebuilt_with_it(setup, capsys):
    _, words_dir, bundle = setup
    words = load_word_vectors(str(words_dir))
    old = B.open_bundle(bundle)
    head = DeViSEHead(in_dim=old.features.shape[1], hidden_dim=8, out_dim=16, backbone=TINY_BACKBONE).eval()
    head.save_pretrained(bundle / B.HEAD)
    fields = {k: v for k, v in old.manifest.items() if k not in ("format", "files")}
    fields["serving"] = {"class_min_prob": 0.5, "neighbour_distance": None}
    from searchcore.models.backbone import imagenet_class_names

    rebuild_semantic(bundle, words, imagenet_class_names(), head, fields=fields)
    weights = (bundle / B.HEAD / "model.safetensors").read_bytes()
    update(bundle, capsys)
    new = B.open_bundle(bundle)
    assert (bundle / B.HEAD / "model.safetensors").read_bytes() == weights
    assert new.manifest["head"] is True and new.manifest["serving"] == fields["serving"]
    assert "head/model.safetensors" in new.manifest["files"]
    expected = load_head(bundle / B.HEAD).embed(new.features)
    np.testing.assert_allclose(new.indexes["semantic"].get(list(range(len(new.items)))),
                               expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)


def test_a_missing_photo_folder_is_refused_naming_collection(setup, tmp_path, capsys):
    photos, _, bundle = setup
    shutil.rmtree(photos)
    assert build_assets.main(["--update", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert "--collection" in err and str(photos) in err
    assert B.verify(bundle)


def test_collection_points_an_update_at_a_moved_folder(setup, tmp_path, capsys):
    photos, _, bundle = setup
    moved = Path(shutil.move(photos, tmp_path / "moved"))
    summary = update(bundle, capsys, "--collection", str(moved))
    assert (summary["added"], summary["changed"], summary["removed"], summary["kept"]) == (1, 1, 1, 7)
    assert B.verify(bundle)["build"]["source"] == str(moved)


def test_update_options_are_checked(tmp_path, capsys):
    with pytest.raises(SystemExit):
        build_assets.main(["--update", str(tmp_path), "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit):
        build_assets.main(["--retrain", "--collection", str(tmp_path), "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit):
        build_assets.main(["--out", str(tmp_path / "x")])


def test_retrain_trains_a_head_after_the_update(setup, capsys):
    _, _, bundle = setup
    summary = update(bundle, capsys, "--retrain")
    assert summary["retrained"] is True and summary["added"] == 1
    new = B.open_bundle(bundle)
    assert new.head_dir is not None and new.manifest["head"] is True
    assert new.manifest["training"]["split"] and len(new.items) == 9


# ---- a kept head's figures; permissions ------------------------------------------------------------------------------
def test_a_kept_heads_card_drops_its_figures_and_evaluate_says_why_it_cannot_measure_it(setup, capsys):
    """After --update without --retrain the manifest drops the head's figures: so does head/README.md (the card
    publish uploads), which says the head was not measured again; evaluate tells that from a bundle with no head."""
    from searchcore.build.card import METRIC_NAMES
    from training import evaluate

    photos, _, bundle = setup
    update(bundle, capsys, "--retrain")
    card = (bundle / B.HEAD / "README.md").read_text(encoding="utf-8")
    assert B.verify(bundle)["metrics"] and METRIC_NAMES["text_image_p10"] in card  # a measured head, first
    save_photo(photos / "cat" / "cat_new.png", 13)

    update(bundle, capsys)
    manifest = B.verify(bundle)
    assert manifest["head"] is True and "metrics" not in manifest and "training" not in manifest
    card = (bundle / B.HEAD / "README.md").read_text(encoding="utf-8")
    assert "Not measured on the photos it serves now" in card and "python -m training.train_devise" in card
    assert not any(name in card for name in METRIC_NAMES.values()), card
    assert "Training took" not in card and "training.png" not in card and "|" not in card  # no timings, curve, table
    assert not (bundle / B.HEAD / "training.png").exists() and not (bundle / B.HEAD / B.MEASURED).exists()

    assert evaluate.main(["--bundle", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert "has a trained head but no recorded training split" in err and "train_devise" in err, err
    shutil.rmtree(bundle / B.HEAD)
    B.write_manifest(bundle, {k: v for k, v in manifest.items() if k not in ("format", "files")} | {"head": False})
    assert evaluate.main(["--bundle", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert "has no trained head to evaluate" in err and "has a trained head" not in err, err


def modes(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (and ``root``) with its permission bits, as octal text."""
    paths = [root, *root.rglob("*")]
    return {p.relative_to(root).as_posix(): oct(p.stat().st_mode & 0o777) for p in paths}


def test_a_built_and_an_updated_bundle_are_readable_by_everyone(tmp_path, capsys):
    """Files 0644 and folders 0755 under the usual umask, a kept head included even when an older build left it
    0700: another user (a service serving the bundle) must be able to read all of it."""
    import os

    old_umask = os.umask(0o022)
    try:
        photos, words = make_photos(tmp_path / "photos"), write_word_table(tmp_path / "words")
        bundle = tmp_path / "bundle"
        build(photos, words, bundle)
        expected = {path: "0o755" if (bundle / path).is_dir() else "0o644" for path in modes(bundle)}
        assert modes(bundle) == expected

        old = B.open_bundle(bundle)
        head = DeViSEHead(in_dim=old.features.shape[1], hidden_dim=8, out_dim=16, backbone=TINY_BACKBONE).eval()
        head.save_pretrained(bundle / B.HEAD)
        os.chmod(bundle / B.HEAD, 0o700)  # what tempfile.mkdtemp made of a head folder
        for path in (bundle / B.HEAD).iterdir():
            os.chmod(path, 0o600)
        fields = {k: v for k, v in old.manifest.items() if k not in ("format", "files")}
        from searchcore.models.backbone import imagenet_class_names

        rebuild_semantic(bundle, load_word_vectors(str(words)), imagenet_class_names(), head, fields=fields)
        edit_photos(photos)
        update(bundle, capsys)
        found = modes(bundle)
        assert "head" in found and "head/README.md" in found
        assert found == {path: "0o755" if (bundle / path).is_dir() else "0o644" for path in found}
    finally:
        os.umask(old_umask)


def test_a_retrained_head_is_readable_by_everyone(setup, capsys):
    import os

    old_umask = os.umask(0o022)
    try:
        _, _, bundle = setup
        update(bundle, capsys, "--retrain")
        found = modes(bundle)
        assert "head" in found and "head/model.safetensors" in found
        assert found == {path: "0o755" if (bundle / path).is_dir() else "0o644" for path in found}
    finally:
        os.umask(old_umask)
