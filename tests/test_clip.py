"""CLIP bundles (searchcore.models.clip): a tiny random CLIP saved to a folder, loaded by the code that loads a Hub one.

The checkpoint is built from ``CLIPConfig`` with a character-level tokenizer (tests/_synthetic.write_tiny_clip);
the bundle is built by ``python -m training.build_assets --backbone clip:FOLDER`` over the 9 synthetic photos.
Hub ids are checked at the boundary: ``snapshot_download`` is replaced and its exact arguments asserted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from _synthetic import LABELS, make_photos, write_tiny_clip, write_word_table
from PIL import Image

from searchcore import bundle as B
from searchcore.errors import AssetSourceError, BadArgumentError, BundleError, ImageError, QueryError
from searchcore.index import exact_search, unit_rows
from searchcore.models.backbones import load_backbone
from searchcore.models.clip import DEFAULT_CLIP, HUB_FILES, PROMPT, ClipBackbone, load_clip_backbone
from searchcore.models.words import parse_query
from searchcore.serve.engine import Hit, WordHit, load_engine

WORD_VOCAB = 40


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture(scope="module")
def net(checkpoint) -> ClipBackbone:
    return load_backbone(f"clip:{checkpoint}")


@pytest.fixture(scope="module")
def built(tmp_path_factory, checkpoint):
    """(bundle root, photos folder, words folder): a CLIP bundle built by the CLI, as a user would."""
    from training import build_assets

    base = tmp_path_factory.mktemp("clip-bundle")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEARCH_CACHE_DIR", str(base / "cache"))
        photos, words = make_photos(base / "photos"), write_word_table(base / "words")
        out = base / "bundle"
        assert build_assets.main(["--collection", str(photos), "--out", str(out), "--backbone", f"clip:{checkpoint}",
                                  "--words", str(words), "--word-vocab", str(WORD_VOCAB)]) == 0
    return out, photos, words


@pytest.fixture(scope="module")
def engine(built, net):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEARCH_CACHE_DIR", str(built[0].parent / "cache"))
        return load_engine(built[0], backbone=net)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


def _photo(built, label: str = "cat", i: int = 1) -> Path:
    return built[1] / label / f"{label}_{i}.png"


# ---- the model -------------------------------------------------------------------------------------------------
def test_a_local_folder_loads_as_a_clip_backbone(net, checkpoint):
    assert isinstance(net, ClipBackbone)
    assert net.spec == f"clip:{checkpoint}"
    assert net.feature_dim == 16 and net.num_classes == 1000
    assert net.model.training is False


def test_image_and_text_embeddings_share_one_unit_space(net, built):
    feats = net.extract([_photo(built, "cat"), _photo(built, "dog"), _photo(built, "bottle")])
    assert feats.features.shape == (3, 16) and feats.logits.shape == (3, 1000)
    np.testing.assert_allclose(np.linalg.norm(feats.features, axis=1), 1.0, atol=1e-5)
    text = net.embed_texts(["a photo of a cat.", "dog", "a bottle of wine on a table"])
    assert text.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    classes = net.classifier_weights()
    assert classes.shape == (1000, 16)
    # the logits are CLIP's zero-shot classifier: scaled cosines between the photo and each class's prompt
    np.testing.assert_allclose(feats.logits, net.logit_scale * feats.features @ classes.T, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(classes[284], net.embed_texts([PROMPT.format("Siamese cat")])[0], atol=1e-5)


def test_batches_do_not_change_the_embeddings(net, built):
    paths = [_photo(built, lab, i) for lab in LABELS for i in range(3)]
    one = net.extract(paths, batch_size=1).features
    four = net.extract(paths, batch_size=4).features
    np.testing.assert_allclose(one, four, atol=1e-5)
    texts = [f"a photo of a {w}." for w in ("cat", "dog", "bottle", "christmas tree", "x")]
    np.testing.assert_allclose(net.embed_texts(texts, batch_size=2), net.embed_texts(texts), atol=1e-5)


def test_a_query_is_the_weighted_sum_of_its_terms_text_embeddings(net):
    vectors = net.embed_phrases(["cat", "sofa", "dog"])
    got = net.embed_query(parse_query("cat + 2:sofa - dog"))
    want = vectors[0] + 2 * vectors[1] - vectors[2]
    np.testing.assert_allclose(got, want / np.linalg.norm(want), atol=1e-5)
    with pytest.raises(QueryError, match="cancel"):
        net.embed_query(parse_query("cat - cat"))


def test_a_hub_id_goes_to_snapshot_download_with_the_checkpoint_files(monkeypatch, checkpoint):
    import huggingface_hub

    calls = []

    def fake_download(**kwargs):
        calls.append(kwargs)
        return str(checkpoint)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    net = load_clip_backbone(DEFAULT_CLIP)
    assert calls == [{"repo_id": "openai/clip-vit-base-patch32", "allow_patterns": list(HUB_FILES)}]
    assert net.spec == DEFAULT_CLIP and net.feature_dim == 16


def test_an_unreachable_hub_id_names_the_checkpoint(monkeypatch, tmp_path):
    import huggingface_hub

    def offline(**kwargs):
        raise OSError("no network in tests")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssetSourceError, match=r"CLIP checkpoint .someone/no-clip.*local folder"):
        load_backbone("clip:someone/no-clip")


@pytest.mark.parametrize("spec", ["clip:", "clip:  ", "clip:/no/such/folder/here", "clip:./nowhere"])
def test_a_spec_naming_no_checkpoint_is_refused(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssetSourceError):
        load_backbone(spec)


def test_a_folder_that_is_not_a_clip_checkpoint_is_refused(tmp_path):
    with pytest.raises(AssetSourceError, match=r"config\.json"):
        load_backbone(f"clip:{tmp_path}")
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(AssetSourceError, match="not a CLIP checkpoint"):
        load_backbone(f"clip:{tmp_path}")


# ---- the bundle ------------------------------------------------------------------------------------------------
def test_the_bundle_records_the_clip_space(built, checkpoint):
    bundle = B.open_bundle(built[0])
    m = bundle.manifest
    assert m["space"] == "clip" and m["semantic"] == "clip" and m["head"] is False
    assert m["backbone"] == f"clip:{checkpoint}" and m["feature_dim"] == 16 and m["word_dim"] == 16
    assert bundle.head_dir is None
    assert bundle.indexes["semantic"].dim == bundle.indexes["tags"].dim == 16
    np.testing.assert_allclose(bundle.indexes["semantic"].vectors(), bundle.features, atol=1e-5)
    assert "CLIP text space" in json.loads((built[0] / "indexes" / "tags.json").read_text())["vectors"]


def test_tags_are_indexed_by_their_prompted_clip_text_embeddings(built, net):
    bundle = B.open_bundle(built[0])
    phrases = bundle.tags.phrases[:5]
    np.testing.assert_allclose(bundle.indexes["tags"].get(range(5)), net.embed_phrases(phrases), atol=1e-5)


def test_train_devise_refuses_a_clip_bundle_in_one_line(built, capsys):
    from training import train_devise

    before = (built[0] / B.MANIFEST).read_bytes()
    assert train_devise.main(["--bundle", str(built[0])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {built[0]} is a CLIP bundle: CLIP's photos and words already share one space, so no "
                   "DeViSE head is trained for it; serve it as it is."]
    assert (built[0] / B.MANIFEST).read_bytes() == before and not (built[0] / B.HEAD).exists()


# ---- the five searches -----------------------------------------------------------------------------------------
def test_engine_says_it_serves_clip(engine, built):
    info = engine.info
    assert info.space == "clip" and info.semantic == "clip" and info.count == 9
    assert engine.head is None


@pytest.mark.parametrize("item", [0, 4, 8])
def test_similar_images_ranks_clip_image_embeddings(engine, item):
    hits = engine.similar_images(item, k=4)
    assert all(isinstance(h, Hit) for h in hits) and hits[0].id == item
    want = exact_search(engine.bundle.features, engine.bundle.features[item], 4)
    assert [h.id for h in hits] == want.ids[0].tolist()


def test_a_photo_by_path_gets_its_stored_embedding(engine, built):
    item = next(i for i, it in enumerate(engine.bundle.items) if it.path == "cat/cat_1.png")
    hits = engine.similar_images(str(_photo(built)), k=3)
    assert hits[0].id == item and hits[0].distance < 1e-4


def test_search_images_ranks_photos_by_the_querys_clip_text_embedding(engine, net):
    for query in ("cat", "cat + 2:sofa - dog", "christmas tree", "qwzxv"):  # any word: CLIP has no vocabulary
        hits = engine.search_images(query, k=5)
        scores = engine.bundle.features @ net.embed_query(parse_query(query))
        assert [h.id for h in hits] == np.argsort(-scores, kind="stable")[:5].tolist()
        np.testing.assert_allclose([h.distance for h in hits], 1 - np.sort(scores)[::-1][:5], atol=1e-4)


def test_your_photos_are_searched_in_clip_space_with_no_head(engine, net, built, tmp_path, monkeypatch):
    from searchcore.serve.uploads import Candidate

    monkeypatch.setenv("SEARCH_MY_MAX_PHOTOS", "10")
    store = engine.collection_store()
    photos = [Candidate(f"{label}_{i}.png", label, _photo(built, label, i).read_bytes())
              for label in ("cat", "dog") for i in (1, 2)]
    try:
        with store.using("visitor", create=True) as mine:
            added = engine.add_images(mine, photos)
            assert added.added == 4 and mine.own is None  # two labels, but CLIP trains no head
            np.testing.assert_allclose(mine.features, net.extract([_photo(built, c, i) for c in ("cat", "dog")
                                                                    for i in (1, 2)]).features, atol=1e-5)
            query = parse_query("cat + 2:dog")
            scores = mine.features @ net.embed_query(query)
            hits = engine.search_images("cat + 2:dog", k=4, collection=mine)
            assert [h.id for h in hits] == np.argsort(-scores, kind="stable").tolist()
            assert {h.label for h in hits} == {"cat", "dog"}  # the visitor's photos, not the bundle's
            similar = engine.similar_images(_photo(built, "dog", 1), k=1, collection=mine)
            assert similar[0].label == "dog" and similar[0].caption == "dog_1.png"
    finally:
        store.close()


def test_weights_and_signs_change_the_answer(engine):
    plain = [h.distance for h in engine.search_images("cat dog", 9)]
    weighted = [h.distance for h in engine.search_images("cat + 3:dog", 9)]
    subtracted = [h.distance for h in engine.search_images("cat - dog", 9)]
    assert plain != weighted and plain != subtracted


def test_tag_image_ranks_tag_phrases_in_clip_space(engine, net, built):
    tags = engine.tag_image(str(_photo(built)), k=8)
    assert len(tags) == 8 and all(isinstance(t, WordHit) for t in tags)
    phrases = engine.bundle.tags.phrases
    assert all(t.word in phrases for t in tags)
    emb = net.extract([_photo(built)]).features[0]
    for tag in tags:  # every distance is the cosine distance between the photo and the prompted phrase
        want = 1 - float(net.embed_phrases([tag.word])[0] @ emb)
        assert tag.distance == pytest.approx(max(want, 0.0), abs=1e-4)


def test_by_class_pulls_the_query_toward_the_class_text(engine, net):
    features = engine.bundle.features
    hits = engine.similar_images_by_class(0, "Siamese cat", k=9)
    query = unit_rows(features[0][None] + net.classifier_weights()[284][None])[0]
    assert [h.id for h in hits] == np.argsort(-(features @ query), kind="stable").tolist()
    assert engine.similar_images_by_class(0, 284, k=9) == hits
    assert engine.similar_images_by_class(0, "0", k=9) != hits  # another class, another bias


def test_text_to_text_stays_glove(engine, built):
    from searchcore.models.words import load_word_vectors

    words = load_word_vectors(str(built[2]))
    hits = engine.similar_words("cat", k=3)
    vector = words.combine(parse_query("cat"))
    ids = words.alpha_ids(WORD_VOCAB)
    scores = unit_rows(np.asarray(words.vectors[ids])) @ vector
    order = [words.words[ids[i]] for i in np.argsort(-scores, kind="stable") if words.words[ids[i]] != "cat"]
    assert [h.word for h in hits] == order[:3]


@pytest.mark.parametrize("call", [
    lambda e: e.search_images("", 3),
    lambda e: e.search_images("   ", 3),
    lambda e: e.search_images("cat - cat", 3),
])
def test_bad_queries_raise_query_errors(engine, call):
    with pytest.raises(QueryError):
        call(engine)


@pytest.mark.parametrize("call", [
    lambda e: e.similar_images(0, 0),
    lambda e: e.search_images("cat", 1001),
    lambda e: e.tag_image(0, 2.5),
    lambda e: e.similar_images(99, 3),
    lambda e: e.similar_images_by_class(0, 1000, 3),
    lambda e: e.similar_images_by_class(0, -1, 3),
    lambda e: e.similar_images_by_class(0, "no such thing at all", 3),
])
def test_bad_arguments_raise_bad_argument_errors(engine, call):
    with pytest.raises(BadArgumentError):
        call(engine)


def test_a_corrupt_image_is_an_image_error(engine, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    for call in (engine.similar_images, engine.tag_image):
        with pytest.raises(ImageError):
            call(str(bad), 3)
    with pytest.raises(ImageError):
        engine.similar_images_by_class(str(bad), 284, 3)


def test_a_clip_bundle_is_refused_with_a_cnn_backbone(built):
    from _synthetic import TINY_BACKBONE

    with pytest.raises(BundleError, match="is a CLIP bundle"):
        load_engine(built[0], backbone=load_backbone(TINY_BACKBONE))


# ---- side by side --------------------------------------------------------------------------------------------------
def test_clip_figures_use_the_same_photos_and_queries(built, tmp_path, net):
    """CLIP zero-shot beside a DeViSE bundle of the same photos: same pool, same queries, CLIP's rankings."""
    from _synthetic import TINY_BACKBONE

    from searchcore.build.pipeline import build_bundle
    from searchcore.models.conse import ConSE
    from searchcore.models.words import load_word_vectors
    from searchcore.quality.evaluation import Space, clip_figures

    words = load_word_vectors(str(built[2]))
    devise, _ = build_bundle(str(built[1]), tmp_path / "devise", TINY_BACKBONE, words, word_vocab=WORD_VOCAB)
    bundle = B.open_bundle(devise)
    space = Space.of(bundle, words, ConSE.from_words(load_backbone(TINY_BACKBONE).class_names, words), None)
    pool = np.arange(9)
    out = clip_figures(built[0], bundle, space, pool, {"cat", "dog"}, {"bottle"}, pool[:6], pool[6:],
                       real_photos=False)
    assert out["backbone"] == net.spec
    for key in ("text_image_p10", "caption_word_p5", "zero_shot_text_image_p10", "tag_hit5", "zero_shot_tag_hit5",
                "image_image_p10"):
        assert out[key] is None or 0.0 <= out[key] <= 1.0, key
    # the label query "cat" over the pool, ranked by CLIP: precision over the top 3 (three cat photos)
    clip = B.open_bundle(built[0])
    rows = [next(j for j, it in enumerate(clip.items) if it.path == item.path) for item in bundle.items]
    labels = np.array([it.label for it in bundle.items])
    precision = {}
    for label in ("cat", "dog"):
        top = np.argsort(-(clip.features[rows] @ net.embed_query(parse_query(label))), kind="stable")[:3]
        precision[label] = float(np.mean(labels[top] == label))
    assert out["text_image_p10"] == pytest.approx(np.mean(list(precision.values())), abs=1e-4)
    with pytest.raises(B.BundleError, match="not a CLIP bundle"):
        clip_figures(devise, bundle, space, pool, {"cat"}, set(), pool, pool[:0], real_photos=False)


def test_clip_figures_refuse_a_bundle_of_other_photos(built, tmp_path):
    from searchcore.quality.evaluation import clip_figures

    bundle = B.open_bundle(built[0])
    other = bundle.items[0]._replace(path="elsewhere/x.png")
    bundle.items = [other, *bundle.items[1:]]
    with pytest.raises(B.BundleError, match="lacks 1 of the photos"):
        clip_figures(built[0], bundle, None, np.arange(9), set(), set(), np.arange(0), np.arange(0),
                     real_photos=False)


def test_images_of_any_size_embed(net):
    wide = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 300, 3), dtype=np.uint8))
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    assert net.extract([wide, rgba]).features.shape == (2, 16)


def test_the_app_says_it_serves_clip(engine):
    import app

    served = app.Served(engine, "SEARCH_BUNDLE names it", (), "tiny-clip")
    assert "CLIP, zero-shot" in app.banner(served)
    text = app.describe(engine, "tiny-clip")
    assert "What is being served: CLIP" in text and "a photo of a {word}." in text
    assert "DeViSE head (image features" not in text and "classifier, for your photo and for the collection" not in text


def test_the_class_prompts_are_embedded_once_per_checkpoint(checkpoint, tmp_path, monkeypatch):
    first = load_backbone(f"clip:{checkpoint}")
    classes = first.classifier_weights()
    cached = list((tmp_path / "cache" / "clip").glob("classes-*.npy"))
    assert len(cached) == 1
    second = load_backbone(f"clip:{checkpoint}")
    monkeypatch.setattr(ClipBackbone, "embed_phrases", lambda *_: pytest.fail("the cache was not used"))
    np.testing.assert_array_equal(second.classifier_weights(), classes)
    monkeypatch.undo()
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    # other weights (here: the same file, rewritten later) are another checkpoint: the cache misses
    weights = checkpoint / "model.safetensors"
    stat = weights.stat()
    try:
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        load_backbone(f"clip:{checkpoint}").classifier_weights()
    finally:
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert len(list((tmp_path / "cache" / "clip").glob("classes-*.npy"))) == 2


def test_evaluate_json_puts_clip_beside_conse_and_the_head(offline_bundle, checkpoint, tmp_path, capsys):
    """training.evaluate --clip on the real offline bundle and a (tiny, random) CLIP bundle of the same photos:
    the JSON gains a "clip" entry with the same figures as the other columns, measured on the same photos."""
    from searchcore.build.pipeline import build_bundle
    from searchcore.collection import Collection
    from training import evaluate

    manifest = B.verify(offline_bundle, check_sums=False)
    photos = Collection(manifest["name"], offline_bundle / B.IMAGES, B.read_items(offline_bundle / B.ITEMS))
    clip_root, _ = build_bundle(photos, tmp_path / "clip", f"clip:{checkpoint}", manifest["words"], word_vocab=1000)
    capsys.readouterr()
    assert evaluate.main(["--bundle", str(offline_bundle), "--clip", str(clip_root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    clip = out["clip"]
    assert clip["backbone"] == f"clip:{checkpoint}"
    for key in ("text_image_p10", "caption_word_p5", "tag_hit5", "real_photo_tag_hit5"):
        assert key in out["served"] and 0.0 <= clip[key] <= 1.0, key
    assert 0.0 <= clip["image_image_p10"] <= 1.0
    assert evaluate.main(["--bundle", str(offline_bundle), "--clip", str(offline_bundle), "--json"]) == 2
    assert "is not a CLIP bundle" in capsys.readouterr().err


def test_evaluating_a_clip_bundle_alone_says_how_to_compare_it(built, capsys):
    from training import evaluate

    assert evaluate.main(["--bundle", str(built[0]), "--json"]) == 2
    err = capsys.readouterr().err
    assert "is a CLIP bundle" in err and f"--clip {built[0]}" in err


def test_ray_extraction_is_refused_for_clip(built, tmp_path, checkpoint):
    from searchcore.build.pipeline import build_bundle
    from searchcore.build.ray_extract import RayConfig

    with pytest.raises(BadArgumentError, match="without --ray"):
        build_bundle(str(built[1]), tmp_path / "b", f"clip:{checkpoint}", str(built[2]), ray=RayConfig())
    assert not (tmp_path / "b").exists()


def test_update_keeps_a_clip_bundle_in_clip_space(built, tmp_path, net):
    import shutil

    from searchcore.build.update import update_bundle
    from searchcore.collection import folder_collection

    root, photos = tmp_path / "bundle", tmp_path / "photos"
    shutil.copytree(built[0], root)
    shutil.copytree(built[1], photos)
    Image.new("RGB", (40, 40), (250, 250, 250)).save(photos / "cat" / "white.png")
    counts = update_bundle(root, folder_collection(photos, name="tiny"))
    assert counts["added"] == 1 and counts["kept"] == 9
    bundle = B.open_bundle(root)
    assert bundle.manifest["space"] == "clip" and len(bundle.items) == 10
    assert bundle.indexes["tags"].dim == bundle.indexes["semantic"].dim == 16
    new = next(i for i, it in enumerate(bundle.items) if it.path == "cat/white.png")
    np.testing.assert_allclose(bundle.features[new], net.extract([photos / "cat" / "white.png"]).features[0],
                               atol=1e-5)
