"""searchcore.models.wordnet and training.make_visual_vocab: known answers on a tiny synthetic WordNet, then the real
one.

The synthetic database is written into tmp_path in WordNet's own format (licence header, hex word counts, pointer
blocks, glosses), so parsing, hypernym chains and the visual-noun filter are checked without /usr/share/wordnet.
When WordNet 3.0 is installed, the committed visual_vocab.json must be exactly what the generator writes now.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from searchcore.errors import AssetSourceError
from searchcore.models.wordnet import (
    VISUAL_VOCAB_PATH,
    first_sense,
    hypernym_chain,
    load_visual_vocab,
    parse_data_line,
    read_nouns,
)
from training import make_visual_vocab as mvv

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n  2 Princeton University.  \n"
SIXTEEN = " ".join(f"word_{chr(97 + i)} 0" for i in range(16))  # w_cnt "10" is hex: sixteen words, not ten
DATA = HEADER + "".join(line + "  \n" for line in [
    "00000001 03 n 01 entity 0 000 | that which exists",
    "00000002 03 n 01 organism 0 001 @ 00000001 n 0000 | a living thing",
    "00000003 03 n 01 animal 0 001 @ 00000002 n 0000 | a living organism",
    "00000004 05 n 01 carnivore 0 001 @ 00000003 n 0000 | flesh-eating mammal",
    "00000005 05 n 02 feline 0 felid 0 001 @ 00000004 n 0000 | lithe-bodied mammals",
    "00000006 05 n 02 domestic_animal 0 Domesticated_Animal 0 001 @ 00000003 n 0000 | tamed animals",
    # two parents: the chain is breadth-first (feline, domestic animal, then carnivore ...) and "animal" comes once
    "00000007 05 n 03 cat 0 true_cat 0 Cat 1 003 @ 00000005 n 0000 @ 00000006 n 0000 ~ 00000008 n 0000 | feline",
    "00000008 05 n 01 tabby 0 001 @ 00000007 n 0000 | a cat with a striped coat",
    f"00000009 06 n 10 {SIXTEEN} 001 @ 00000001 n 0000 | sixteen lemmas",
    "00000010 15 n 01 city 0 001 @ 00000001 n 0000 | a large urban area",
    "00000011 15 n 01 Kunduz 0 001 @i 00000010 n 0000 | a city in Afghanistan",
    "00000012 17 n 01 star 0 001 @ 00000001 n 0000 | a celestial body",
    "00000013 17 n 02 sun 0 Sun 0 001 @i 00000012 n 0000 | the star of the solar system",
    "00000014 04 n 01 use 0 001 @ 00000001 n 0000 | the act of using",
    "00000015 06 n 01 cat_o'_nine_tails 0 001 @ 00000009 n 0000 | a whip",
    "00000016 18 n 01 oaf 0 001 @ 00000002 n 0000 | (ethnic slur) offensive term for someone",
    "00000017 19 n 01 snow 0 001 @ 00000001 n 0000 | precipitation falling as ice crystals",
    "00000018 06 n 01 ox 0 001 @ 00000009 n 0000 | a two-letter artifact",
])
INDEX = HEADER + "".join(line + "  \n" for line in [
    "animal n 1 1 @ 1 0 00000003",
    "cat n 2 2 @ ~ 2 1 00000007 00000015",  # most frequent sense first: the animal
    "cat_o'_nine_tails n 1 1 @ 1 0 00000015",
    "city n 1 1 @ 1 0 00000010",
    "domestic_animal n 1 1 @ 1 0 00000006",
    "kunduz n 1 1 @i 1 0 00000011",
    "oaf n 1 1 @ 1 0 00000016",
    "ox n 1 1 @ 1 0 00000018",
    "snow n 1 1 @ 1 0 00000017",
    "star n 1 1 @ 1 0 00000012",
    "sun n 1 1 @i 1 0 00000013",
    "tabby n 1 1 @ 1 0 00000008",
    "kit n 2 1 @ 2 1 00000014 00000008",  # tagged: its first sense (an act) is what it mostly means
    "use n 2 1 @ 2 0 00000014 00000007",  # its first sense is an act, though a later one is visible
    "word_a n 1 1 @ 1 0 00000009",
])


@pytest.fixture
def wordnet(tmp_path: Path) -> Path:
    (tmp_path / "data.noun").write_text(DATA, encoding="latin-1")
    (tmp_path / "index.noun").write_text(INDEX, encoding="latin-1")
    return tmp_path


def _lemmas(synsets) -> list[str]:
    return [s.lemmas[0] for s in synsets]


def test_parses_synsets_lexnames_lemmas_and_pointers(wordnet: Path) -> None:
    db = read_nouns(wordnet)
    assert len(db.synsets) == 18  # the licence header is skipped
    cat = db.synsets[7]
    assert cat.lexname == "noun.animal" and cat.wnid == "n00000007"
    assert cat.lemmas == ("cat", "true cat")  # lower case, "_" → " ", "Cat" folded into "cat"
    assert cat.hypernyms == (5, 6)  # "@" only; the "~" hyponym pointer is not a parent
    assert not cat.is_instance and cat.gloss == "feline"
    assert db.synsets[6].lemmas == ("domestic animal", "domesticated animal")
    assert db.synsets[15].lemmas == ("cat o' nine tails",)
    kunduz = db.synsets[11]
    assert kunduz.is_instance and kunduz.hypernyms == (10,) and kunduz.lexname == "noun.location"
    assert kunduz.words == ("Kunduz",)
    assert db.index["cat"] == (7, 15) and db.index["domestic animal"] == (6,)


def test_word_count_is_hexadecimal(wordnet: Path) -> None:
    many = read_nouns(wordnet).synsets[9]
    assert len(many.lemmas) == 16 and many.lemmas[-1] == "word p"
    assert many.hypernyms == (1,) and many.lexname == "noun.artifact"


def test_malformed_line_is_refused() -> None:
    with pytest.raises(AssetSourceError, match="Malformed"):
        parse_data_line("00000001 03 n 02 entity 0 000 | one word where the count says two")


def test_hypernym_chain_is_breadth_first_without_duplicates(wordnet: Path) -> None:
    db = read_nouns(wordnet)
    assert _lemmas(hypernym_chain(db, 7)) == ["feline", "domestic animal", "carnivore", "animal", "organism", "entity"]
    assert _lemmas(hypernym_chain(db, 8))[:2] == ["cat", "feline"]
    assert hypernym_chain(db.synsets, 1) == []
    # a stop synset is neither listed nor climbed past
    assert _lemmas(hypernym_chain(db, 7, stop={2})) == ["feline", "domestic animal", "carnivore", "animal"]
    with pytest.raises(KeyError):
        hypernym_chain(db, 999)


def test_first_sense(wordnet: Path) -> None:
    db = read_nouns(wordnet)
    assert first_sense(db, "cat") == 7
    assert first_sense(db.index, "Domestic_Animal") == 6 == first_sense(db, "domestic animal")
    assert first_sense(db, "unicorn") is None


def test_missing_folder_or_file_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AssetSourceError, match=r"apt-get install wordnet-base.*WORDNET_DIR"):
        read_nouns(tmp_path / "nowhere")
    monkeypatch.setenv("WORDNET_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(AssetSourceError, match="nowhere"):
        read_nouns()  # the variable is the default
    (tmp_path / "data.noun").write_text(DATA, encoding="latin-1")
    with pytest.raises(AssetSourceError, match=r"index\.noun is missing.*apt-get install wordnet-base"):
        read_nouns(tmp_path)


def test_wordnet_dir_variable_is_used(wordnet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORDNET_DIR", str(wordnet))
    assert len(read_nouns().synsets) == 18


def test_visual_nouns_filter(wordnet: Path) -> None:
    db = read_nouns(wordnet)
    nouns = mvv.visual_nouns(db, visible_roots={}, hidden_roots={}, stop={})
    # visible files only; first sense decides ("use"); proper nouns ("Kunduz") out, the lower-case sun in;
    # multi-word, under three letters and slurs out; noun.location ("city") and noun.phenomenon ("snow") out
    assert nouns == ["cat", "star", "sun", "tabby"]
    with_roots = mvv.visual_nouns(db, visible_roots={"n00000017": "snow", "n00000010": "city"},
                                  hidden_roots={"n00000005": "feline"}, stop={"n00000012": "star"})
    assert with_roots == ["city", "snow", "sun"]  # roots add snow and city; hidden feline drops cat and tabby


def test_caption_nouns_are_untagged_words_with_a_visible_sense(wordnet: Path) -> None:
    from searchcore.models.wordnet import usage_counts

    db = read_nouns(wordnet)
    usage = {"noun": usage_counts(wordnet, "noun")}
    assert usage["noun"]["kit"] == 1 and usage["noun"]["use"] == 0
    # "use" was never tagged, so its act-first order says nothing and its visible second sense counts; "kit" was
    # tagged, so its first sense decides; "cat" is a visual noun already; "city" has no visible sense at all
    ranked = mvv.visual_nouns(db, visible_roots={}, hidden_roots={}, stop={}, usage=usage)
    assert mvv.caption_nouns(db, usage, ranked, visible_roots={}, hidden_roots={}, stop={}) == ["use"]
    assert mvv.caption_nouns(db, usage, ranked, visible_roots={}, hidden_roots={}, stop={}, senses=1) == []


def test_root_names_are_checked(wordnet: Path) -> None:
    with pytest.raises(AssetSourceError, match="not 'dog'"):
        mvv.visual_nouns(read_nouns(wordnet), visible_roots={"n00000007": "dog"}, hidden_roots={}, stop={})


def test_imagenet_classes_and_render(wordnet: Path) -> None:
    db = read_nouns(wordnet)
    classes = mvv.imagenet_classes(db, ["n00000008", "n00000003"], stop={"n00000002": "organism"})
    assert {k: v for k, v in classes[0].items() if k != "broader_ids"} == {
        "synset": "n00000008", "lemmas": ["tabby"], "broader": [
            ["cat", "true cat"], ["feline", "felid"], ["domestic animal", "domesticated animal"], ["carnivore"],
            ["animal"]]}
    assert len(classes[0]["broader_ids"]) == 5  # one wnid per broader lemma list
    assert classes[0]["broader_ids"][0] == f"n{db.index['cat'][0]:08d}"
    assert classes[1]["broader"] == [] and classes[1]["broader_ids"] == []
    # each one-word name of a class or above one, with its most frequent senses ("true cat" is two words)
    senses = dict(mvv.word_senses(db, classes))
    assert "true cat" not in senses and senses["cat"] == [f"n{o:08d}" for o in db.index["cat"][: mvv.SENSES]]
    with pytest.raises(AssetSourceError, match="n00000999"):
        mvv.imagenet_classes(db, ["n00000999"], stop={})
    vocab = {"source": "WordNet 3.0", "nouns": ["cat", "sun"], "imagenet": classes}
    text = mvv.render(vocab)
    assert json.loads(text) == vocab
    lines = text.splitlines()  # keys sorted, one list item a line
    assert lines[:2] == ["{", '"imagenet":['] and lines[2].startswith('{"broader":[["cat","true cat"],')
    assert lines[-6:] == ['"nouns":[', '"cat",', '"sun"', "],", '"source":"WordNet 3.0"', "}"]


def test_cli_reports_a_missing_wordnet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "vocab.json"
    assert mvv.main(["--wordnet", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "apt-get install wordnet-base" in capsys.readouterr().err
    assert not out.exists()


def test_loader_reports_a_bad_file(tmp_path: Path) -> None:
    with pytest.raises(AssetSourceError, match="make_visual_vocab"):
        load_visual_vocab(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"source": "x"}', encoding="utf-8")
    with pytest.raises(AssetSourceError, match="not a visual vocabulary"):
        load_visual_vocab(tmp_path / "bad.json")


# --- the packaged vocabulary and the real WordNet ---------------------------------------------------------------


def test_packaged_vocab_is_aligned_with_timm() -> None:
    timm = pytest.importorskip("timm")
    vocab = load_visual_vocab()
    assert vocab.source == "WordNet 3.0"
    assert [c.synset for c in vocab.imagenet] == list(timm.data.ImageNetInfo().label_names())
    assert len(vocab.imagenet) == 1000
    assert list(vocab.nouns) == sorted(set(vocab.nouns))
    assert all(n.isascii() and n.isalpha() and n.islower() and len(n) >= 3 for n in vocab.nouns)
    goldfish = next(c for c in vocab.imagenet if c.synset == "n01443537")
    assert goldfish.lemmas == ("goldfish", "carassius auratus")


REAL_WORDNET = Path("/usr/share/wordnet")
needs_wordnet = pytest.mark.skipif(not (REAL_WORDNET / "data.noun").is_file(),
                                   reason="WordNet 3.0 is not installed (apt-get install wordnet-base)")


@pytest.fixture(scope="module")
def generated() -> dict:
    pytest.importorskip("timm")
    return mvv.generate(REAL_WORDNET)


@needs_wordnet
def test_committed_vocab_is_what_the_generator_writes(generated: dict) -> None:
    assert mvv.render(generated) == VISUAL_VOCAB_PATH.read_text(encoding="utf-8"), (
        "searchcore/data/visual_vocab.json is stale: run python -m training.make_visual_vocab")


@needs_wordnet
def test_broader_words_stop_before_the_abstract(generated: dict) -> None:
    by_id = {c["synset"]: c for c in generated["imagenet"]}
    goldfish = {w for words in by_id["n01443537"]["broader"] for w in words}
    assert {"fish", "animal"} <= goldfish and not goldfish & {"organism", "entity", "whole", "living thing"}
    tabby = {w for words in by_id["n02123045"]["broader"] for w in words}
    assert {"cat", "domestic cat"} <= tabby
    espresso = {w for words in by_id["n07920052"]["broader"] for w in words}
    assert {"coffee", "beverage"} <= espresso and not espresso & {"substance", "matter", "abstraction"}
    assert sum(bool(c["broader"]) for c in generated["imagenet"]) >= 990


@needs_wordnet
def test_visual_nouns_are_things_you_can_see(generated: dict) -> None:
    nouns = set(generated["nouns"])
    seen = [
        "snow", "drum", "yurt", "fish", "goldfish", "cat", "car", "tree", "beach", "mountain", "bottle", "flower",
        "horse", "guitar", "rug", "bird", "coffee", "rocket", "motorcycle", "astronaut", "coin", "rain", "fire",
        "lightning", "sun", "moon", "city", "park", "forest", "smoke", "rainbow",
    ]
    assert [w for w in seen if w not in nouns] == []
    unseen = [
        "used", "use", "traditional", "party", "said", "year", "government", "kunduz", "khost", "beit", "hanoun",
        "ndp", "mla", "janata", "fianna", "bharatiya", "system", "artifact", "entity", "republican", "american",
        "product", "spirit",
    ]
    assert [w for w in unseen if w in nouns] == []
    assert 15_000 < len(nouns) < 30_000
    captioned = set(generated["caption_nouns"])
    assert {"wrench", "heron", "donkey", "saw", "yak", "lettuce"} <= captioned and not captioned & nouns
    assert not captioned & {"second", "space", "system", "post", "party", "sign"}  # tagged: the first sense decides


def test_a_word_used_mostly_as_an_adjective_is_no_noun_tag():
    usage = {"noun": {"small": 1, "hand": 40, "yurt": 0}, "adj": {"small": 90, "hand": 2}, "adv": {}}
    assert not mvv.mostly_noun("small", usage)
    assert mvv.mostly_noun("hand", usage) and mvv.mostly_noun("yurt", usage)  # no evidence: kept
    assert mvv.mostly_noun("small", None)


@needs_wordnet
def test_usage_counts_read_tagged_senses():
    from searchcore.models.wordnet import usage_counts

    nouns, adjectives = usage_counts(REAL_WORDNET, "noun"), usage_counts(REAL_WORDNET, "adj")
    assert adjectives["small"] > nouns["small"] and nouns["hand"] > adjectives.get("hand", 0)


@needs_wordnet
def test_adjectives_are_not_visual_nouns(generated: dict) -> None:
    nouns = set(generated["nouns"])
    assert not nouns & {"small", "upper", "simple", "great", "major"}
    assert {"hand", "train", "mop", "hook", "pepper"} <= nouns  # used as verbs too, still things you see
