"""Generate searchcore/data/visual_vocab.json, the visual vocabulary image tags are drawn from, from WordNet 3.0.

    python -m training.make_visual_vocab [--wordnet DIR] [--out PATH]

Needs WordNet 3.0 (Debian: apt-get install wordnet-base) and timm (for the ImageNet class order); the app and the
bundle builder read only the JSON this writes, never WordNet. The JSON holds

* ``imagenet``: timm's 1000 classes in timm's order, each with its WordNet lemmas and its ``broader`` words (the
  lemma lists of its hypernyms, nearest first, up to but not including the over-abstract ones in
  :data:`BROADER_STOP`);
* ``nouns``: the single-word nouns whose most frequent sense is a thing you can see (:func:`is_visible`);
* ``caption_nouns``: the single-word nouns WordNet's corpus never tagged, which have a visible sense among their
  first :data:`SENSES` (:func:`caption_nouns`): a collection caption may use them ("A wrench.", "A heron.");
* ``senses``: for each one-word name in ``imagenet``, its :data:`SENSES` most frequent noun senses (wnids), and each
  class lists its ``broader_ids``, so :mod:`searchcore.models.hierarchy` finds the classes below what a word means.

The output is deterministic (sorted keys, one entry per line), so rerunning it on the same WordNet gives the same
bytes and a change shows as a readable diff.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from searchcore.errors import AssetSourceError, SearchError
from searchcore.models.wordnet import (
    VISUAL_VOCAB_PATH,
    NounDatabase,
    Synset,
    hypernym_chain,
    read_nouns,
    usage_counts,
)

SOURCE = "WordNet 3.0"
SENSES = 3  # a word's most frequent noun senses that count as what it means (``amphibian``'s animal is the third)
COMMAND = "python -m training.make_visual_vocab"

# Ancestors too abstract to be a useful "broader" tag: naming them says nothing a photo shows ("organism", "whole",
# "artifact", "instrumentality", "matter") or names an economic or logical category rather than a look ("commodity",
# "consumer goods", "system", "part"). The chain stops at them: they are not listed and not climbed past, so goldfish
# keeps "fish" and "animal" but not "organism"; espresso keeps "coffee", "beverage", "food", "liquid" but not
# "substance", "matter" or (via substance → part → relation) "abstraction". Ids are WordNet 3.0 offsets; the name is
# checked against WordNet when the vocabulary is generated, so a typo fails loudly.
BROADER_STOP: Mapping[str, str] = {
    # noun.Tops: the unique beginners and their first levels
    "n00001740": "entity",
    "n00001930": "physical entity",
    "n00002137": "abstraction",
    "n00002452": "thing",
    "n00002684": "object",
    "n00003553": "whole",
    "n00004258": "living thing",
    "n00004475": "organism",
    "n00007347": "causal agent",
    "n00019128": "natural object",
    "n00019613": "substance",  # the real physical matter of which a thing consists
    "n00020090": "substance",  # a particular kind or species of matter
    "n00020827": "matter",
    "n00021939": "artifact",
    "n00022903": "article",
    "n00023100": "psychological feature",
    "n00024264": "attribute",
    "n00027167": "location",
    "n00027807": "shape",
    "n00029378": "event",
    "n00029677": "process",
    "n00031264": "group",
    "n00031921": "relation",
    "n00033020": "communication",
    "n00033615": "measure",
    "n00034213": "phenomenon",
    "n13809207": "part",  # noun.relation: something determined in relation to a whole
    # abstract classes inside the visible lexicographer files
    "n03575240": "instrumentality",
    "n04377057": "system",
    "n03892891": "part",  # of an artifact
    "n03932203": "piece",
    "n03076708": "commodity",
    "n03093574": "consumer goods",
    "n03257877": "durables",
    "n07570720": "nutriment",
    "n14580897": "material",
    "n14778436": "agent",
    "n15046900": "solid",  # states of matter, not looks
    "n14939900": "fluid",
    "n06254669": "medium",
}

# Lexicographer files whose synsets are physical things a photo can show. Left out: noun.location (mostly abstract
# places: "side", "end", "top", "area"), noun.phenomenon (mostly forces and outcomes: "effect", "result",
# "pressure", "energy", "gravity"), noun.possession ("money", "debt", "tax"), noun.group, noun.event and the rest;
# their visible corners come back through VISIBLE_ROOTS.
VISUAL_LEXNAMES = frozenset({
    "noun.animal", "noun.artifact", "noun.body", "noun.food", "noun.object", "noun.person", "noun.plant",
    "noun.substance",
})

# Visible subtrees of otherwise abstract lexicographer files: falling weather, storms, lightning, clouds (with smoke,
# fog and mist), visible light, floods, fire and flame, waves, coins and banknotes, forests, and land you can
# photograph (park, field, meadow, desert; city, town). Not all of "atmospheric phenomenon": it also holds winds
# and weather states ("breeze", "mildness", "quiet"), which no photo shows. A noun counts when its most frequent
# sense is one of these or below one.
VISIBLE_ROOTS: Mapping[str, str] = {
    "n11494638": "precipitation",  # noun.phenomenon: rain, snow, hail, sleet, drizzle
    "n11462526": "storm",  # noun.phenomenon: blizzard, hurricane, tornado
    "n11476231": "atmospheric electricity",  # noun.phenomenon: lightning, thunderbolt
    "n11439690": "cloud",  # noun.phenomenon: smoke, fog, mist, haze
    "n11473954": "light",  # noun.phenomenon: sunlight, moonlight, sunbeam, glow
    "n11454591": "flood",  # noun.phenomenon
    "n07302836": "fire",  # noun.event: fire, bonfire, campfire, wildfire
    "n13480848": "fire",  # noun.process: flame, blaze
    "n07352190": "wave",  # noun.event: wave, surf, breaker
    "n13388245": "coin",  # noun.possession
    "n13387209": "paper money",  # noun.possession: banknote
    "n08438533": "forest",  # noun.group: forest, woods, grove, jungle
    "n08673395": "tract",  # noun.location: park, field, meadow, desert, lawn, cemetery
    "n08626283": "municipality",  # noun.location: city, town
}

# Left out even from the visible files. People named by what a photo cannot show, and that an image tag must not
# assert of anyone: nationality and ethnicity, religion, politics, sexuality, and insults (occupations, ages, roles
# and relations stay: "astronaut", "child", "bride", "soldier"). And the abstract corners of the visible files:
# goods as trade ("product", "freight", "import"), causal agents ("agent", viruses, hormones), spirits, and
# sets of things filed with the things (taxa, nations, genes).
HIDDEN_ROOTS: Mapping[str, str] = {
    "n09620078": "inhabitant",  # american, alabaman, ...
    "n09620794": "native",  # russian, filipino, ...
    "n09625401": "national",
    "n09636106": "person of color",
    "n09638875": "white",
    "n09634494": "african",
    "n09681351": "jew",
    "n09628382": "religious person",
    "n09625789": "nonreligious person",
    "n10099375": "follower",
    "n10450303": "politician",  # republican, democrat, communist, socialist
    "n10503452": "radical",
    "n09774783": "advocate",
    "n10756641": "visionary",
    "n10182913": "homosexual",
    "n09629246": "sensualist",
    "n09831962": "bad person",
    "n09631129": "unwelcome person",
    "n09606527": "anomaly",  # jerk, crackpot, oddball
    "n10599354": "simpleton",
    "n03748886": "merchandise",  # product, release, freight, shipment
    "n03564667": "import",
    "n04353803": "sum",  # total, the whole amount
    "n09190918": "agent",  # noun.object: viruses, hormones, "satisfier"
    "n10757918": "vital principle",  # spirit, soul
    # sets, not things: taxa (genus Abies, family Acanthaceae), nations ("british"), genes, art movements
    "n07992450": "taxonomic group",
    "n07942152": "people",
    "n08459252": "sequence",
    "n08466643": "artistic movement",
}

# Glosses that mark a word as a slur or an obscenity, which must never be offered as a tag.
_OFFENSIVE_GLOSS = re.compile(
    r"ethnic slur|considered offensive|\b(offensive|insulting|derogatory|disparaging|obscene|vulgar|contemptuous)\b"
    r"[^;]{0,25}\b(term|terms|name|word|words|slang)\b",
    re.IGNORECASE,
)
_NOUN_WORD = re.compile(r"[a-z]{3,}")


def _offsets(db: NounDatabase, named: Mapping[str, str]) -> frozenset[int]:
    """The offsets of ``named`` (wnid → its first lemma), after checking each names what its comment says."""
    offsets = set()
    for wnid, lemma in named.items():
        synset = db.synsets.get(int(wnid[1:]))
        if synset is None or synset.lemmas[0] != lemma:
            found = synset.lemmas[0] if synset else "nothing"
            raise AssetSourceError(f"{wnid} is {found!r} in this WordNet, not {lemma!r}: it is not WordNet 3.0.")
        offsets.add(synset.offset)
    return frozenset(offsets)


def is_proper(synset: Synset, lemma: str) -> bool:
    """Whether ``lemma`` names an individual here: an instance synset, unless a natural object spelled in lower case.

    WordNet capitalises proper nouns (Kunduz, Lincoln); the lower-case instances of noun.object are the sun, the
    moon, the earth and the like, which are common words for things everyone sees.
    """
    if not synset.is_instance:
        return False
    return not (synset.lexname == "noun.object" and lemma in synset.words)


def is_visible(db: NounDatabase, synset: Synset, visible_roots: frozenset[int], hidden_roots: frozenset[int],
               stop: frozenset[int]) -> bool:
    """Whether ``synset`` is a thing a photo can show (see VISUAL_LEXNAMES, VISIBLE_ROOTS, HIDDEN_ROOTS)."""
    if synset.offset in stop or _OFFENSIVE_GLOSS.search(synset.gloss):
        return False
    lineage = {synset.offset} | {s.offset for s in hypernym_chain(db, synset.offset)}
    if lineage & hidden_roots:
        return False
    if lineage & visible_roots:
        return True
    return synset.lexname in VISUAL_LEXNAMES


def mostly_noun(lemma: str, usage: Mapping[str, Mapping[str, int]] | None) -> bool:
    """Is ``lemma`` tagged as a noun at least as often as as an adjective or adverb? (No evidence: yes.)

    "small", "upper" and "simple" are WordNet nouns (a part of the back, of a shoe, a herbal remedy) but are used
    as adjectives; a tag reads as the word's common use, so such words are no tags. Verbs are not compared: "train",
    "mop" and "hook" are verbs more often than nouns in WordNet's corpus, and still things you see.
    """
    if not usage:
        return True
    noun = usage.get("noun", {}).get(lemma, 0)
    return all(noun >= counts.get(lemma, 0) for pos, counts in usage.items() if pos != "noun")


def visual_nouns(
    db: NounDatabase,
    *,
    visible_roots: Mapping[str, str] = VISIBLE_ROOTS,
    hidden_roots: Mapping[str, str] = HIDDEN_ROOTS,
    stop: Mapping[str, str] = BROADER_STOP,
    usage: Mapping[str, Mapping[str, int]] | None = None,
) -> list[str]:
    """The sorted single-word nouns (a-z, 3+ letters) whose most frequent noun sense is visible and not a name.

    With ``usage`` (tagged-sense counts per part of speech, :func:`searchcore.models.wordnet.usage_counts`) a word must
    also be used mostly as a noun (:func:`mostly_noun`).
    """
    visible, hidden, stopped = _offsets(db, visible_roots), _offsets(db, hidden_roots), _offsets(db, stop)
    nouns = []
    for lemma, senses in db.index.items():
        if not _NOUN_WORD.fullmatch(lemma) or not senses or senses[0] not in db.synsets:
            continue
        if not mostly_noun(lemma, usage):
            continue
        synset = db.synsets[senses[0]]  # index.noun lists the most frequent sense first
        if not is_proper(synset, lemma) and is_visible(db, synset, visible, hidden, stopped):
            nouns.append(lemma)
    return sorted(nouns)


def caption_nouns(
    db: NounDatabase,
    usage: Mapping[str, Mapping[str, int]],
    ranked: Collection[str],
    *,
    visible_roots: Mapping[str, str] = VISIBLE_ROOTS,
    hidden_roots: Mapping[str, str] = HIDDEN_ROOTS,
    stop: Mapping[str, str] = BROADER_STOP,
    senses: int = SENSES,
) -> list[str]:
    """The sorted single-word nouns, not in ``ranked`` (:func:`visual_nouns`'s), that WordNet's corpus never tagged
    as nouns and that have a visible sense among their first ``senses``.

    Only tagged senses are in frequency order (``tagsense_cnt``); an untagged word's first sense is merely its
    lexicographer's order, so it says nothing about the common meaning: ``wrench`` lists "a twist" before the tool,
    ``heron`` and ``donkey`` are untagged too. Alone such a word is no tag (``chile`` is a pepper or a country,
    ``font`` a typeface or a basin), but a collection caption ("A wrench.") says it names what its photo shows, so
    these join the tags and the training targets from captions only.
    """
    visible, hidden, stopped = _offsets(db, visible_roots), _offsets(db, hidden_roots), _offsets(db, stop)
    ranked = set(ranked)
    tagged = usage.get("noun", {})
    out = []
    for lemma, offsets in db.index.items():
        if lemma in ranked or tagged.get(lemma, 0) or not _NOUN_WORD.fullmatch(lemma) or not mostly_noun(lemma, usage):
            continue
        if any(not is_proper(s, lemma) and is_visible(db, s, visible, hidden, stopped)
               for s in (db.synsets[o] for o in offsets[:senses] if o in db.synsets)):
            out.append(lemma)
    return sorted(out)


def imagenet_classes(
    db: NounDatabase, wnids: Sequence[str], *, stop: Mapping[str, str] = BROADER_STOP
) -> list[dict[str, Any]]:
    """One entry per class in ``wnids``' order: its synset id, lemmas and broader lemma lists (nearest first)."""
    stopped = _offsets(db, stop)
    classes = []
    for wnid in wnids:
        offset = int(wnid[1:])
        if offset not in db.synsets:
            raise AssetSourceError(f"ImageNet class {wnid} is not in this WordNet; it must be WordNet 3.0.")
        chain = hypernym_chain(db, offset, stop=stopped)
        classes.append({"synset": wnid, "lemmas": list(db.synsets[offset].lemmas),
                        "broader": [list(s.lemmas) for s in chain], "broader_ids": [s.wnid for s in chain]})
    return classes


def word_senses(db: NounDatabase, classes: Sequence[Mapping[str, Any]], senses: int = SENSES) -> list[list[Any]]:
    """``[word, [wnid, ...]]`` for each one-word name of a class or of a synset above one: its ``senses`` most
    frequent noun senses, so a query word stands for the classes below what people mostly mean by it
    (``toy``: plaything, not toy dog; ``plant``: flora is its second sense)."""
    names = {name for c in classes for group in (c["lemmas"], *c["broader"]) for name in group
             if " " not in name and "-" not in name}
    return [[name, [f"n{o:08d}" for o in db.index.get(name, ())[:senses]]] for name in sorted(names)]


def timm_wnids() -> list[str]:
    """timm's ImageNet-1k class ids (``n01440764``, ...), in the order of the backbones' logits."""
    from timm.data import ImageNetInfo  # imports torch: only when generating

    return list(ImageNetInfo().label_names())


def build_vocab(db: NounDatabase, wnids: Sequence[str], usage: Mapping[str, Mapping[str, int]] | None = None
                ) -> dict[str, Any]:
    """The whole vocabulary as a JSON-ready dict."""
    classes = imagenet_classes(db, wnids)
    nouns = visual_nouns(db, usage=usage)
    return {"source": SOURCE, "command": COMMAND, "imagenet": classes, "nouns": nouns,
            "caption_nouns": caption_nouns(db, usage or {}, nouns), "senses": word_senses(db, classes)}


def generate(wordnet: Path | None = None) -> dict[str, Any]:
    """The vocabulary from the WordNet folder ``wordnet`` (see :func:`searchcore.models.wordnet.wordnet_dir`)."""
    usage = {pos: usage_counts(wordnet, pos) for pos in ("noun", "adj", "adv")}
    return build_vocab(read_nouns(wordnet), timm_wnids(), usage)


def render(vocab: Mapping[str, Any]) -> str:
    """``vocab`` as deterministic JSON: keys sorted, each list item on a line of its own."""
    def dump(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    lines = ["{"]
    keys = sorted(vocab)
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        value = vocab[key]
        if isinstance(value, list) and value:
            items = ",\n".join(dump(item) for item in value)
            lines.append(f"{dump(key)}:[\n{items}\n]{comma}")
        else:
            lines.append(f"{dump(key)}:{dump(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wordnet", type=Path, default=None,
                   help="folder holding WordNet 3.0's data.noun and index.noun, index.adj, index.adv "
                        "(default: $WORDNET_DIR, else /usr/share/wordnet)")
    p.add_argument("--out", type=Path, default=VISUAL_VOCAB_PATH, help=f"where to write (default: {VISUAL_VOCAB_PATH})")
    args = p.parse_args(argv)
    try:
        vocab = generate(args.wordnet)
    except SearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(render(vocab), encoding="utf-8")
    tmp.replace(args.out)  # never leave a half-written vocabulary behind
    with_broader = sum(bool(c["broader"]) for c in vocab["imagenet"])
    print(f"wrote {args.out}: {len(vocab['imagenet'])} ImageNet classes ({with_broader} with broader words), "
          f"{len(vocab['nouns'])} nouns, {len(vocab['caption_nouns'])} more for captions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
