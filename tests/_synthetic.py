"""Synthetic test data shared by the unit tests: a tiny photo collection in class folders and a small vocabulary."""

from __future__ import annotations

import itertools
from pathlib import Path

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
