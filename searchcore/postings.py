"""Per word, the photos a signal scores highest: sparse photo × word tables that a query reads by its words.

Text → Image's signals that speak for single words are per (photo, word) scores that depend on nothing but the
photo and the word: the classifier's mass below a word in WordNet (:mod:`searchcore.hierarchy`), a word's exemplars
(:mod:`searchcore.exemplars`) and the head's word classifier (:mod:`searchcore.wordclass`). So they are computed
once, when the bundle's word-space indexes are built (:func:`searchcore.build.rebuild_semantic`), and stored as
posting lists in ``postings.npz``: per word, the photos that have a score, best first, at most :data:`LIMIT` of
them. A query takes candidates from its words' lists and reads the scores of its candidates there
(:func:`table_parts`), so its cost does not grow with the collection; a photo not on a list scores the list's floor
for that word: 0 when the list is complete, else the best score left off it. Up to :data:`LIMIT` photos, every
score is kept: the tables give exactly what scoring every photo would.
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
    from .exemplars import Exemplars
    from .head import DeViSEHead
    from .scoring import QueryParts
    from .wordclass import WordClassifier
    from .words import Term

#: The most photos a word's list keeps: far more than a query's candidates, few enough that a list is read at once.
LIMIT = 2048
#: Photos scored at once while a table is built (bounded memory for a large collection).
BLOCK = 4096
FILE = "postings.npz"
TABLES = ("hierarchy", "exemplars", "words")


@dataclass
class Postings:
    """Per word (``words``), its photos ``ids[offsets[w]:offsets[w+1]]`` with their ``scores``, best first."""

    words: list[str]
    offsets: np.ndarray  # (len(words) + 1,) int64
    ids: np.ndarray  # int64
    scores: np.ndarray  # float32
    floors: np.ndarray  # per word, the best score left off its list (0 when the list is complete)
    by_id: np.ndarray  # per list, the order of its entries by photo id (positions within the list)
    singular_first: bool = False  # how a query word finds its list: "dogs" → "dog" first, or the word as typed first
    _rows: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._rows = {w: i for i, w in enumerate(self.words)}

    def row(self, word: str) -> int | None:
        """The list of ``word`` (or of its singular, in the order the signal reads words); None for none."""
        keys = (singular(word), word) if self.singular_first else (word, singular(word))
        return next((self._rows[k] for k in keys if k in self._rows), None)

    def _slice(self, row: int) -> slice:
        return slice(int(self.offsets[row]), int(self.offsets[row + 1]))

    def top(self, row: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` photos with the highest scores for the word of ``row``, and their scores, best first."""
        part = self._slice(row)
        return self.ids[part][:n], self.scores[part][:n]

    def floor(self, row: int) -> float:
        """What a photo not on the list of ``row`` scores: 0 when the list holds every photo with a score, else
        the best score left off it (so a photo just past a long list's end is not taken for one with nothing)."""
        return float(self.floors[row])

    def scores_of(self, row: int, ids: np.ndarray) -> np.ndarray:
        """The scores of photos ``ids`` for the word of ``row``; :meth:`floor` for a photo not on its list."""
        part = self._slice(row)
        listed, scores = self.ids[part], self.scores[part]
        floor = self.floor(row)
        if not len(listed):
            return np.full(len(ids), floor, np.float32)
        order = self.by_id[part]  # sorted when the table was built: a look-up is one binary search per photo
        by_id = listed[order]
        at = np.minimum(np.searchsorted(by_id, ids), len(by_id) - 1)
        return np.where(by_id[at] == ids, scores[order][at], floor).astype(np.float32)

    @property
    def entries(self) -> int:
        return len(self.ids)


def _keep_best(ids: np.ndarray, scores: np.ndarray, limit: int, floor: float
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """The ``limit`` best of ``ids``/``scores``, and the floor raised to the best score left off."""
    if len(scores) <= limit:
        return ids, scores, floor
    order = np.argpartition(-scores, limit - 1)
    top, rest = order[:limit], order[limit:]
    return ids[top], scores[top], max(floor, float(scores[rest].max()))


def _column_tops(blocks: Iterator[tuple[np.ndarray, np.ndarray]], n_words: int, limit: int
                 ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Per column, the ``limit`` highest positive scores over blocks of rows ``(row ids, scores (rows × words))``,
    and the best score each column left off."""
    best_ids: list[np.ndarray] = [np.zeros(0, np.int64)] * n_words
    best: list[np.ndarray] = [np.zeros(0, np.float32)] * n_words
    floors = np.zeros(n_words, np.float32)
    for rows, block in blocks:
        for w in range(n_words):
            column = block[:, w]
            keep = column > 0
            if not keep.any():
                continue
            ids = np.concatenate([best_ids[w], rows[keep]])
            scores = np.concatenate([best[w], column[keep].astype(np.float32)])
            best_ids[w], best[w], floors[w] = _keep_best(ids, scores, limit, floors[w])
    return best_ids, best, floors


def _table(words: Sequence[str], ids: list[np.ndarray], scores: list[np.ndarray], singular_first: bool,
           floors: np.ndarray) -> Postings:
    """Lists sorted best first (ties: the lower photo id first, as a stable ranking of every photo would)."""
    kept = [w for w in range(len(words)) if len(ids[w])]
    out_ids, out_scores, offsets = [], [], [0]
    for w in kept:
        order = np.lexsort((ids[w], -scores[w]))
        out_ids.append(ids[w][order])
        out_scores.append(scores[w][order])
        offsets.append(offsets[-1] + len(order))
    empty = np.zeros(0, np.int64)
    return Postings([words[w] for w in kept], np.asarray(offsets, np.int64),
                    np.concatenate(out_ids) if out_ids else empty,
                    np.concatenate(out_scores) if out_scores else np.zeros(0, np.float32),
                    np.asarray([floors[w] for w in kept], np.float32),
                    np.concatenate([np.argsort(i, kind="stable") for i in out_ids]) if out_ids else empty,
                    singular_first)


def dense_table(words: Sequence[str], score_block: Callable[[slice], np.ndarray], n_photos: int,
                limit: int = LIMIT, singular_first: bool = False) -> Postings:
    """A table from a function that scores a block of photos (rows) for every word (columns)."""
    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, n_photos, BLOCK):
            part = slice(start, min(start + BLOCK, n_photos))
            yield np.arange(part.start, part.stop, dtype=np.int64), score_block(part)

    ids, scores, floors = _column_tops(blocks(), len(words), limit)
    return _table(words, ids, scores, singular_first, floors)


def hierarchy_table(logits: np.ndarray, limit: int = LIMIT) -> Postings | None:
    """P(word | photo) = the CNN's probability mass on the ImageNet classes below the word, for every word WordNet
    places (:func:`searchcore.hierarchy.classes_below`); None for logits that are not ImageNet's 1000 classes."""
    from .hierarchy import IMAGENET_CLASSES, classes_below, log_normaliser

    below = classes_below()
    if np.ndim(logits) != 2 or np.shape(logits)[1] != IMAGENET_CLASSES or not below:
        return None
    words = sorted(below)
    membership = np.zeros((IMAGENET_CLASSES, len(words)), np.float32)
    for w, word in enumerate(words):
        membership[list(below[word]), w] = 1.0

    def score(part: slice) -> np.ndarray:
        z = np.asarray(logits[part], np.float32)
        return np.exp(z - log_normaliser(z)[:, None]) @ membership

    return dense_table(words, score, len(logits), limit)


def exemplar_table(exemplars: Exemplars, limit: int = LIMIT) -> Postings:
    """Per word, each photo's cosine to its nearest photo known by the word among its nearest photos (only > 0)."""
    best: dict[str, dict[int, float]] = {}
    for photo, (near, sims) in enumerate(zip(exemplars.ids, exemplars.sims)):
        for j, sim in zip(near, sims):
            if j < 0 or sim <= 0:
                continue
            for word in exemplars.words[j]:
                row = best.setdefault(word, {})
                if sim > row.get(photo, 0.0):
                    row[photo] = float(sim)
    words = sorted(best)
    ids, scores, floors = [], [], np.zeros(len(words), np.float32)
    for w, word in enumerate(words):
        photos = np.fromiter(best[word], np.int64, len(best[word]))
        values = np.fromiter(best[word].values(), np.float32, len(best[word]))
        photos, values, floors[w] = _keep_best(photos, values, limit, 0.0)
        ids.append(photos)
        scores.append(values)
    return _table(words, ids, scores, True, floors)


def classifier_table(classifier: WordClassifier, features: np.ndarray, limit: int = LIMIT) -> Postings:
    """P(word | photo) by the head's word classifier, for each of its words."""
    from .wordclass import probabilities

    columns = list(range(len(classifier.vocab)))
    return dense_table(classifier.vocab, lambda part: probabilities(classifier, features[part], columns),
                       len(features), limit)


class PartTables(NamedTuple):
    """A bundle's tables, one per signal (None where the bundle has none)."""

    hierarchy: Postings | None = None
    exemplars: Postings | None = None
    words: Postings | None = None

    def save(self, path: Path) -> dict[str, dict[str, int]]:
        """Write every table to one ``.npz`` (atomically); returns what the manifest records of them."""
        from .storage import atomic_path

        arrays: dict[str, np.ndarray] = {}
        facts: dict[str, dict[str, int]] = {}
        for name, table in zip(TABLES, self):
            if table is None:
                continue
            arrays[f"{name}.words"] = np.asarray(table.words, dtype=str)
            arrays[f"{name}.offsets"] = table.offsets
            arrays[f"{name}.ids"] = table.ids.astype(np.int64)
            arrays[f"{name}.scores"] = table.scores.astype(np.float32)
            arrays[f"{name}.floors"] = np.asarray(table.floors, np.float32)
            arrays[f"{name}.by_id"] = np.asarray(table.by_id, np.int32)
            facts[name] = {"words": len(table.words), "entries": table.entries}
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        return facts

    @classmethod
    def load(cls, path: Path) -> PartTables:
        with np.load(path, allow_pickle=False) as data:
            tables = []
            for name in TABLES:
                if f"{name}.words" not in data:
                    tables.append(None)
                    continue
                tables.append(Postings([str(w) for w in data[f"{name}.words"]], data[f"{name}.offsets"],
                                       data[f"{name}.ids"], data[f"{name}.scores"], data[f"{name}.floors"],
                                       data[f"{name}.by_id"], singular_first=name == "exemplars"))
        return cls(*tables)


def _weighted(table: Postings | None, terms: Sequence[Term], rows: Sequence[int | None], total: float,
              ids: np.ndarray) -> tuple[np.ndarray | None, float]:
    """``Σ w·score(word) / total`` over the terms with a list (``rows``), for photos ``ids``; and their share."""
    known = [(t.weight, r) for t, r in zip(terms, rows) if r is not None]
    if table is None or not known or total <= 0:
        return None, 0.0
    part = sum(w * table.scores_of(r, ids) for w, r in known) / total
    return np.asarray(part, np.float32), float(sum(abs(w) for w, _ in known) / total)


def query_rows(tables: PartTables, head: DeViSEHead | None, terms: Sequence[Term]
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


def part_rows(tables: PartTables, head: DeViSEHead, terms: Sequence[Term], rows: dict[str, list[int | None]]
              ) -> dict[str, tuple[Postings | None, list[int | None]]]:
    """Per part of :class:`searchcore.scoring.QueryParts`, the table it reads and each term's list there (None: the
    term has no say in that part): the word classifier speaks for the words it knows, the class hierarchy for those
    (``seen_classes``) and for the others (``unseen_classes``), the exemplars for the words some photo is known by."""
    none = [None] * len(terms)
    known = rows.get("words", none)
    below = rows.get("hierarchy", none)
    return {"words": (tables.words, known),
            "seen_classes": (tables.hierarchy, [r if k is not None else None for r, k in zip(below, known)]),
            "unseen_classes": (tables.hierarchy, [r if k is None else None for r, k in zip(below, known)]),
            "exemplars": (tables.exemplars, rows.get("exemplars", none))}


def part_weights(parts: QueryParts, head: DeViSEHead | None) -> dict[str, float]:
    """How much each part of ``parts`` (and the cosine) counts in the served score: the score is linear in them
    (:func:`searchcore.scoring.mixed_scores`), so each weight is the score of an item that has 1 there, 0 elsewhere."""
    from .scoring import QueryParts, served_scores

    names = ("cosine", *QueryParts._fields)
    basis = np.eye(len(names), dtype=np.float32)
    unit = QueryParts(*((None if part is None else basis[i + 1], share) for i, (part, share) in enumerate(parts)))
    return dict(zip(names, (float(w) for w in served_scores(basis[0], unit, head)), strict=True))


def list_sources(tables: PartTables, head: DeViSEHead, terms: Sequence[Term], rows: dict[str, list[int | None]],
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
                                  lambda depth, table=table, row=row: table.top(row, depth), table.floor(row)))
    return out


def table_parts(tables: PartTables, head: DeViSEHead | None, terms: Sequence[Term], ids: np.ndarray,
                rows: dict[str, list[int | None]] | None = None) -> QueryParts:
    """:func:`searchcore.scoring.query_parts` for the photos ``ids``, read from the tables instead of computed: the
    same parts, shares and seen/unseen split (:func:`part_rows`). Equal to scoring every photo wherever the lists
    are complete."""
    from .scoring import NO_PARTS, QueryParts

    rows = query_rows(tables, head, terms) if rows is None else rows
    if head is None or not rows:
        return NO_PARTS
    total = sum(abs(t.weight) for t in terms)
    ids = np.asarray(ids, np.int64)
    parts = {name: _weighted(table, terms, per_term, total, ids)
             for name, (table, per_term) in part_rows(tables, head, terms, rows).items()}
    return QueryParts(parts["words"], parts["seen_classes"] if head.class_mix > 0 else (None, 0.0),
                      parts["unseen_classes"] if head.unseen_class_mix > 0 else (None, 0.0), parts["exemplars"])
