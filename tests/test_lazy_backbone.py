"""The offline backbone built on first use (:class:`searchcore.models.backbone.LazyBackbone`): before its network exists
it answers what the engine asks (feature size, classes, classifier weights) exactly as the built network does, a search
by words never builds it, and an image search gets the same features as from a backbone built at once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from searchcore.models.backbone import (
    OFFLINE_BACKBONE,
    LazyBackbone,
    _build_timm_backbone,
    imagenet_class_names,
    load_timm_backbone,
)
from searchcore.serve.lifecycle import EngineLoader, Served

REPO = Path(__file__).resolve().parents[1]


def chelsea() -> str:
    import skimage

    return os.path.join(os.path.dirname(skimage.__file__), "data", "chelsea.png")


def test_the_class_names_are_timms_without_importing_timm() -> None:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    assert imagenet_class_names() == [info.index_to_description(i) for i in range(1000)]
    code = ("import sys; from searchcore.models.backbone import imagenet_class_names as n; n(); "
            "print('timm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_lazy_offline_backbone_answers_as_the_built_one() -> None:
    lazy = load_timm_backbone(OFFLINE_BACKBONE)
    assert isinstance(lazy, LazyBackbone) and not lazy.built
    eager = _build_timm_backbone("tf_efficientnet_lite0", "pypi", lazy.batch_size)
    assert (lazy.spec, lazy.feature_dim, lazy.num_classes) == (eager.spec, eager.feature_dim, eager.num_classes)
    np.testing.assert_array_equal(lazy.classifier_weights(), eager.classifier_weights())
    assert lazy.class_names == eager.class_names
    assert not lazy.built  # none of that needed the network
    got, want = lazy.extract_one(chelsea()), eager.extract_one(chelsea())
    assert lazy.built
    np.testing.assert_allclose(got.features, want.features, atol=1e-5)
    np.testing.assert_allclose(got.logits, want.logits, atol=1e-4)
    assert lazy.data_config == eager.data_config


def test_two_first_uses_at_once_build_the_network_once() -> None:
    calls = []
    release = threading.Event()

    def build() -> object:
        calls.append(1)
        release.wait(5)
        return type("Built", (), {"model": "the network", "transform": None, "data_config": {}})()

    lazy = LazyBackbone("tf_efficientnet_lite0@pypi", 8, (1000, 1280), lambda: np.zeros((1000, 1280), np.float32),
                        build)  # type: ignore[arg-type]
    models: list[object] = []
    threads = [threading.Thread(target=lambda: models.append(lazy.model)) for _ in range(2)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert calls == [1] and models == ["the network", "the network"]


def test_searches_by_words_and_by_a_collection_photo_never_import_torch(offline_bundle: Path,
                                                                       test_cache: Path) -> None:
    """A warm start answers Text → Image without torch (over a second to import): the head is served from its
    config and word classifier (searchcore.models.headview), the backbone's network and classifier are read on first
    use."""
    code = ("import sys; from searchcore import load_engine; e = load_engine(sys.argv[1]); "
            "hits = e.search_images('bird', 5) + e.similar_images(3, 3) "
            "+ e.search_images_by_photo_and_words(3, 'red', 3); "
            "print(len(hits), len(e.similar_words('said', 3)), 'torch' in sys.modules); "
            "e.similar_images_by_class(3, 284, 3); print('torch' in sys.modules)")
    env = {**os.environ, "SEARCH_CACHE_DIR": str(test_cache), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code, str(offline_bundle)], cwd=REPO, capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["11", "3", "False", "True"]  # by class reads the classifier's weights: torch


def test_a_search_by_words_leaves_the_network_unbuilt_and_the_app_builds_it_after(offline_bundle: Path,
                                                                                  test_cache: Path) -> None:
    from searchcore import load_engine

    os.environ["SEARCH_CACHE_DIR"] = str(test_cache)
    engine = load_engine(offline_bundle)
    assert isinstance(engine.backbone, LazyBackbone)
    assert engine.search_images("bird", 5) and engine.similar_words("said", 3) and engine.class_names
    assert not engine.backbone.built and engine.head is not None and not engine.head.loaded
    loader = EngineLoader(lambda report: Served(engine, "a test", (), "offline"))
    loader.wait(every=0.01)
    assert loader.prepare_images() and not loader.prepare_images()  # started once
    for _ in range(600):  # the networks are built in the background
        if engine.backbone.built and engine.head.loaded:
            break
        threading.Event().wait(0.1)
    assert engine.backbone.built and engine.head.loaded
    assert engine.tag_image(chelsea(), 3)
