"""The trained head as a search reads it, without torch: its served settings, the words it was trained on, how it
reads a query's words, and its word classifier as numpy arrays.

Importing torch takes over a second, and Text → Image, Text → Text and every search by a collection photo's id need
none of it: their photos' embeddings are stored in the bundle. So the engine serves a head folder through
:class:`HeadView` (its ``config.json`` and the word classifier's weights, read with safetensors' numpy reader),
and the network itself (:class:`searchcore.models.head.DeViSEHead`) is built from the same folder when a search first
embeds an image (an upload, a visitor's photo). Both share the word side of :mod:`searchcore.models.headwords`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from ..errors import BundleError
from .headwords import WordReading
from .wordclass import WordClassifier

if TYPE_CHECKING:
    from .head import DeViSEHead

CONFIG = "config.json"
WEIGHTS = "model.safetensors"


class HeadView(WordReading):
    """A saved head folder (``save_pretrained``'s) served without torch until an image must be embedded."""

    def __init__(self, folder: Path, config: dict[str, Any], classifier: WordClassifier | None) -> None:
        self.folder = Path(folder)
        self.in_dim, self.out_dim = int(config["in_dim"]), int(config["out_dim"])
        self.backbone, self.words = str(config.get("backbone", "")), str(config.get("words", ""))
        self.seen_words = frozenset(config.get("seen_words") or ())
        self.word_vocab = list(classifier.vocab) if classifier is not None else []
        self.take_settings(self.resolve(config))
        self.word_classifier = classifier
        self._network: DeViSEHead | None = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: str | Path) -> HeadView:
        """Read ``folder``'s config.json and its word classifier's weights (the rest of the file stays on disk)."""
        from safetensors import safe_open

        folder = Path(folder)
        config = json.loads((folder / CONFIG).read_text())
        vocab: Sequence[str] = config.get("word_vocab") or ()
        classifier = None
        if vocab:
            with safe_open(str(folder / WEIGHTS), framework="numpy") as weights:
                classifier = WordClassifier(list(vocab), weights.get_tensor("word_layer.weight").copy(),
                                            weights.get_tensor("word_layer.bias").copy())
        return cls(folder, config, classifier)

    @property
    def loaded(self) -> bool:
        """Whether the network is built (:attr:`network`)."""
        return self._network is not None

    @property
    def network(self) -> DeViSEHead:
        """The head's network, loaded (with torch) from the same folder on first use."""
        with self._lock:
            if self._network is None:
                from .head import load_head

                try:
                    self._network = load_head(self.folder)
                except Exception as exc:  # a file changed or damaged since the engine was loaded
                    raise BundleError(f"the trained head's network cannot be loaded ({type(exc).__name__}: {exc}).",
                                      self.folder, "Retrain it with: python -m training.train_devise --bundle "
                                      + str(self.folder.parent)) from exc
            return self._network

    def embed(self, features: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Unit vectors in word space for a (n, in_dim) feature matrix (:meth:`DeViSEHead.embed`)."""
        return self.network.embed(features, batch_size)


if TYPE_CHECKING:
    #: What a search takes for a head: the network, or the view of a saved one (they share :class:`WordReading`).
    Head: TypeAlias = DeViSEHead | HeadView
