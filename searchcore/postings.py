"""Per word, every photo a word signal speaks for: sparse photo × word tables that a query reads by its words.

Text → Image's word signals are per (photo, word) scores that depend on nothing but the photo and the word: the
classifier's mass below a word in WordNet (:mod:`searchcore.models.hierarchy`), a word's exemplars
(:mod:`searchcore.models.exemplars`) and the head's word classifier (:mod:`searchcore.models.wordclass`). Each is sparse
by definition: a probability below :data:`searchcore.models.hierarchy.MIN_PROBABILITY` counts as 0, and a photo has an
exemplar score only for the words of its nearest photos. So they are computed once, when the bundle's word-space
indexes are built (:func:`searchcore.build.write.rebuild_semantic`), and stored in ``postings.npz``: per word, *every*
photo with a score. A query reads its words' lists best first for candidates (:func:`list_sources`) and looks up
its candidates' scores by photo id (:func:`table_parts`): exactly what scoring every photo gives, at a cost that
does not grow with the collection. The file is memory-mapped, so loading reads none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .text import singular
from .topk import Source

if TYPE_CHECKING:
    from .models.exemplars import Exemplars
    from .models.headview import Head
    from .models.scoring import QueryParts
    from .models.wordclass import WordClassifier
    from .models.words import Term

#: Photos scored at once while a table is built (bounded memory for a large collection).
BLOCK = 4096
FILE = "postings.npz"
TABLES = ("hierarchy", "exemplars", "words")
#: The tables' layout: 3 = complete lists in photo-id order, and each list again best first (2 kept the best-first
#: order as positions into the id-ordered list, so every read gathered; 1 kept only each word's 2,048 best photos,
#: which a query could not score exactly).
VERSION = 3


@dataclass
class Postings:
    """Per word (``words``), its photos ``ids[offsets[w]:offsets[w+1]]`` in id order with their ``scores`` (a
    photo's score is looked up there), and the same list best first in ``top_ids``/``top_scores`` (from the highest
    score down; ties: the lower photo id first), which a query reads from the top: a slice, not a gather."""

    words: list[str]
    offsets: np.ndarray  # (len(words) + 1,) int64
    ids: np.ndarray  # int32, ascending within each list
    scores: np.ndarray  # float32
    top_ids: np.ndarray  # int32, each list best first
    top_scores: np.ndarray  # float32, likewise
    singular_first: bool = False  # how a query word finds its list: "dogs" → "dog" first, or the word as typed first
    _rows: dict[str, int] = field(default_factory=dict, repr=False)
    _arrays: tuple[np.ndarray, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        self._rows = {w: i for i, w in enumerate(self.words)}
        # the lists as plain arrays over the same memory: a slice of an np.memmap goes through Python (and a query
        # takes a hundred slices or more), a slice of an array does not; nothing is read here
        self._arrays = tuple(np.asarray(a) for a in (self.ids, self.scores, self.top_ids, self.top_scores))

    def row(self, word: str) -> int | None:
        """The list of ``word`` (or of its singular, in the order the signal reads words); None for none."""
        keys = (singular(word), word) if self.singular_first else (word, singular(word))
        return next((self._rows[k] for k in keys if k in self._rows), None)

    def _slice(self, row: int) -> slice:
        return slice(int(self.offsets[row]), int(self.offsets[row + 1]))

    def size(self, row: int) -> int:
        """How many photos the word of ``row`` has a score for."""
        return int(self.offsets[row + 1] - self.offsets[row])

    def top(self, row: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` photos with the highest scores for the word of ``row`` (int32 ids), and their scores, best
        first: views of the stored list."""
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        end = min(end, start + max(int(n), 0))
        return self._arrays[2][start:end], self._arrays[3][start:end]

    def scores_of(self, row: int, ids: np.ndarray) -> np.ndarray:
        """The scores of photos ``ids`` for the word of ``row``: 0 for a photo not on its list (it has none)."""
        part = self._slice(row)
        listed, scores = self._arrays[0][part], self._arrays[1][part]
        if not len(listed):
            return np.zeros(len(ids), np.float32)
        # the ids in the list's own type: with other keys (int64) numpy would first convert the whole list
        ids = np.asarray(ids).astype(listed.dtype, copy=False)
        at = np.minimum(np.searchsorted(listed, ids), len(listed) - 1)  # the list is in id order: one search each
        return np.where(listed[at] == ids, scores[at], 0.0).astype(np.float32)

    @property
    def entries(self) -> int:
        return len(self.ids)


def from_triples(words: Sequence[str], word: np.ndarray, photo: np.ndarray, score: np.ndarray,
                 singular_first: bool = False) -> Postings:
    """A table from (word index, photo id, score) triples, at most one per (word, photo)."""
    word, photo = np.asarray(word, np.int64), np.asarray(photo, np.int64)
    score = np.asarray(score, np.float32)
    by_id = np.lexsort((photo, word))  # each list in photo-id order
    word, photo, score = word[by_id], photo[by_id], score[by_id]
    counts = np.bincount(word, minlength=len(words))
    starts = np.concatenate([[0], np.cumsum(counts)])
    # best first within each list, ties by the lower id (as a stable ranking of every photo would)
    best_first = np.lexsort((photo, -score, word))
    # a word with no photo keeps its (empty) list: the signal knows the word and says no photo is it, as scoring
    # every photo would (a word with no list has no share in the score at all)
    return Postings(list(words), starts.astype(np.int64), photo.astype(np.int32), score,
                    photo[best_first].astype(np.int32), score[best_first], singular_first)


def dense_table(words: Sequence[str], score_block: Callable[[slice], np.ndarray], n_photos: int,
                singular_first: bool = False) -> Postings:
    """A table from a function that scores a block of photos (rows) for every word (columns); zeros are left out
    (a signal makes its own scores sparse: :func:`searchcore.models.hierarchy.sparse`)."""
    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for start in range(0, n_photos, BLOCK):
            block = np.asarray(score_block(slice(start, min(start + BLOCK, n_photos))), np.float32)
            rows, cols = np.nonzero(block > 0)
            yield cols, rows + start, block[rows, cols]

    parts = list(blocks())
    if not parts:
        return from_triples(words, np.zeros(0), np.zeros(0), np.zeros(0), singular_first)
    cols, photos, scores = (np.concatenate(x) for x in zip(*parts))
    return from_triples(words, cols, photos, scores, singular_first)


def hierarchy_table(logits: np.ndarray) -> Postings | None:
    """P(word | photo) = the CNN's probability mass on the ImageNet classes below the word, for every word WordNet
    places (:func:`searchcore.models.hierarchy.classes_below`), made sparse as the served score reads it; None for
    logits that are not ImageNet's 1000 classes."""
    from .models.hierarchy import IMAGENET_CLASSES, classes_below, log_normaliser, sparse

    below = classes_below()
    if np.ndim(logits) != 2 or np.shape(logits)[1] != IMAGENET_CLASSES or not below:
        return None
    words = sorted(below)
    membership = np.zeros((IMAGENET_CLASSES, len(words)), np.float32)
    for w, word in enumerate(words):
        membership[list(below[word]), w] = 1.0

    def score(part: slice) -> np.ndarray:
        z = np.asarray(logits[part], np.float32)
        return sparse(np.exp(z - log_normaliser(z)[:, None]) @ membership)

    return dense_table(words, score, len(logits))


def exemplar_table(exemplars: Exemplars) -> Postings:
    """Per word, each photo's cosine to its nearest photo named by the word among its nearest photos (only > 0)."""
    ids = np.asarray(exemplars.ids, np.int64)
    sims = np.asarray(exemplars.sims, np.float32)
    vocab = sorted({w for known in exemplars.words for w in known})
    column = {w: i for i, w in enumerate(vocab)}
    # each collection photo's words as one flat array (CSR), so a neighbour's words are read without a loop
    lengths = np.fromiter((len(k) for k in exemplars.words), np.int64, len(exemplars.words))
    flat = np.fromiter((column[w] for known in exemplars.words for w in sorted(known)), np.int64, int(lengths.sum()))
    starts = np.concatenate([[0], np.cumsum(lengths)])
    photo = np.repeat(np.arange(len(ids)), ids.shape[1]).reshape(ids.shape)
    keep = (ids >= 0) & (sims > 0)
    near, photo, sim = ids[keep], photo[keep], sims[keep]
    count = lengths[near]  # one (word, photo, cosine) per word of each neighbour
    firsts = np.cumsum(count) - count  # where each pair's words start in the expanded arrays
    word = flat[np.repeat(starts[near] - firsts, count) + np.arange(int(count.sum()))]
    photo, sim = np.repeat(photo, count), np.repeat(sim, count)
    # the nearest exemplar per (word, photo): the highest cosine of each pair
    order = np.lexsort((-sim, photo, word))
    word, photo, sim = word[order], photo[order], sim[order]
    first = np.ones(len(word), bool)
    first[1:] = (word[1:] != word[:-1]) | (photo[1:] != photo[:-1])
    return from_triples(vocab, word[first], photo[first], sim[first], singular_first=True)


def classifier_table(classifier: WordClassifier, features: np.ndarray) -> Postings:
    """P(word | photo) by the head's word classifier, for each of its words, made sparse as the served score reads
    it."""
    from .models.hierarchy import sparse
    from .models.wordclass import probabilities

    columns = list(range(len(classifier.vocab)))
    return dense_table(classifier.vocab, lambda part: sparse(probabilities(classifier, features[part], columns)),
                       len(features))


class PartTables(NamedTuple):
    """A bundle's tables, one per signal (None where the bundle has none)."""

    hierarchy: Postings | None = None
    exemplars: Postings | None = None
    words: Postings | None = None

    def save(self, path: Path) -> dict[str, dict[str, int]]:
        """Write every table to one uncompressed ``.npz`` (atomically), which :meth:`load` memory-maps; returns what
        the manifest records of them."""
        from .storage import atomic_path

        arrays: dict[str, np.ndarray] = {"version": np.asarray(VERSION, np.int64)}
        facts: dict[str, dict[str, int]] = {}
        for name, table in zip(TABLES, self):
            if table is None:
                continue
            arrays[f"{name}.words"] = np.asarray(table.words, dtype=str)
            arrays[f"{name}.offsets"] = np.asarray(table.offsets, np.int64)
            arrays[f"{name}.ids"] = np.asarray(table.ids, np.int32)
            arrays[f"{name}.scores"] = np.asarray(table.scores, np.float32)
            arrays[f"{name}.top_ids"] = np.asarray(table.top_ids, np.int32)
            arrays[f"{name}.top_scores"] = np.asarray(table.top_scores, np.float32)
            facts[name] = {"words": len(table.words), "entries": table.entries}
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        return facts

    @classmethod
    def load(cls, path: Path) -> PartTables:
        """The tables of ``path``, their long arrays memory-mapped (a large bundle's lists are read as queries
        touch them). Raises ValueError for tables of another layout."""
        from .storage import load_npz

        data = load_npz(path)
        version = int(data["version"]) if "version" in data else 1
        if version != VERSION:
            raise ValueError(f"layout {version}; this version reads layout {VERSION}")
        tables = []
        for name in TABLES:
            if f"{name}.words" not in data:
                tables.append(None)
                continue
            tables.append(Postings([str(w) for w in data[f"{name}.words"]], np.asarray(data[f"{name}.offsets"]),
                                   data[f"{name}.ids"], data[f"{name}.scores"], data[f"{name}.top_ids"],
                                   data[f"{name}.top_scores"],
                                   singular_first=name == "exemplars"))
        return cls(*tables)


def _weighted(table: Postings | None, terms: Sequence[Term], rows: Sequence[int | None], total: float,
              ids: np.ndarray) -> tuple[np.ndarray | None, float]:
    """``Σ w·score(word) / total`` over the terms with a list (``rows``), for photos ``ids``; and their share."""
    known = [(t.weight, r) for t, r in zip(terms, rows) if r is not None]
    if table is None or not known or total <= 0:
        return None, 0.0
    part = sum(w * table.scores_of(r, ids) for w, r in known) / total
    return np.asarray(part, np.float32), float(sum(abs(w) for w, _ in known) / total)


def query_rows(tables: PartTables, head: Head | None, terms: Sequence[Term]
               ) -> dict[str, list[int | None]]:
    """Per table the head gives weight to, each term's list (None: the word has none there)."""
    out: dict[str, list[int | None]] = {}
    if head is None:
        return out
    if tables.words is not None and head.word_mix > 0:
        out["words"] = [tables.words.row(t.word) for t in terms]
    if tables.hierarchy is not None and (head.class_mix > 0 or head.unseen_class_mix > 0):
        out["hierarchy"] = [tables.hierarchy.row(t.word) for t in terms]
    if tables.exemplars is not None and head.exemplar_mix > 0:
        out["exemplars"] = [tables.exemplars.row(t.word) for t in terms]
    return out


def part_rows(tables: PartTables, head: Head, terms: Sequence[Term], rows: dict[str, list[int | None]]
              ) -> dict[str, tuple[Postings | None, list[int | None]]]:
    """Per part of :class:`searchcore.models.scoring.QueryParts`, the table it reads and each term's list there (None:
    the term has no say in that part): the word classifier speaks for the words it knows, the class hierarchy for those
    (``seen_classes``) and for the others (``unseen_classes``), the exemplars for the words some photo is named by."""
    none = [None] * len(terms)
    known = rows.get("words", none)
    below = rows.get("hierarchy", none)
    return {"words": (tables.words, known),
            "seen_classes": (tables.hierarchy, [r if k is not None else None for r, k in zip(below, known)]),
            "unseen_classes": (tables.hierarchy, [r if k is None else None for r, k in zip(below, known)]),
            "exemplars": (tables.exemplars, rows.get("exemplars", none))}


def part_weights(parts: QueryParts, head: Head | None) -> dict[str, float]:
    """How much each part of ``parts`` (and the cosine) counts in the served score: the score is linear in them
    (:func:`searchcore.models.scoring.mixed_scores`), so each weight is the score of an item that has 1 there, 0
    elsewhere."""
    from .models.scoring import QueryParts, served_scores

    names = ("cosine", *QueryParts._fields)
    basis = np.eye(len(names), dtype=np.float32)
    unit = QueryParts(*((None if part is None else basis[i + 1], share) for i, (part, share) in enumerate(parts)))
    return dict(zip(names, (float(w) for w in served_scores(basis[0], unit, head)), strict=True))


def list_sources(tables: PartTables, head: Head, terms: Sequence[Term], rows: dict[str, list[int | None]],
                 weights: dict[str, float]) -> list[Source]:
    """Each list a query's part reads, as a :class:`searchcore.topk.Source` with its share of the score: a part is
    ``Σ w·score(word) / Σ|w|`` over its terms. A minus term's list is left out: its words only lower a score, so
    the bound without them still holds."""
    total = sum(abs(t.weight) for t in terms)
    out = []
    for name, (table, per_term) in part_rows(tables, head, terms, rows).items():
        if table is None or weights.get(name, 0.0) <= 0 or total <= 0:
            continue
        for term, row in zip(terms, per_term):
            if row is not None and term.weight > 0:
                out.append(Source(weights[name] * term.weight / total,
                                  lambda depth, table=table, row=row: table.top(row, depth)))
    return out


def table_parts(tables: PartTables, head: Head | None, terms: Sequence[Term], ids: np.ndarray,
                rows: dict[str, list[int | None]] | None = None) -> QueryParts:
    """:func:`searchcore.models.scoring.query_parts` for the photos ``ids``, read from the tables instead of computed:
    the same parts, shares and seen/unseen split (:func:`part_rows`). Equal to scoring every photo wherever the lists
    are complete."""
    from .models.scoring import NO_PARTS, QueryParts

    rows = query_rows(tables, head, terms) if rows is None else rows
    if head is None or not rows:
        return NO_PARTS
    total = sum(abs(t.weight) for t in terms)
    ids = np.asarray(ids, np.int64)
    parts = {name: _weighted(table, terms, per_term, total, ids)
             for name, (table, per_term) in part_rows(tables, head, terms, rows).items()}
    return QueryParts(parts["words"], parts["seen_classes"] if head.class_mix > 0 else (None, 0.0),
                      parts["unseen_classes"] if head.unseen_class_mix > 0 else (None, 0.0), parts["exemplars"])
