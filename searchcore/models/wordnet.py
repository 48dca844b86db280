"""WordNet 3.0 nouns, read straight from the Princeton database files, and the packaged visual vocabulary.

Two halves with different users:

* :func:`read_nouns`, :func:`hypernym_chain` and :func:`first_sense` parse ``data.noun``/``index.noun`` (Debian's
  ``wordnet-base``, ``/usr/share/wordnet`` by default, or ``$WORDNET_DIR``). Only ``training.make_visual_vocab``
  uses them, to (re)generate ``searchcore/data/visual_vocab.json``.
* :func:`load_visual_vocab` reads that packaged JSON. Serving and bundle building use only this, so a Space
  without WordNet installed still has the vocabulary.

File formats (WordNet's ``wndb(5WN)``): a ``data.noun`` line is ``offset lex_filenum ss_type w_cnt(hex)
[word lex_id]... p_cnt [symbol offset pos source/target]... | gloss``; an ``index.noun`` line is ``lemma pos
synset_cnt p_cnt [ptr_symbol]... sense_cnt tagsense_cnt synset_offset...`` with the most frequent sense first.
Lines starting with two spaces are the licence header.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from ..errors import AssetSourceError

DEFAULT_WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_DIR_VARIABLE = "WORDNET_DIR"
VISUAL_VOCAB_PATH = Path(__file__).resolve().parents[1] / "data" / "visual_vocab.json"

# lex_filenum → lexicographer file, in WordNet's fixed order (lexnames(5WN)); the database stores only the number.
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
    "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
    "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession",
    "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption",
    "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession",
    "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)
_HYPERNYM = "@"
_INSTANCE_HYPERNYM = "@i"
_INSTALL_HINT = "Install WordNet 3.0 (apt-get install wordnet-base) or set WORDNET_DIR to a folder holding it."


@dataclass(frozen=True, slots=True)
class Synset:
    """One noun synset: its byte offset in data.noun (its id), lexicographer file, lemmas and direct hypernyms."""

    offset: int
    lexname: str
    lemmas: tuple[str, ...]  # lower case, "_" → " ", in WordNet's order, duplicates (from case) dropped
    hypernyms: tuple[int, ...]  # offsets of "@" targets, and of "@i" targets for an instance
    is_instance: bool  # has an instance hypernym ("@i"): a proper noun (a city, a person, a party)
    words: tuple[str, ...] = ()  # the lemmas as WordNet spells them ("_" → " "): proper nouns are capitalised
    gloss: str = ""

    @property
    def wnid(self) -> str:
        """The id ImageNet (and timm) use: ``n`` + the 8-digit offset."""
        return f"n{self.offset:08d}"


@dataclass(frozen=True, slots=True)
class NounDatabase:
    """The noun part of WordNet: every synset by offset, and every lemma's senses (most frequent first)."""

    synsets: Mapping[int, Synset]
    index: Mapping[str, tuple[int, ...]]  # lemma as in Synset.lemmas → synset offsets, most frequent sense first


def wordnet_dir(folder: str | Path | None = None) -> Path:
    """The WordNet folder: ``folder`` if given, else ``$WORDNET_DIR``, else ``/usr/share/wordnet``; it must exist."""
    chosen = Path(folder or os.environ.get(WORDNET_DIR_VARIABLE) or DEFAULT_WORDNET_DIR).expanduser()
    if not chosen.is_dir():
        raise AssetSourceError(f"No WordNet folder at {chosen}. {_INSTALL_HINT}")
    return chosen


def _database_file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise AssetSourceError(f"{path} is missing, so {folder} is not a WordNet 3.0 database. {_INSTALL_HINT}")
    return path


def _lemma(word: str) -> str:
    return word.replace("_", " ").lower()


def _content_lines(path: Path) -> Iterator[str]:
    # latin-1 decodes any byte, so a stray non-ASCII byte in a gloss can never stop the whole read.
    with path.open(encoding="latin-1") as handle:
        for line in handle:
            if line.strip() and not line.startswith("  "):  # two leading spaces: the licence header
                yield line


def parse_data_line(line: str) -> Synset:
    """One ``data.noun`` line as a :class:`Synset`; raises :class:`AssetSourceError` if it is malformed."""
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    try:
        offset, lex_filenum = int(fields[0]), int(fields[1])
        word_count = int(fields[3], 16)  # w_cnt is two hex digits (a synset may hold more than 9 words)
        words = fields[4 : 4 + 2 * word_count : 2]
        at = 4 + 2 * word_count
        pointer_count = int(fields[at])  # p_cnt is decimal
        pointers = [fields[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(pointer_count)]
        if len(words) != word_count or any(len(p) != 4 for p in pointers):
            raise IndexError
        lexname = LEXNAMES[lex_filenum]
    except (IndexError, ValueError) as exc:
        raise AssetSourceError(f"Malformed WordNet data line: {line[:80]!r}. {_INSTALL_HINT}") from exc
    spelled = tuple(w.replace("_", " ") for w in words)
    lemmas = tuple(dict.fromkeys(w.lower() for w in spelled))
    hypernyms = tuple(int(p[1]) for p in pointers if p[0] in (_HYPERNYM, _INSTANCE_HYPERNYM) and p[2] == "n")
    is_instance = any(p[0] == _INSTANCE_HYPERNYM for p in pointers)
    return Synset(offset, lexname, lemmas, hypernyms, is_instance, spelled, gloss.strip())


def parse_index_line(line: str) -> tuple[str, tuple[int, ...]]:
    """One ``index.noun`` line as (lemma, synset offsets most frequent first)."""
    fields = line.split()
    try:
        synset_count, pointer_count = int(fields[2]), int(fields[3])
        offsets = tuple(int(f) for f in fields[6 + pointer_count :])  # after the pointer symbols, sense_cnt, tagsense
    except (IndexError, ValueError) as exc:
        raise AssetSourceError(f"Malformed WordNet index line: {line[:80]!r}. {_INSTALL_HINT}") from exc
    if len(offsets) != synset_count:
        raise AssetSourceError(f"Malformed WordNet index line: {line[:80]!r}. {_INSTALL_HINT}")
    return _lemma(fields[0]), offsets


def usage_counts(folder: str | Path | None = None, pos: str = "noun") -> dict[str, int]:
    """How often each lemma's senses of one part of speech were seen in WordNet's tagged corpus (``tagsense_cnt``).

    ``pos`` is ``noun``, ``verb``, ``adj`` or ``adv`` (``index.<pos>``): comparing them says whether a word is used
    mostly as a noun ("hand") or mostly as something else ("small", "upper").
    """
    path = _database_file(wordnet_dir(folder), f"index.{pos}")
    counts = {}
    for line in _content_lines(path):
        fields = line.split()
        try:
            counts[_lemma(fields[0])] = int(fields[5 + int(fields[3])])
        except (IndexError, ValueError) as exc:
            raise AssetSourceError(f"Malformed WordNet index line: {line[:80]!r}. {_INSTALL_HINT}") from exc
    return counts


def read_nouns(folder: str | Path | None = None) -> NounDatabase:
    """Read ``data.noun`` and ``index.noun`` from ``folder`` (see :func:`wordnet_dir`)."""
    root = wordnet_dir(folder)
    data, index = _database_file(root, "data.noun"), _database_file(root, "index.noun")
    synsets = {s.offset: s for s in map(parse_data_line, _content_lines(data))}
    lemmas = dict(map(parse_index_line, _content_lines(index)))
    return NounDatabase(synsets, lemmas)


def hypernym_chain(
    db: NounDatabase | Mapping[int, Synset], offset: int, stop: Collection[int] = ()
) -> list[Synset]:
    """Every ancestor of ``offset``, nearest first (breadth-first over hypernym pointers), each once.

    Synsets in ``stop`` are neither returned nor climbed past; an ancestor above one is still reached by another path.
    """
    synsets = db.synsets if isinstance(db, NounDatabase) else db
    if offset not in synsets:
        raise KeyError(offset)
    seen, chain = {offset, *stop}, []
    queue = deque(synsets[offset].hypernyms)
    while queue:
        parent = queue.popleft()
        if parent in seen or parent not in synsets:
            continue
        seen.add(parent)
        chain.append(synsets[parent])
        queue.extend(synsets[parent].hypernyms)
    return chain


def first_sense(db_index: NounDatabase | Mapping[str, tuple[int, ...]], lemma: str) -> int | None:
    """The offset of ``lemma``'s most frequent noun sense, or None if it is not a WordNet noun."""
    index = db_index.index if isinstance(db_index, NounDatabase) else db_index
    senses = index.get(_lemma(lemma.strip()))
    return senses[0] if senses else None


# --- the packaged vocabulary -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageNetClass:
    """One ImageNet class: its WordNet id, its lemmas, and its broader words (ancestor lemma lists, nearest first)."""

    synset: str
    lemmas: tuple[str, ...]
    broader: tuple[tuple[str, ...], ...]
    broader_ids: tuple[str, ...] = ()  # the broader synsets' wnids, parallel to ``broader``


@dataclass(frozen=True, slots=True)
class VisualVocab:
    """The packaged visual vocabulary: the 1000 ImageNet classes in timm's order and the visible single-word nouns."""

    source: str
    imagenet: tuple[ImageNetClass, ...]
    nouns: tuple[str, ...]
    senses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # one-word name → its main senses' wnids
    # untagged nouns with a visible sense ("wrench", "heron"): things you can see when a caption uses them
    caption_nouns: tuple[str, ...] = ()


@cache
def load_visual_vocab(path: Path = VISUAL_VOCAB_PATH) -> VisualVocab:
    """Read the packaged ``visual_vocab.json`` (written by ``python -m training.make_visual_vocab``)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        classes = tuple(
            ImageNetClass(c["synset"], tuple(c["lemmas"]), tuple(tuple(words) for words in c["broader"]),
                          tuple(c.get("broader_ids", ())))
            for c in raw["imagenet"]
        )
        senses = {str(word): tuple(ids) for word, ids in raw.get("senses", ())}
        return VisualVocab(str(raw["source"]), classes, tuple(raw["nouns"]), senses,
                           tuple(raw.get("caption_nouns", ())))
    except FileNotFoundError as exc:
        raise AssetSourceError(f"{path} is missing; regenerate it with python -m training.make_visual_vocab.") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise AssetSourceError(f"{path} is not a visual vocabulary ({exc}); regenerate it with "
                               "python -m training.make_visual_vocab.") from exc
