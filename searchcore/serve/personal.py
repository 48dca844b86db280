"""A visitor's own photos: a small private collection per session, and the bounded store that holds them.

:class:`PersonalCollection` keeps, per photo, the name the visitor gave it, its label (a zip's class folder, or
none), the file under the collection's own temporary folder, the backbone's features and logits, and the photo in
word space (ConSE, and the head's embedding). Searches over it are exact matrix products: a few hundred rows, where
an approximate index would only add build time. :meth:`searchcore.serve.engine.SearchEngine.add_images` fills it with
the engine's shared backbone, and the engine's searches take it as ``collection=`` (one code path for the served
collection and a visitor's).

When the photos carry at least two labels with two photos each, :func:`train_own_head` trains a DeViSE head on
them with the same code as ``python -m training.train_devise`` (:func:`searchcore.models.fit.train_head`, one torch
thread, a small epoch budget) and measures it against ConSE on its test photos with :mod:`searchcore.quality.metrics`.

:class:`CollectionStore` bounds it all: photos and bytes per collection, live collections per server (a new one is
refused while the server is full; none is evicted for it), an idle timeout; a dropped collection's folder is deleted.
A collection is made by an upload only, never by a search, and an upload that adds nothing leaves none behind.
Limits come from arguments or the environment (``SEARCH_MY_MAX_PHOTOS``, ``SEARCH_MY_MAX_MB``,
``SEARCH_MY_MAX_COLLECTIONS``, ``SEARCH_MY_IDLE_MINUTES``).
"""

from __future__ import annotations

import math
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..errors import NO_PHOTOS_YET, EmptyCollectionError, LimitError
from ..tempfiles import delete_file

if TYPE_CHECKING:
    from ..models.exemplars import Exemplars
    from ..models.head import DeViSEHead
    from ..models.words import WordVectors

#: The own head's training budget: the recipe of train_devise, with fewer epochs so it takes seconds in a request.
OWN_HEAD_EPOCHS = 40
OWN_HEAD_PATIENCE = 8
# the word classifier's share of a trained word (searchcore.models.wordclass), the class hierarchy's of a word WordNet
# places (searchcore.models.hierarchy) and the exemplars' of a label word (searchcore.models.exemplars): halfway, as a
# visitor's few photos are too few to choose them on
OWN_WORD_MIX = 0.5
OWN_CLASS_MIX = 0.5
OWN_EXEMPLAR_MIX = 0.5


class PersonalItem(NamedTuple):
    name: str  # the file name as the visitor uploaded it (a zip entry: its base name)
    label: str  # "" when unlabelled
    path: Path  # the stored copy, in the collection's folder


@dataclass
class OwnHead:
    """A head trained on a visitor's labelled photos, and what was measured of it."""

    head: DeViSEHead | None
    figures: dict[str, Any]  # trained, why (when not), labels, photos, seconds, text_image_p10 per ranker


class PersonalCollection:
    """One visitor's photos and their vectors; every change holds :attr:`lock`."""

    def __init__(self, folder: Path, feature_dim: int, num_classes: int, word_dim: int,
                 max_photos: int, max_bytes: int) -> None:
        self.folder, self.max_photos, self.max_bytes = folder, max_photos, max_bytes
        self.items: list[PersonalItem] = []
        self.features = np.zeros((0, feature_dim), np.float32)
        self.logits = np.zeros((0, num_classes), np.float32)
        self.conse = np.zeros((0, word_dim), np.float32)  # ConSE embeddings, unit rows
        self.nearest = np.zeros(0, np.float32)  # cosine distance to the served collection's nearest photo
        self.semantic = np.zeros((0, word_dim), np.float32)  # the serving head's embeddings (ConSE where none fits)
        self.own: OwnHead | None = None
        # with an own head: each photo's nearest labelled photos of the collection (searchcore.models.exemplars)
        self.exemplars: Exemplars | None = None
        self.nbytes = 0
        # the visitor's query photos as the server received them (searched with, not added): they go with the
        # collection, so clearing it leaves no copy of any photo of theirs
        self.query_files: set[Path] = set()
        self.lock = threading.RLock()
        self.last_used = time.monotonic()
        self.busy = 0
        self._serial = 0

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> list[str]:
        return sorted({it.label for it in self.items if it.label})

    @property
    def room(self) -> tuple[int, int]:
        """(photos, bytes) that may still be added."""
        return max(self.max_photos - len(self.items), 0), max(self.max_bytes - self.nbytes, 0)

    def store(self, name: str, data: bytes) -> Path:
        """Write one photo's bytes into the collection's folder, under a safe name that keeps the visitor's."""
        self._serial += 1
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name)[-80:].lstrip(".") or "photo"
        folder = self.folder / f"{self._serial:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / safe
        path.write_bytes(data)
        return path

    def append(self, items: list[PersonalItem], features: np.ndarray, logits: np.ndarray, conse: np.ndarray,
               nearest: np.ndarray, nbytes: int) -> None:
        self.items += items
        self.features = np.concatenate([self.features, features.astype(np.float32)])
        self.logits = np.concatenate([self.logits, logits.astype(np.float32)])
        self.conse = np.concatenate([self.conse, conse.astype(np.float32)])
        self.nearest = np.concatenate([self.nearest, nearest.astype(np.float32)])
        self.nbytes += nbytes

    def remove(self, ids: Sequence[int]) -> int:
        """Drop the photos ``ids`` (rows), their files too; returns how many were removed."""
        gone = {int(i) for i in ids if 0 <= int(i) < len(self.items)}
        if not gone:
            return 0
        keep = np.array([i not in gone for i in range(len(self.items))], bool)
        for i in sorted(gone):
            path = self.items[i].path
            self.nbytes -= path.stat().st_size if path.is_file() else 0
            shutil.rmtree(path.parent, ignore_errors=True)
        self.items = [it for it, k in zip(self.items, keep) if k]
        self.features, self.logits = self.features[keep], self.logits[keep]
        self.conse, self.nearest = self.conse[keep], self.nearest[keep]
        self.semantic = self.semantic[keep] if len(self.semantic) == len(keep) else self.semantic
        return len(gone)

    def clear(self) -> int:
        """Remove every photo and the own head; returns how many photos there were."""
        n = self.remove(range(len(self.items)))
        self.own, self.nbytes = None, 0
        return n

    def discard(self) -> None:
        """Delete the folder and the query photos for good (the store forgets the collection)."""
        with self.lock:
            self.clear()
            shutil.rmtree(self.folder, ignore_errors=True)
            for path in self.query_files:
                delete_file(path)  # the query photo's upload folder goes with it
            self.query_files.clear()

    def summary(self) -> dict[str, Any]:
        counts = Counter(it.label for it in self.items if it.label)
        return {"photos": len(self.items), "megabytes": round(self.nbytes / 1e6, 2),
                "labels": dict(sorted(counts.items())),
                "limits": {"photos": self.max_photos, "megabytes": round(self.max_bytes / 1e6, 2)},
                "head": dict(self.own.figures) if self.own is not None else {"trained": False,
                                                                            "why": _why_no_head(counts)}}


def _why_no_head(counts: Counter) -> str:
    return ("no head is trained: that needs photos of at least two labels, two photos each (upload a .zip of class "
            f"folders); these photos have {sum(1 for n in counts.values() if n >= 2)} such labels, so searches by "
            "words use the served head where your photos look like its collection, ConSE elsewhere")


def label_word_sets(labels: Sequence[str], words: WordVectors) -> list[set[str]]:
    """Per photo, the words of its label (none for an unlabelled photo): what makes it an exemplar of a word."""
    from ..models.wordclass import item_word_sets

    return item_word_sets(list(labels), [()] * len(labels), words)


def collection_exemplars(collection: PersonalCollection, words: WordVectors) -> Exemplars:
    """Every photo's nearest labelled photos of the collection, itself included (served, its own label counts)."""
    from ..models.exemplars import nearest_photos

    labels = [it.label for it in collection.items]
    labelled = np.array([i for i, lab in enumerate(labels) if lab], np.int64)
    return nearest_photos(collection.features, np.arange(len(labels)), labelled, label_word_sets(labels, words))


def train_own_head(collection: PersonalCollection, words: WordVectors, backbone: str) -> OwnHead:
    """Train a head on the labelled photos (labels with two or more photos) and measure it against ConSE.

    The same :func:`searchcore.models.fit.train_head` as ``train_devise`` (stratified train/validation/test split, early
    stopping, refits), with :data:`OWN_HEAD_EPOCHS`. Figures: Text → Image precision@10 of each label's words over
    the test photos, for ConSE, the head alone and the served mix. Words the head was trained on lean on the head,
    others on ConSE.
    """
    from ..models.exemplars import nearest_photos
    from ..models.fit import TrainConfig, train_head
    from ..quality.metrics import finite, label_queries, mean, query_precision, rankers
    from ..settings import ServedSettings

    counts = Counter(it.label for it in collection.items if it.label)
    usable = sorted(lab for lab, n in counts.items() if n >= 2)
    if len(usable) < 2:
        return OwnHead(None, {"trained": False, "why": _why_no_head(counts)})
    rows = np.array([i for i, it in enumerate(collection.items) if it.label in usable], np.int64)
    labels = [collection.items[i].label for i in rows]
    config = TrainConfig(epochs=OWN_HEAD_EPOCHS, patience=OWN_HEAD_PATIENCE)
    try:
        result = train_head(collection.features[rows], labels, words, config, backbone=backbone)
    except ValueError as exc:  # e.g. labels that are no words of the vocabulary
        return OwnHead(None, {"trained": False, "why": f"no head is trained: {exc}"})
    # seen words lean on the head alone, others on ConSE alone, the word classifier and the class hierarchy take
    # half of the words they know: there are too few photos here to choose finer settings on
    own = ServedSettings(unseen_conse_mix=1.0, word_mix=OWN_WORD_MIX, class_mix=OWN_CLASS_MIX,
                         unseen_class_mix=OWN_CLASS_MIX, exemplar_mix=OWN_EXEMPLAR_MIX)
    result.measured.set_serving(own, seen_words=result.seen_words)
    pool = result.split.test if len(result.split.test) else result.split.val
    conse_rows = collection.conse[rows]
    # the measured photos' exemplars are the photos the measured head was trained on, never each other
    known = np.setdiff1d(np.arange(len(rows)), pool)
    exemplars = nearest_photos(collection.features[rows], np.arange(len(rows)), known, label_word_sets(labels, words))
    ranked = rankers(conse_rows, result.measured.embed(collection.features[rows]), result.measured, words=words,
                     features=collection.features[rows], logits=collection.logits[rows], exemplars=exemplars)
    queries = label_queries(labels, pool, result.labels, words)
    p10 = {name: finite(mean(query_precision(rank, pool, queries, words, 10).values()))
           for name, rank in ranked.items()}
    served = result.final or result.measured
    served.set_serving(own, seen_words=result.final_seen_words or result.seen_words)
    return OwnHead(served, {"trained": True, "labels": result.labels, "photos": len(rows),
                            "test_photos": len(pool), "seconds": round(result.seconds, 2),
                            "best_epoch": result.best_epoch, "text_image_p10": p10})


# ---- the store ------------------------------------------------------------------------------------------------------
def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(float(os.environ.get(name, default))))
    except ValueError:
        return default


@dataclass
class Limits:
    max_photos: int = 200
    max_bytes: int = 100_000_000
    max_collections: int = 32
    idle_seconds: float = 1800.0

    @classmethod
    def from_env(cls) -> Limits:
        d = cls()
        return cls(_env_int("SEARCH_MY_MAX_PHOTOS", d.max_photos),
                   _env_int("SEARCH_MY_MAX_MB", d.max_bytes // 1_000_000) * 1_000_000,
                   _env_int("SEARCH_MY_MAX_COLLECTIONS", d.max_collections),
                   60.0 * _env_int("SEARCH_MY_IDLE_MINUTES", int(d.idle_seconds // 60)))


@dataclass
class CollectionStore:
    """The live private collections, by session key; bounded by :class:`Limits`. Thread-safe."""

    feature_dim: int
    num_classes: int
    word_dim: int
    limits: Limits = field(default_factory=Limits.from_env)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="search-my-photos-")))

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._collections: OrderedDict[str, PersonalCollection] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._sweeper: threading.Thread | None = None

    def _start_sweeper(self) -> None:
        """Sweep in the background too, so a collection nobody touches again still goes after the timeout."""
        if self._sweeper is None:
            every = max(1.0, min(60.0, self.limits.idle_seconds / 4))

            def run() -> None:
                while not self._closed.wait(every):
                    self.sweep()

            self._sweeper = threading.Thread(target=run, name="my-photos-sweeper", daemon=True)
            self._sweeper.start()

    def __len__(self) -> int:
        return len(self._collections)

    def peek(self, key: str) -> PersonalCollection | None:
        """The collection of ``key`` if it exists (no new one)."""
        self.sweep()
        with self._lock:
            found = self._collections.get(key)
            if found is not None:
                found.last_used = time.monotonic()
                self._collections.move_to_end(key)
            return found

    @contextmanager
    def using(self, key: str, create: bool = False) -> Iterator[PersonalCollection]:
        """The collection of ``key``; it counts as busy until the block ends.

        Only an upload passes ``create``: a search of a session that has no collection raises
        :class:`EmptyCollectionError` and takes no room, so requests that never upload cannot crowd out those that
        did. A new collection is refused (:class:`LimitError`, with when to try again) while the store is full; no
        collection is ever evicted for it: they go only when idle past the timeout, cleared, closed or stopped. A
        collection made here and left with no photo when the block ends is dropped at once (an upload whose files
        were all refused keeps no room either).
        """
        self.sweep()
        with self._lock:
            collection = self._collections.get(key)
            made = collection is None
            if made:
                if not create:
                    raise EmptyCollectionError(NO_PHOTOS_YET)
                self._start_sweeper()
                collection = self._new(key)
            self._collections.move_to_end(key)
            collection.busy += 1
        try:
            yield collection
        finally:
            with self._lock:
                collection.busy -= 1
                collection.last_used = time.monotonic()
                empty = (made and collection.busy == 0 and not collection.items
                         and self._collections.get(key) is collection)
                if empty:
                    del self._collections[key]
            if empty:
                collection.discard()

    def _new(self, key: str) -> PersonalCollection:
        if len(self._collections) >= self.limits.max_collections:
            # the first to go is the one idle longest, once idle past the timeout
            oldest = min(c.last_used for c in self._collections.values())
            wait = max(1, math.ceil((oldest + self.limits.idle_seconds - time.monotonic()) / 60))
            raise LimitError(f"The server is busy: it holds as many private collections as it can "
                             f"({self.limits.max_collections}). Try again in {wait} minute{'s' if wait > 1 else ''}.")
        folder = self.root / secrets.token_hex(16)  # unguessable, and nothing to do with the session's key
        collection = PersonalCollection(folder, self.feature_dim, self.num_classes, self.word_dim,
                                        self.limits.max_photos, self.limits.max_bytes)
        self._collections[key] = collection
        return collection

    def drop(self, key: str) -> bool:
        """Forget ``key``'s collection and delete its photos (the session ended); False if there was none."""
        with self._lock:
            collection = self._collections.pop(key, None)
        if collection is None:
            return False
        collection.discard()
        return True

    def sweep(self, now: float | None = None) -> int:
        """Drop the collections idle longer than the timeout; returns how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = [k for k, c in self._collections.items()
                     if c.busy == 0 and now - c.last_used > self.limits.idle_seconds]
            dropped = [self._collections.pop(k) for k in stale]
        for collection in dropped:
            collection.discard()
        return len(dropped)

    def close(self) -> None:
        """Drop every collection and the store's folder."""
        self._closed.set()
        with self._lock:
            dropped = list(self._collections.values())
            self._collections.clear()
        for collection in dropped:
            collection.discard()
        shutil.rmtree(self.root, ignore_errors=True)
