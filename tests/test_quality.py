"""Quality on the real offline assets: GloVe 6B 50d, EfficientNet-Lite0 ImageNet weights, real photos.

These check meaning, not shapes: the nearest words to "said", cat tags for a cat photo, the ImageNet-class
re-weighting, and Text→Image on the Tux Paint photo stamps with the trained head.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from searchcore import OFFLINE_BACKBONE, OFFLINE_WORDS, load_engine
from searchcore.pipeline import build_bundle

CAT_WORDS = {"cat", "cats", "kitten", "kittens", "feline", "tiger", "tabby", "kitty", "lion", "leopard"}


def skimage_photo(name: str) -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data" / name


@pytest.fixture(scope="module")
def samples_engine(tmp_path_factory, test_cache: Path, monkeypatch_module):
    """A head-less bundle of scikit-image's photos: the engine must fall back to ConSE and say so."""
    monkeypatch_module.setenv("SEARCH_CACHE_DIR", str(test_cache))
    out = tmp_path_factory.mktemp("samples") / "bundle"
    build_bundle("samples", out, OFFLINE_BACKBONE, OFFLINE_WORDS, word_vocab=20_000)
    return load_engine(out)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def cat_and_coffee(cat_share: float) -> Image.Image:
    """One picture, a cat on the left and a cup of coffee on the right."""
    cat = Image.open(skimage_photo("chelsea.png")).convert("RGB")
    coffee = Image.open(skimage_photo("coffee.png")).convert("RGB")
    width = 448
    split = int(width * cat_share)
    out = Image.new("RGB", (width, 224))
    out.paste(cat.resize((split, 224)), (0, 0))
    out.paste(coffee.resize((width - split, 224)), (split, 0))
    return out


def test_said_neighbours_are_reporting_verbs(offline_engine):
    words = [hit.word for hit in offline_engine.similar_words("said", 10)]
    assert "told" in words
    assert {"says", "spokesman", "asked"} & set(words)
    assert "said" not in words


def test_word_arithmetic(offline_engine):
    words = [hit.word for hit in offline_engine.similar_words("king - man + woman", 5)]
    assert "queen" in words


def test_conse_tags_a_cat_photo_with_cat_words(samples_engine):
    assert samples_engine.info.semantic == "conse"  # no trained head: ConSE, and the engine says so
    tags = [hit.word for hit in samples_engine.tag_image(skimage_photo("chelsea.png"), 5)]
    assert CAT_WORDS & set(tags), tags


def test_trained_bundle_tags_a_cat_photo_with_cat_words(offline_engine):
    assert offline_engine.head is not None
    tags = [hit.word for hit in offline_engine.tag_image(skimage_photo("chelsea.png"), 10)]
    assert CAT_WORDS & set(tags), tags


def test_coffee_photo_gets_drink_tags(offline_engine):
    tags = [hit.word for hit in offline_engine.tag_image(skimage_photo("coffee.png"), 10)]
    assert {"espresso", "coffee", "drinks", "cup", "soda", "beverage", "tea"} & set(tags), tags


def test_reweighting_by_siamese_cat_moves_the_cat_up(samples_engine):
    """A picture that is 60% coffee: plainly it finds coffee and other things; biased to class 284, the cat rises."""
    query = cat_and_coffee(0.4)
    cat_id = next(it.id for it in samples_engine.bundle.items if it.path == "chelsea.png")
    n = len(samples_engine.bundle.items)
    plain = [hit.id for hit in samples_engine.similar_images(query, n)]
    by_cat = [hit.id for hit in samples_engine.similar_images_by_class(query, 284, n)]
    assert by_cat.index(cat_id) < plain.index(cat_id)
    by_name = [hit.id for hit in samples_engine.similar_images_by_class(query, "Siamese cat", n)]
    assert by_name == by_cat


def test_reweighting_by_espresso_puts_the_coffee_first(samples_engine):
    query = cat_and_coffee(0.5)
    coffee_id = next(it.id for it in samples_engine.bundle.items if it.path == "coffee.png")
    assert samples_engine.similar_images_by_class(query, "espresso", 3)[0].id == coffee_id


@pytest.mark.parametrize(("word", "label"), [("bird", "birds"), ("fruit", "fruit"), ("flower", "flowers")])
def test_category_word_finds_that_category(offline_engine, word, label):
    labels = [hit.label for hit in offline_engine.search_images(word, 10)]
    assert max(set(labels), key=labels.count) == label, labels  # the category leads the ranking …
    assert labels.count(label) >= 6, labels  # … and fills most of the first ten


def test_trained_head_beats_conse_on_text_to_image(offline_engine):
    metrics = offline_engine.info.metrics
    assert metrics["head"]["text_image_p10"] > metrics["conse"]["text_image_p10"]
    assert metrics["served"]["text_image_p10"] > metrics["conse"]["text_image_p10"]


def test_similar_images_of_a_collection_photo_share_its_label(offline_engine):
    birds = [it.id for it in offline_engine.bundle.items if it.label == "birds"]
    hits = offline_engine.similar_images(birds[0], 5)
    assert hits[0].id == birds[0] and hits[0].distance == pytest.approx(0.0, abs=1e-4)
    assert sum(hit.label == "birds" for hit in hits[1:]) >= 2


def test_images_of_odd_modes_search_like_their_rgb_version(offline_engine, tmp_path):
    """RGBA, grayscale-as-RGB, CMYK and 16-bit versions of a photo still land near it."""
    rgb = Image.open(skimage_photo("chelsea.png")).convert("RGB")
    cmyk = tmp_path / "cat.jpg"
    rgb.convert("CMYK").save(cmyk)
    sixteen = Image.fromarray((np.asarray(rgb.convert("L"), np.uint16) * 257), mode="I;16")
    reference = offline_engine.features(rgb).features[0]
    for variant in (rgb.convert("RGBA"), str(cmyk), sixteen):
        features = offline_engine.features(variant).features[0]
        cosine = features @ reference / np.linalg.norm(features) / np.linalg.norm(reference)
        assert cosine > 0.5
    assert os.path.exists(cmyk)
