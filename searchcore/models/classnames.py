"""ImageNet class names as words: their synonyms, and the everyday WordNet word above each class.

Torch-free, so the tag vocabulary (:mod:`searchcore.models.tagging`) and the bundle reader that loads it stay light;
:class:`searchcore.models.conse.ConSE` and the tag vocabulary both read classes through these.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .words import WordVectors


def class_phrases(description: str) -> list[list[str]]:
    """ImageNet descriptions hold synonyms: ``"tabby, tabby cat"`` → ``[["tabby"], ["tabby", "cat"]]``."""
    return [re.split(r"[\s\-_']+", syn.strip().lower()) for syn in description.split(",") if syn.strip()]


EVERYDAY = 20_000  # a broader word must be among this many most frequent words: "fish", not "cyprinid"


def broader_word(words: WordVectors, chain: Sequence[Sequence[str]], limit: int = EVERYDAY) -> str | None:
    """The nearest single everyday word above a class in WordNet (goldfish → fish, alp → mountain), or None."""
    for level in chain:
        for lemma in level:
            if lemma.isalpha() and lemma.isascii() and lemma in words and words.id(lemma) < limit:
                return lemma
    return None


def imagenet_broader(class_names: Sequence[str]) -> list[Sequence[Sequence[str]]] | None:
    """The packaged WordNet chains of the 1000 ImageNet classes, when ``class_names`` are those classes.

    A missing or damaged packaged vocabulary raises (:func:`searchcore.models.wordnet.load_visual_vocab` says how to
    regenerate it) rather than quietly giving ConSE vaguer class vectors."""
    from .wordnet import load_visual_vocab

    classes = load_visual_vocab().imagenet
    return [c.broader for c in classes] if len(classes) == len(class_names) else None
