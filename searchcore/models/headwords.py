"""A head's word side: its served settings and how it reads a query's words, shared by the network
(:class:`searchcore.models.head.DeViSEHead`) and the torch-free view the engine serves
(:class:`searchcore.models.headview.HeadView`), so a head reads a query the same way whether or not its network is
loaded."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..index import unit_rows
from ..settings import ServedSettings
from .words import Term, WordVectors

EXPANSION = 5  # an unseen query word is read by the head as this many of its nearest seen words


class WordReading:
    """A head's served settings and its reading of words; the class using it holds the settings' attributes
    (set by :meth:`take_settings`) and ``seen_words``."""

    seen_words: frozenset[str]
    conse_mix: float
    unseen_conse_mix: float
    seen_similarity: float | None
    neighbour_mix: float
    word_mix: float
    class_mix: float
    unseen_class_mix: float
    exemplar_mix: float
    tag_conse_mix: float
    ood_distance: float | None

    @staticmethod
    def resolve(values: dict[str, Any]) -> ServedSettings:
        """The settings a head's ``config.json`` (or constructor arguments) hold: a missing ``tag_conse_mix`` or
        ``unseen_conse_mix`` is ``conse_mix`` (heads saved before those settings existed)."""
        given = {k: v for k, v in values.items() if v is not None or k in ("seen_similarity", "ood_distance")}
        for name in ("tag_conse_mix", "unseen_conse_mix"):
            given.setdefault(name, given.get("conse_mix", 0.0))
        return ServedSettings.from_dict(given)

    def take_settings(self, settings: ServedSettings) -> None:
        """Serve with ``settings`` (every value as a plain float, None kept for the two optional thresholds)."""
        for name, value in settings.to_dict().items():
            setattr(self, name, None if value is None else float(value))

    @property
    def settings(self) -> ServedSettings:
        """The settings this head serves with."""
        return ServedSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ServedSettings)})

    def trained_on(self, word: str, words: WordVectors | None = None) -> bool:
        """Was ``word`` (or its singular) in the head's training targets, or (with ``words``) near one of them?"""
        from ..text import singular

        forms = self.__dict__.get("_seen_forms")
        if forms is None or forms[0] is not self.seen_words:  # cached per seen-word set
            forms = (self.seen_words, frozenset(singular(w) for w in self.seen_words))
            self.__dict__["_seen_forms"] = forms
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
