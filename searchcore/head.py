"""Map image features into the word space: the trained DeViSE head, and ConSE, which needs no training.

* :class:`DeViSEHead` is the seed's head (features → 2000 → word dim, BatchNorm, ReLU, Dropout) as an
  ``nn.Module`` with ``PyTorchModelHubMixin``: ``save_pretrained(folder)`` writes ``config.json`` beside
  ``model.safetensors`` and ``from_pretrained(folder_or_repo_id)`` rebuilds it from that config.
* :class:`ConSE` (Norouzi et al., 2014) embeds an image as the probability-weighted mean of the word vectors of its
  top-T ImageNet classes. It is the fallback whenever a bundle has no trained head, and the baseline the head must
  beat.
* :func:`blend` mixes the two embeddings with the weight the training run chose on validation items for
  Image→Tags (``tag_conse_mix``).

How Text → Image mixes the head, ConSE and the word signals per query is :mod:`searchcore.scoring`'s.
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

from .classnames import EVERYDAY, broader_word, class_phrases, imagenet_broader  # noqa: F401 (re-exported)
from .index import unit_rows
from .settings import ServedSettings
from .wordclass import WordClassifier
from .words import Term, WordVectors

EXPANSION = 5  # an unseen query word is read by the head as this many of its nearest seen words


class DeViSEHead(
    nn.Module,
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
        # backbone/words/conse_mix are recorded in config.json so a head is never paired with the wrong features
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim
        # conse_mix blends for Text→Image over the collection, tag_conse_mix for Image→Tags of any photo
        self.backbone, self.words, self.conse_mix = backbone, words, float(conse_mix)
        self.tag_conse_mix = float(conse_mix if tag_conse_mix is None else tag_conse_mix)
        # Text→Image trusts the head for words it was trained on and leans on ConSE for the others
        self.unseen_conse_mix = float(conse_mix if unseen_conse_mix is None else unseen_conse_mix)
        self.seen_words = frozenset(seen_words or ())
        # a word this close (cosine) to a seen word counts as seen: the head generalises to its neighbourhood
        self.seen_similarity = None if seen_similarity is None else float(seen_similarity)
        # an image farther than this (cosine distance of its features to the nearest collection photo) is unlike
        # anything the head was trained on; its tags then come from ConSE alone (see SearchEngine.embed_image)
        self.ood_distance = None if ood_distance is None else float(ood_distance)
        # Text→Image describes a collection photo partly by its look-alikes' words (searchcore.propagation)
        self.neighbour_mix = float(neighbour_mix)
        self.net = nn.Sequential(
            nn.BatchNorm1d(in_dim),
            nn.Dropout(dropout / 2),
            nn.Linear(in_dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(hidden_dim),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, out_dim),
        )
        # the word classifier (searchcore.wordclass): a logistic regression per trained word on the raw features;
        # Text→Image gives it word_mix of a query's score for the words it knows
        self.word_vocab = list(word_vocab or ())
        self.word_mix = float(word_mix)
        # a query word WordNet places above ImageNet classes also has the classifier's mass below it
        # (searchcore.hierarchy); Text→Image gives that class_mix of a trained word's score (what the word classifier
        # left of it), unseen_class_mix of any other word's
        self.class_mix = float(class_mix)
        self.unseen_class_mix = float(unseen_class_mix)
        # the cosine to the nearest collection photo named by a query word (searchcore.exemplars) takes
        # exemplar_mix of the score for those words
        self.exemplar_mix = float(exemplar_mix)
        self.word_layer = nn.Linear(in_dim, len(self.word_vocab)) if self.word_vocab else None

    def set_serving(self, settings: ServedSettings, *, seen_words: Sequence[str] | None = None) -> None:
        """Serve with ``settings`` (and, when given, count ``seen_words`` as the words the head was trained on);
        config.json records them under the same names. A head without a word classifier serves no word_mix."""
        if self.word_layer is None:
            settings = settings.replace(word_mix=0.0)
        self.conse_mix, self.unseen_conse_mix = float(settings.conse_mix), float(settings.unseen_conse_mix)
        self.tag_conse_mix = float(settings.tag_conse_mix)
        self.ood_distance = None if settings.ood_distance is None else float(settings.ood_distance)
        self.seen_similarity = None if settings.seen_similarity is None else float(settings.seen_similarity)
        if seen_words is not None:
            self.seen_words = frozenset(seen_words)
        self.neighbour_mix, self.word_mix = float(settings.neighbour_mix), float(settings.word_mix)
        self.class_mix, self.unseen_class_mix = float(settings.class_mix), float(settings.unseen_class_mix)
        self.exemplar_mix = float(settings.exemplar_mix)
        self._save_config(seen_words=sorted(self.seen_words), **self.settings.to_dict())

    @property
    def settings(self) -> ServedSettings:
        """The settings this head serves with."""
        return ServedSettings(self.conse_mix, self.unseen_conse_mix, self.seen_similarity, self.neighbour_mix,
                              self.word_mix, self.class_mix, self.unseen_class_mix, self.exemplar_mix,
                              self.tag_conse_mix, self.ood_distance)

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

    def trained_on(self, word: str, words: WordVectors | None = None) -> bool:
        """Was ``word`` (or its singular) in the head's training targets, or (with ``words``) near one of them?"""
        from .text import singular

        forms = getattr(self, "_seen_forms", None)
        if forms is None or forms[0] is not self.seen_words:  # cached per seen-word set
            forms = (self.seen_words, frozenset(singular(w) for w in self.seen_words))
            self._seen_forms = forms
        if word in self.seen_words or singular(word) in forms[1]:
            return True
        if words is None or self.seen_similarity is None or word not in words:
            return False
        matrix = self.seen_matrix(words)
        return bool(len(matrix)) and float(np.max(matrix @ words.unit(word))) >= self.seen_similarity

    def seen_matrix(self, words: WordVectors) -> np.ndarray:
        """Unit vectors of the seen words that ``words`` knows, in sorted word order (cached per word table)."""
        cache = self.__dict__.setdefault("_seen_matrices", {})
        key = (id(words), self.seen_words)
        if key not in cache:
            known = [w for w in sorted(self.seen_words) if w in words]
            cache.clear()
            cache[key] = (unit_rows(np.stack([words.vector(w) for w in known])) if known
                          else np.zeros((0, words.dim), np.float32))
        return cache[key]

    def head_query(self, terms: list[tuple[float, str]], words: WordVectors) -> np.ndarray:
        """The query as the head should read it: a seen word as itself, an unseen one as its nearest seen words.

        The head learnt where the words of its targets point; for a word it never saw ("ocean") the best guess
        of where its photos landed is among the seen words nearest it (sea, whale, fish), weighted by cosine.
        """
        matrix = self.seen_matrix(words)
        total = np.zeros(words.dim, np.float32)
        for weight, word in terms:
            vec = words.unit(word)
            if len(matrix) and not self.trained_on(word, words):
                sims = matrix @ vec
                top = np.argsort(-sims, kind="stable")[:EXPANSION]
                blend_vec = np.clip(sims[top], 0.0, None) @ matrix[top]
                if float(np.linalg.norm(blend_vec)) > 1e-6:
                    vec = blend_vec / float(np.linalg.norm(blend_vec))
            total += float(weight) * vec
        norm = float(np.linalg.norm(total))
        return total / norm if norm > 1e-6 else words.combine([Term(w, t) for w, t in terms])

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


def class_word_matrix(class_names: list[str], words: WordVectors,
                      broader: Sequence[Sequence[Sequence[str]]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One unit word vector per class (its first synonym whose words are all known) and a mask of known classes.

    With ``broader`` (each class's WordNet hypernym chain) the vector is the name's and the nearest everyday
    broader word's, averaged: GloVe's ``alp`` is the Australian Labor Party, ``alp`` + ``mountain`` is a mountain.
    """
    matrix = np.zeros((len(class_names), words.dim), np.float32)
    known = np.zeros(len(class_names), bool)
    for i, name in enumerate(class_names):
        for phrase in class_phrases(name):
            parts = [p for p in phrase if p]
            if parts and all(p in words for p in parts):
                above = broader_word(words, broader[i]) if broader is not None else None
                matrix[i] = words.phrase(parts + [above] * len(parts) if above and above not in parts else parts)
                known[i] = True
                break
    return matrix, known


class ConSE:
    """Convex combination of semantic embeddings: Σ_top-T p(c|x)·v(c) / Σ p, over classes with a known word vector."""

    def __init__(self, class_vectors: np.ndarray, known: np.ndarray, top_t: int = 10) -> None:
        self.class_vectors = unit_rows(class_vectors)
        self.known = np.asarray(known, bool)
        if not self.known.any():
            raise ValueError("ConSE needs word vectors for at least one class name; these word vectors know none.")
        self.top_t = int(top_t)

    @classmethod
    def from_words(cls, class_names: list[str], words: WordVectors, top_t: int = 10, disambiguate: bool = True
                   ) -> ConSE:
        """Class vectors from their names; for ImageNet's classes also their WordNet broader word (``disambiguate``)."""
        broader = imagenet_broader(class_names) if disambiguate else None
        return cls(*class_word_matrix(class_names, words, broader), top_t=top_t)

    def embed(self, logits: np.ndarray, block: int = 16_384) -> np.ndarray:
        """Each row of ``logits`` in word space, ``block`` rows at a time: the float64 work holds about 31 KB per
        row, so a collection of any size costs a bounded amount of memory (the same embedding either way)."""
        logits = np.atleast_2d(logits)
        if len(logits) > block:
            return np.concatenate([self.embed(logits[i : i + block], block) for i in range(0, len(logits), block)])
        logits = np.asarray(logits, dtype=np.float64)
        logits = np.where(self.known[None, :], logits, -np.inf)  # classes without a word vector cannot vote
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        t = min(self.top_t, int(self.known.sum()))
        top = np.argpartition(-probs, t - 1, axis=1)[:, :t]
        weights = np.take_along_axis(probs, top, 1)
        emb = np.einsum("nt,ntd->nd", weights / weights.sum(1, keepdims=True), self.class_vectors[top])
        return unit_rows(emb)


def blend(head_embedding: np.ndarray, conse_embedding: np.ndarray, conse_mix: float) -> np.ndarray:
    """``(1-m)·head + m·ConSE`` on unit vectors, renormalised; m=0 is the head alone, m=1 ConSE alone."""
    return unit_rows((1.0 - conse_mix) * unit_rows(head_embedding) + conse_mix * unit_rows(conse_embedding))
