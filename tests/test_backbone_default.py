"""The default backbone, VGG16, as the seed used it: 4096-d fc7 features after ReLU (random weights: no download)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from searchcore import load_backbone


def test_vgg16_gives_sparse_4096_d_fc7_features_and_1000_logits():
    backbone = load_backbone("vgg16.tv_in1k@random")
    assert backbone.feature_dim == 4096
    assert backbone.classifier_weights().shape == (1000, 4096)
    assert backbone.data_config["input_size"] == (3, 224, 224)
    images = [Image.new("RGB", (300, 200), colour) for colour in ("red", "navy")]
    out = backbone.extract(images, batch_size=2)
    assert out.features.shape == (2, 4096) and out.logits.shape == (2, 1000)
    assert (out.features >= 0).all() and (out.features == 0).any()  # after ReLU: non-negative and sparse
    assert not np.allclose(out.features[0], out.features[1])
    assert backbone.class_names[284].startswith("Siamese cat")
