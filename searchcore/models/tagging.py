"""Image → Tags: a vocabulary of things you can see, and the rule that ranks its phrases for one photo.

The tag vocabulary (:func:`build_tag_vocabulary`) is made for images, not taken from the most frequent words of
the word vectors (which put political parties, place names and function words among a snow scene's tags):

* every ImageNet class name whose words the vectors know (``goldfish``, ``prayer rug``, ``acoustic guitar``);
* the broader WordNet words above each class (goldfish → fish → animal), from the packaged
  ``searchcore/data/visual_vocab.json`` (:mod:`searchcore.models.wordnet`), so no WordNet install is needed to serve;
* WordNet's nouns for things you can see (animals, artefacts, food, plants, objects, people, substances), kept
  when they are everyday words (among the :data:`COMMON` most frequent words of the vectors);
* the collection's labels and the content words of its captions that name things you can see (WordNet's visible
  nouns, and the untagged nouns with a visible sense, such as ``wrench``, which a caption disambiguates).

:func:`rank_tags` ranks phrases by cosine distance to the photo's word-space embedding; when the backbone's own
classifier is confident (softmax ≥ :data:`CONFIDENT`), that class's word and an everyday broader word lead, then
the names of its probable classes (:class:`TagRule`: a floor for collection photos, another for photos from
outside the collection, both chosen on validation photos).
The vocabulary is saved in the bundle (``tags.json``) beside the ``tags`` index built over its phrase vectors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import storage
from ..index import unit_rows
from ..text import STOP_WORDS, content_words, singular
from .classnames import EVERYDAY, broader_word, class_phrases
from .words import WordVectors

if TYPE_CHECKING:
    from .wordnet import VisualVocab

COMMON = 40_000  # WordNet nouns and broader words: only everyday words (this many most frequent GloVe words)
RARE = 100_000  # an ImageNet class phrase: each word among this many most frequent (drops Latin binomials)
CLASSES = 3  # the classifier's most probable classes that may name a photo
NEIGHBOUR_TAGS = 2  # at most this many tags come from the captions of near collection photos
NAMES = 3  # a confident class leads with at most this many of its names ("porcupine", "hedgehog"), then a broader
CONFIDENT = 0.5  # a softmax this high is the classifier saying it knows: its class's words lead the tags


@dataclass
class TagVocabulary:
    """Tag phrases (index ids are positions), and per ImageNet class the ids of its own and its broader phrase."""

    phrases: list[str]
    class_tags: list[list[int]]  # per class: ids of up to NAMES of its names, in ImageNet's order
    class_broader: list[int] = field(default_factory=list)  # per class: id of its everyday broader word, or -1
    sources: dict[str, int] = field(default_factory=dict)  # how many phrases each source added

    def vectors(self, words: WordVectors) -> np.ndarray:
        """Unit phrase vectors (mean of the words' unit vectors), in phrase order."""
        return unit_rows(np.stack([words.phrase(p.split()) for p in self.phrases]))

    def to_json(self) -> dict:
        return {"phrases": self.phrases, "class_tags": self.class_tags, "class_broader": self.class_broader,
                "sources": self.sources}

    def save(self, path: Path) -> None:
        storage.write_text(path, json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: Path) -> TagVocabulary:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        class_tags = [list(map(int, t)) for t in data["class_tags"]]
        broader = [int(b) for b in data.get("class_broader", [-1] * len(class_tags))]
        return cls(list(data["phrases"]), class_tags, broader, dict(data.get("sources", {})))


GLUE = frozenset({"a", "an", "and", "the", "of", "or", "in", "on", "for", "to", "with", "by", "at", "from"})


def _rank(words: WordVectors, word: str) -> int:
    """The word's frequency rank in the vectors (GloVe's order is frequency order); unknown words rank last."""
    return words.id(word) if word in words else len(words)


def _known(words: WordVectors, phrase: Sequence[str], limit: int) -> bool:
    """Every word known and common enough, and no function word ("piece of cloth", "bird of night" are not tags)."""
    if len(phrase) == 1 and phrase[0] in STOP_WORDS:  # alone, "can" or "well" reads as a function word
        return False
    return bool(phrase) and all(w.isalpha() and w.isascii() and w not in GLUE and w in words
                                and _rank(words, w) < limit for w in phrase)


def caption_nouns(visual: object | None) -> set[str]:
    """The words a collection caption may contribute as things you can see (tags, training targets): the visual
    nouns, and the untagged nouns with a visible sense, whose meaning the caption settles ("A wrench.")."""
    return set(getattr(visual, "nouns", ()) or ()) | set(getattr(visual, "caption_nouns", ()) or ())


def packaged_visual_vocab() -> VisualVocab | None:
    """The packaged WordNet data, or None when this checkout lacks it (tags then come from class names)."""
    try:
        from .wordnet import load_visual_vocab

        return load_visual_vocab()
    except (ImportError, OSError, ValueError):
        return None


def build_tag_vocabulary(
    words: WordVectors,
    class_names: Sequence[str],
    labels: Sequence[str] = (),
    captions: Sequence[str] = (),
    visual: object | None = None,
    *,
    use_wordnet: bool = True,
) -> TagVocabulary:
    """The tag phrases for a bundle (see the module docstring); ``visual`` defaults to the packaged WordNet data."""
    from .words import label_words

    visual = visual if visual is not None or not use_wordnet else packaged_visual_vocab()
    phrases: list[str] = []
    ids: dict[str, int] = {}
    sources: dict[str, int] = {}

    def add(parts: Sequence[str], source: str) -> int | None:
        text = " ".join(parts)
        if text not in ids:
            ids[text] = len(phrases)
            phrases.append(text)
            sources[source] = sources.get(source, 0) + 1
        return ids[text]

    classes = list(getattr(visual, "imagenet", []) or [])
    noun_set = set(getattr(visual, "nouns", []) or [])
    caption_set = caption_nouns(visual)
    chains = [c.broader for c in classes] if len(classes) == len(class_names) else [()] * len(class_names)
    class_tags: list[list[int]] = []
    class_broader: list[int] = []
    for name, chain in zip(class_names, chains):
        own = [add(p, "imagenet") for p in class_phrases(name) if _known(words, p, RARE)]
        for level in chain:
            for lemma in level:
                parts = lemma.split()
                # a broader phrase of several words must be all nouns: "hand tool", not "soft goods"
                if _known(words, parts, COMMON) and (len(parts) == 1 or all(p in noun_set for p in parts)):
                    add(parts, "broader")
        above = broader_word(words, chain, EVERYDAY)
        class_tags.append(own[:NAMES])
        class_broader.append(add([above], "broader") if above and own and _known(words, [above], COMMON) else -1)
    for noun in getattr(visual, "nouns", []) or []:
        if _known(words, [noun], COMMON):
            add([noun], "nouns")
    for label in sorted(set(labels)):
        parts = label_words(label, words)
        if parts:
            add(parts, "labels")
    for word in sorted(content_words(captions, lambda w: w in words)):
        # with WordNet, a caption word joins only when it names a thing you can see
        if not caption_set or word in caption_set or singular(word) in caption_set:
            add([word], "captions")
    return TagVocabulary(phrases, class_tags, class_broader, sources)


@dataclass(frozen=True)
class TagRule:
    """How Image→Tags is served beyond the nearest words (chosen on validation items when a head is trained).

    ``class_min_prob``: the classifier's top classes at least this probable name the photo (None: only a
    confident class). ``neighbour_distance``: collection photos this near vote with their captions (None: off).
    ``unseen_class_min_prob``: the same floor for a photo Image→Tags embeds by ConSE alone (farther than the head's
    ``ood_distance`` from every collection photo, :func:`searchcore.models.conse.conse_only`). Its own floor, because
    there the words nearest the embedding compete with weaker words: ConSE's embedding is the probability-weighted
    mean of the top classes' vectors, so its nearest words are what those classes share ("tools", "device"),
    while a less probable class's own name still says something specific.
    """

    class_min_prob: float | None = None
    neighbour_distance: float | None = None
    unseen_class_min_prob: float | None = None

    def min_prob(self, unseen: bool) -> float | None:
        """The classifier's probability floor for a photo; ``unseen``: embedded by ConSE alone."""
        return self.unseen_class_min_prob if unseen else self.class_min_prob

    @classmethod
    def from_manifest(cls, manifest: dict) -> TagRule:
        serving = manifest.get("serving", {})
        floor = serving.get("class_min_prob")
        # a bundle trained before the unseen-photo floor was chosen served every photo with the one floor
        return cls(floor, serving.get("neighbour_distance"), serving.get("unseen_class_min_prob", floor))

    def to_dict(self) -> dict[str, float | None]:
        """The manifest's ``serving`` fields (:meth:`from_manifest` reads them back)."""
        return {"class_min_prob": self.class_min_prob, "neighbour_distance": self.neighbour_distance,
                "unseen_class_min_prob": self.unseen_class_min_prob}


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]  # (query, k) → (ids, cosine distances)


def item_tags(vocab: TagVocabulary, labels: Sequence[str], captions: Sequence[Sequence[str]],
              words: WordVectors) -> list[list[int]]:
    """Per collection item, the ids of the tags its label and captions give it (caption words the vocabulary has)."""
    lazy = ItemTags(vocab, words, lambda i: (labels[i], captions[i]), len(labels))
    return [lazy[i] for i in range(len(labels))]


class ItemTags:
    """:func:`item_tags` of one item at a time (``describe(i)``: its label and captions), computed when a photo's
    neighbour first needs it: loading a bundle reads no caption, and a collection of any size costs only the items
    that ever vote."""

    def __init__(self, vocab: TagVocabulary, words: WordVectors,
                 describe: Callable[[int], tuple[str, Sequence[str]]], count: int) -> None:
        self._vocab, self._words, self._describe, self._count = vocab, words, describe, count
        self._known: dict[int, list[int]] = {}

    @cached_property
    def _index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self._vocab.phrases)}

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, item: int) -> list[int]:
        from .words import label_words

        found = self._known.get(item)
        if found is None:
            label, texts = self._describe(item)
            phrases = [" ".join(label_words(label, self._words) or []), *content_words(texts)]
            found = self._known[item] = list(dict.fromkeys(self._index[w] for w in phrases if w in self._index))
        return found


def neighbour_tags(ids: Sequence[int], distances: Sequence[float], per_item: Sequence[Sequence[int]],
                   max_distance: float | None) -> list[int]:
    """Tags voted for by the collection photos nearer than ``max_distance``, each vote weighted by 1 − distance.

    Tag transfer by neighbour voting: a hammer photo next to the collection's "A hammer." gets "hammer", which
    neither the classifier (can opener) nor a head trained on the label "tools" says.
    """
    if max_distance is None:
        return []
    votes: dict[int, float] = {}
    for item, d in zip(ids, distances):
        if d <= max_distance:
            for tag in per_item[int(item)]:
                votes[tag] = votes.get(tag, 0.0) + 1.0 - float(d)
    return sorted(votes, key=lambda t: (-votes[t], t))


def classifier_tags(logits: np.ndarray, vocab: TagVocabulary, min_prob: float | None) -> list[int]:
    """What the backbone's own classifier says, as tag ids, most probable first.

    A confident top class (softmax ≥ :data:`CONFIDENT`) gives its names and its everyday broader word
    ("porcupine", "hedgehog", "animal"); then each of the top :data:`CLASSES` classes at least ``min_prob``
    probable gives its first name (``None``: only the confident rule). ``min_prob`` is :meth:`TagRule.min_prob`:
    a photo from outside the collection has a floor of its own.
    """
    probs = softmax(np.asarray(logits, np.float64))
    order = np.argsort(-probs, kind="stable")[:CLASSES]
    out: list[int] = []
    top = int(order[0])
    if probs[top] >= CONFIDENT and top < len(vocab.class_tags):
        out += vocab.class_tags[top]
        if top < len(vocab.class_broader) and vocab.class_broader[top] >= 0:
            out.append(vocab.class_broader[top])
    if min_prob is not None:
        out += [vocab.class_tags[c][0] for c in map(int, order)
                if probs[c] >= min_prob and c < len(vocab.class_tags) and vocab.class_tags[c]]
    return list(dict.fromkeys(out))


def rank_tags(embedding: np.ndarray, search: Search, vectors_of: Callable[[list[int]], np.ndarray],
              vocab: TagVocabulary, k: int, lead: Sequence[int] = (), neighbours: Sequence[int] = ()
              ) -> list[tuple[int, float]]:
    """The ``k`` best tag ids with cosine distances to ``embedding``.

    Order: ``lead`` (:func:`classifier_tags`), then up to :data:`NEIGHBOUR_TAGS` words of near collection photos
    (``neighbours``, :func:`neighbour_tags`), then the single words nearest the embedding. Phrases of several
    words come only from the classifier: ranked by distance, "mountain tent" and "bernese mountain dog" would
    crowd out "snow" behind "mountain". A vote or a nearest word that an earlier tag already says in another
    number ("tool" after "tools") is left out: the slot goes to a word that says something else.
    """
    lead = list(dict.fromkeys(lead))
    taken = {_word_form(vocab.phrases[t]) for t in lead}
    voted = _fresh([t for t in neighbours if t not in lead], vocab, taken)[:NEIGHBOUR_TAGS]
    first = [*lead, *voted]
    taken |= {_word_form(vocab.phrases[t]) for t in voted}
    n = 4 * k + 8
    while True:  # fetch more neighbours until enough single words are among them (or the vocabulary runs out)
        ids, dists = search(embedding, n)
        distance = dict(zip(map(int, ids), map(float, dists)))
        singles = [i for i in distance if " " not in vocab.phrases[i]]
        ranked = [(i, distance[i]) for i in _fresh(singles, vocab, taken)][: k + 4]
        if len(ranked) >= k + 4 or len(ids) < n or n >= len(vocab.phrases):
            break
        n *= 4
    if first:
        first_d = 1.0 - vectors_of(first) @ unit_rows(embedding[None])[0]
        ranked = [(i, float(max(d, 0.0))) for i, d in zip(first, first_d)] + ranked
    return ranked[:k]


def _word_form(phrase: str) -> tuple[str, ...]:
    """A phrase up to number: "birds" and "bird" are one tag."""
    return tuple(singular(w) for w in phrase.split())


def _fresh(tags: Sequence[int], vocab: TagVocabulary, taken: set[tuple[str, ...]]) -> list[int]:
    """``tags`` in order, less each one that ``taken`` or an earlier one already says in another number: "tool"
    after "tools" (and "birds" after "bird") fills a slot a word that says something else could take."""
    seen, out = set(taken), []
    for t in tags:
        form = _word_form(vocab.phrases[t])
        if form not in seen:
            seen.add(form)
            out.append(t)
    return out


def exact_search_fn(vectors: np.ndarray) -> tuple[Search, Callable[[list[int]], np.ndarray]]:
    """``rank_tags``'s two callbacks over an in-memory matrix of unit phrase vectors (evaluation, tests)."""

    def search(query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        sims = vectors @ unit_rows(query[None])[0]
        top = np.argsort(-sims, kind="stable")[:k]
        return top, 1.0 - sims[top]

    return search, lambda ids: vectors[ids]


def is_function_word(phrase: str) -> bool:
    return any(w in STOP_WORDS for w in phrase.split())
