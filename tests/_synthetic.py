"""Synthetic test data shared by the unit tests: a tiny photo collection in class folders and a small vocabulary."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

TINY_BACKBONE = "test_resnet@random"
LABELS = ("cat", "dog", "bottle")
IMAGENET_WORDS = ["siamese", "tabby", "tiger", "egyptian", "persian", "golden", "retriever", "beer", "wine", "water",
                  "pop", "jar", "goldfish", "espresso", "cup", "coffee", "mug", "sofa", "studio", "couch", "table"]


def synthetic_vocab() -> list[str]:
    """Frequent words first, as in GloVe: punctuation, a number, the labels, ImageNet-ish words, then filler."""
    filler = ["q" + "".join(p) for p in itertools.product("abcdef", repeat=3)][:60]
    return ["the", ",", ".", "of", "1999", *LABELS, *IMAGENET_WORDS, "u.s.", "mid-1990s", *filler]


def write_word_table(folder: Path, dim: int = 16) -> Path:
    """:func:`synthetic_vocab` with seeded random vectors, in the cache format that load_word_vectors opens as is."""
    vocab = synthetic_vocab()
    folder.mkdir(parents=True)
    np.save(folder / "vectors.npy", np.random.default_rng(1).standard_normal((len(vocab), dim)).astype(np.float32))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return folder


def make_photos(root: Path) -> Path:
    """Three noisy, distinguishable photos per label under ``root/<label>/``."""
    rng = np.random.default_rng(0)
    bases = {"cat": (200, 120, 60), "dog": (90, 60, 30), "bottle": (40, 160, 60)}
    for n, label in enumerate(LABELS):
        (root / label).mkdir(parents=True)
        for i in range(3):
            noise = rng.integers(-60, 60, (48, 56, 3))
            arr = np.clip(np.array(bases[label]) + noise + 20 * i, 0, 255).astype(np.uint8)
            arr[: 8 * (i + 1), : 6 * (n + 1)] = 255 - arr[: 8 * (i + 1), : 6 * (n + 1)]
            Image.fromarray(arr).save(root / label / f"{label}_{i}.png")
    return root


def write_tiny_clip(folder: Path) -> Path:
    """A tiny random CLIP saved as a Hub checkpoint is (config.json, model.safetensors, tokenizer and image
    processor files), so :func:`searchcore.models.clip.load_clip` loads it through the same code as a real one."""
    import json
    import string

    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    # a character-level BPE vocabulary (every word splits into letters) with two merges, enough to tokenise anything
    symbols = list(string.ascii_lowercase + string.digits + ".,'-")
    tokens = ["<|startoftext|>", "<|endoftext|>", *symbols, *(s + "</w>" for s in symbols), "th", "the</w>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\nt h\nth e</w>\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    images = CLIPImageProcessor(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30})
    config = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                         vocab_size=len(tokens), max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                           image_size=30, patch_size=2),
        projection_dim=16)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        CLIPModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def tiny_bundle(base: Path, word_vocab: int = 40) -> tuple[Path, Any, Any, Any]:
    """(bundle root, collection, backbone, word vectors): the photos of :func:`make_photos` built into a bundle by
    ``write_bundle`` with the tiny random backbone and :func:`write_word_table`'s words (no head), with the cache
    folder inside ``base``."""
    import pytest

    from searchcore.build.write import write_bundle
    from searchcore.collection import folder_collection
    from searchcore.models.backbones import load_backbone
    from searchcore.models.words import load_word_vectors

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEARCH_CACHE_DIR", str(base / "cache"))
        collection = folder_collection(make_photos(base / "photos"), name="tiny")
        words = load_word_vectors(str(write_word_table(base / "words")))
        backbone = load_backbone(TINY_BACKBONE)
        feats = backbone.extract([collection.path(item) for item in collection.items])
        root = write_bundle(base / "bundle", collection, feats, backbone.spec, backbone.class_names, words,
                            word_vocab=word_vocab)
    return Path(root), collection, backbone, words
