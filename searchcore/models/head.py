"""The trained DeViSE head: a torch network that maps image features into the word space.

:class:`DeViSEHead` is the seed's head (features → 2000 → word dim, BatchNorm, ReLU, Dropout) as an ``nn.Module``
with ``PyTorchModelHubMixin``: ``save_pretrained(folder)`` writes ``config.json`` beside ``model.safetensors`` and
``from_pretrained(folder_or_repo_id)`` rebuilds it from that config. It also carries the served settings and the
word classifier (:mod:`searchcore.models.wordclass`), saved with it.

This is the one module that imports torch at its top. The engine serves a head folder through
:class:`searchcore.models.headview.HeadView`, which shares the head's word side (:mod:`searchcore.models.headwords`) and
builds this network only when a search first embeds an image. ConSE, and the blend of the two that Image → Tags serves,
are :mod:`searchcore.models.conse`; how Text → Image mixes everything per query is :mod:`searchcore.models.scoring`'s.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from ..index import unit_rows
from ..settings import ServedSettings
from .headwords import WordReading
from .wordclass import WordClassifier


class DeViSEHead(
    nn.Module,
    WordReading,
    PyTorchModelHubMixin,
    library_name="semantic-search",
    tags=["devise", "image-search", "zero-shot-image-classification"],
    license="mit",
):
    """features (in_dim) → hidden_dim → out_dim (the word-vector dim). Outputs are compared by cosine."""

    def __init__(
        self,
        in_dim: int = 4096,
        hidden_dim: int = 2000,
        out_dim: int = 300,
        dropout: float = 0.25,
        backbone: str = "",
        words: str = "",
        conse_mix: float = 0.0,
        tag_conse_mix: float | None = None,
        ood_distance: float | None = None,
        unseen_conse_mix: float | None = None,
        seen_words: list[str] | None = None,
        seen_similarity: float | None = None,
        neighbour_mix: float = 0.0,
        word_vocab: list[str] | None = None,
        word_mix: float = 0.0,
        class_mix: float = 0.0,
        unseen_class_mix: float = 0.0,
        exemplar_mix: float = 0.0,
    ) -> None:
        super().__init__()
        # backbone/words are recorded in config.json so a head is never paired with the wrong features
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim
        self.backbone, self.words = backbone, words
        # the words of its training targets: Text → Image trusts the head for these and leans on ConSE for the others
        self.seen_words = frozenset(seen_words or ())
        # how the head is mixed with ConSE and the word signals (searchcore.settings, each field's meaning there)
        self.take_settings(self.resolve({
            "conse_mix": conse_mix, "unseen_conse_mix": unseen_conse_mix, "seen_similarity": seen_similarity,
            "neighbour_mix": neighbour_mix, "word_mix": word_mix, "class_mix": class_mix,
            "unseen_class_mix": unseen_class_mix, "exemplar_mix": exemplar_mix, "tag_conse_mix": tag_conse_mix,
            "ood_distance": ood_distance}))
        self.net = nn.Sequential(
            nn.BatchNorm1d(in_dim),
            nn.Dropout(dropout / 2),
            nn.Linear(in_dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(hidden_dim),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, out_dim),
        )
        # the word classifier (searchcore.models.wordclass): a logistic regression per trained word on the raw features
        self.word_vocab = list(word_vocab or ())
        self.word_layer = nn.Linear(in_dim, len(self.word_vocab)) if self.word_vocab else None

    def set_serving(self, settings: ServedSettings, *, seen_words: Sequence[str] | None = None) -> None:
        """Serve with ``settings`` (and, when given, count ``seen_words`` as the words the head was trained on);
        config.json records them under the same names. A head without a word classifier serves no word_mix."""
        if self.word_layer is None:
            settings = settings.replace(word_mix=0.0)
        self.take_settings(settings)
        if seen_words is not None:
            self.seen_words = frozenset(seen_words)
        self._save_config(seen_words=sorted(self.seen_words), **self.settings.to_dict())

    def _save_config(self, **fields: object) -> None:
        if isinstance(getattr(self, "_hub_mixin_config", None), dict):
            self._hub_mixin_config.update(fields)

    def set_word_classifier(self, classifier: WordClassifier | None) -> None:
        """Install a fitted word classifier (None removes it); saved with the weights and in config.json."""
        if classifier is None:
            self.word_vocab, self.word_layer, self.word_mix = [], None, 0.0
        else:
            layer = nn.Linear(self.in_dim, len(classifier.vocab))
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(np.asarray(classifier.weight, np.float32)))
                layer.bias.copy_(torch.from_numpy(np.asarray(classifier.bias, np.float32)))
            self.word_vocab, self.word_layer = list(classifier.vocab), layer.to(next(self.net.parameters()).device)
        self.__dict__.pop("_classifier", None)
        self._save_config(word_vocab=self.word_vocab, word_mix=self.word_mix)

    @property
    def word_classifier(self) -> WordClassifier | None:
        """The word classifier as numpy arrays (cached), or None for a head without one."""
        if self.word_layer is None:
            return None
        cached = self.__dict__.get("_classifier")
        if cached is None:
            cached = WordClassifier(self.word_vocab, self.word_layer.weight.detach().cpu().numpy().copy(),
                                    self.word_layer.bias.detach().cpu().numpy().copy())
            self.__dict__["_classifier"] = cached
        return cached

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)

    @torch.inference_mode()
    def embed(self, features: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Unit vectors in word space for a (n, in_dim) feature matrix, in eval mode."""
        was_training = self.training
        self.eval()
        feats = np.array(features, dtype=np.float32)  # a writable copy: torch refuses read-only memmaps
        out = [self(torch.from_numpy(feats[i : i + batch_size])).numpy() for i in range(0, len(feats), batch_size)]
        self.train(was_training)
        return unit_rows(np.concatenate(out) if out else np.zeros((0, self.out_dim), np.float32))


def load_head(source: str | Path) -> DeViSEHead:
    """``DeViSEHead.from_pretrained`` in eval mode, without the mixin's "Loading weights" line on stdout."""
    with contextlib.redirect_stdout(io.StringIO()):  # CLIs print JSON on stdout; keep it clean
        return DeViSEHead.from_pretrained(str(source)).eval()
