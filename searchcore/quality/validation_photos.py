"""A second public set of real photographs, for choosing how Image → Tags is served, never for reporting it.

:data:`searchcore.quality.realphotos.REAL_PHOTOS` is where the real-photo tag figure is measured, so no served setting
may be chosen on it. A visitor's photo is a real photo, not a Tux Paint cut-out, so the tag rules (the classifier's
probability floors, the neighbour distance, ConSE's share) are chosen on these photos together with the
collection's validation photos (:func:`searchcore.quality.evaluation.choose_serving`). They come from the same packages,
from other files (tools, fish, farm animals, wind and water mills, landmarks), and no file is in both sets
(``tests/test_realphotos.py`` checks it). As there, the words were chosen by looking at each photo, never by
running a model.
"""

from __future__ import annotations

from .realphotos import RealPhoto, _animal, _gc, _thing

_FARM = "gcompris/src/activities/explore_farm_animals/resource/animals"
_MONUMENTS = "gcompris/src/activities/explore_monuments/resource"


def _farm(name: str, file: str, words: str, description: str, licence: str) -> RealPhoto:
    return _gc(name, "explore_farm_animals.rcc", f"{_FARM}/{file}", words, description, licence)


def _landmark(name: str, file: str, words: str, description: str, licence: str) -> RealPhoto:
    return _gc(name, "explore_monuments.rcc", f"{_MONUMENTS}/{file}", words, description, licence)


VALIDATION_PHOTOS: tuple[RealPhoto, ...] = (
    # GCompris "categorization": tools
    _thing("hammer_blue", "tools", "hammer1.webp", "hammer", "hammer with a wooden handle on blue",
           "CC0-1.0, Marina Shemesh"),
    _thing("hammer_ball", "tools", "hammer2.webp", "hammer", "small ball-peen hammer on white",
           "CC0-1.0, Junior Libby"),
    _thing("sledgehammer", "tools", "hammer3.webp", "hammer sledgehammer sledge",
           "heavy sledgehammer head with an orange handle", "CC0-1.0, Video Girl"),
    _thing("screwdriver_black", "tools", "screwDriver2.webp", "screwdriver",
           "black-and-red screwdriver standing on its tip", "CC0-1.0, hystiff"),
    _thing("pliers_brown", "tools", "plier2.webp", "pliers plier", "brown-handled needle-nose pliers",
           "Public Domain, Alex Myasnikov"),
    _thing("pliers_red", "tools", "plier3.webp", "pliers plier", "red-handled combination pliers",
           "Public Domain, Baran Ivo"),
    _thing("scissors_black", "tools", "scissors2.webp", "scissors", "black-handled scissors on wood",
           "Public Domain, Julo"),
    _thing("scissors_steel", "tools", "scissors3.webp", "scissors", "steel surgical scissors on green cloth",
           "CC0-1.0, Saltanat ebli"),
    _thing("wrench_steel", "tools", "wrench1.webp", "wrench spanner", "adjustable wrench on beige",
           "Public Domain, M338"),
    _thing("tape_reel", "tools", "measuringTape2.webp", "tape measure", "red reel tape measure with its tape out",
           "CC0-1.0, W.carter"),
    _thing("multimeter_blue", "tools", "multimeter2.webp", "multimeter meter voltmeter",
           "blue digital multimeter with a dial", "Public Domain, Bougainville"),
    _thing("tweezers_three", "tools", "tweezer1.webp", "tweezers tweezer", "three tweezers: red, black and steel",
           "Public Domain, Evan-Amos"),
    _thing("side_cutter", "tools", "sideCutter1.webp", "pliers plier cutter cutters",
           "blue-handled side cutters on cardboard", "Public Domain, M338"),
    _thing("nail_clipper", "tools", "nailCutter.webp", "clipper clippers nail", "steel nail clipper",
           "Public Domain, Tripy-commonswiki"),
    _thing("wire_cutter", "tools", "cuttingTool.webp", "pliers plier cutter cutters", "blue-handled wire cutters",
           "Public Domain, Baran Ivo"),
    # GCompris "categorization": fishes
    _thing("fish_slender", "fishes", "fish2.webp", "fish", "slender silvery fish over weed",
           "Public Domain, Stefano Guerrieri"),
    _thing("cichlid", "fishes", "fish3.webp", "fish cichlid", "striped cichlids in an aquarium",
           "Public Domain, Paolo Neo"),
    _thing("perch", "fishes", "fish4.webp", "fish perch", "two yellow perch on black",
           "Public Domain, United States Department of Agriculture"),
    _thing("anthias", "fishes", "fish5.webp", "fish", "red fish by a coral wall", "Public Domain, Stefano Guerrieri"),
    _thing("discus", "fishes", "fish6.webp", "fish discus", "orange discus fish, face on", "CC0-1.0, Bernard Spragg"),
    _thing("fish_shoal", "fishes", "fish7.webp", "fish", "small fish over a sandy sea floor",
           "Public Domain, Florin DUMITRESCU"),
    _thing("trout", "fishes", "fish8.webp", "fish trout salmon", "silver trout over gravel",
           "Public Domain, U.S. National Oceanic and Atmospheric Administration"),
    _thing("reef_fish", "fishes", "fish10.webp", "fish coral reef", "orange fish over a coral reef",
           "Public Domain, Alan Slater"),
    _thing("trout_shoal", "fishes", "fish11.webp", "fish trout", "a shoal of rainbow trout",
           "Public Domain, Jon Sullivan"),
    _thing("fish_silver", "fishes", "fish12.webp", "fish", "small silver fish on the sea floor",
           "Public Domain, Stefano Guerrieri"),
    _thing("wrasse", "fishes", "fish13.webp", "fish wrasse", "colourful wrasse among rocks",
           "Public Domain, Stefano Guerrieri"),
    _thing("squirrelfish", "fishes", "fish14.webp", "fish", "red fish among red weed",
           "Public Domain, Stefano Guerrieri"),
    # GCompris "categorization": renewable energy
    _thing("windmill_stone", "renewable", "windmill.webp", "windmill mill", "stone tower windmill with sails",
           "Public Domain, G-Man"),
    _thing("windmill_coast", "renewable", "windmill1.webp", "windmill mill tower", "stone windmill by the sea",
           "CC0-1.0, Jebulon"),
    _thing("windmill_white", "renewable", "windmill2.webp", "windmill mill", "white post windmill among trees",
           "Public Domain, Redlands597198"),
    _thing("dam_arch", "renewable", "dam1.webp", "dam water", "concrete dam releasing water",
           "Public Domain, Damsuki"),
    _thing("weir", "renewable", "dam2.webp", "dam water river weir", "small dam and weir on a river",
           "Public Domain, László Szalai"),
    _thing("solar_dish", "renewable", "solar1.webp", "solar dish reflector cooker", "parabolic solar cooker on grass",
           "CC0-1.0, Fluffyarse"),
    _thing("solar_oven", "renewable", "solar2.webp", "solar oven cooker", "box solar oven baking bread",
           "CC0-1.0, Ljubica Šaran"),
    _thing("geothermal", "renewable", "geothermal.webp", "steam smoke geothermal", "steam rising over a hot lake",
           "Public Domain, Titin36-commonswiki"),
    # GCompris "categorization": landmarks
    _thing("opera_house", "monuments", "operaHouse.webp", "opera house building harbour harbor",
           "the Sydney Opera House from the water", "CC0-1.0, Anonymous"),
    _thing("taj_mahal", "monuments", "tajMahal.webp", "taj mahal palace mausoleum tomb mosque dome",
           "the Taj Mahal across a river", "Public Domain, David Castor"),
    _thing("triumphal_arch", "monuments", "arcDeTriomphe.webp", "arch triumphal monument",
           "a triumphal arch with statues on top", "Public Domain, Markus Mark"),
    _thing("pisa", "monuments", "leaningTowerOfPisa.webp", "tower pisa", "the Leaning Tower of Pisa",
           "Public Domain, Andrux"),
    _thing("cathedral", "monuments", "cathedral.webp", "cathedral church", "towers of a baroque cathedral",
           "Public Domain, Michelangelo-36"),
    _thing("rushmore", "monuments", "mountRushmore.webp", "mountain rushmore sculpture monument faces rock",
           "Mount Rushmore's carved faces", "CC0-1.0, Jim Olah"),
    _thing("burj", "monuments", "burj.webp", "skyscraper tower building", "the Burj Khalifa at dusk",
           "Public Domain, Rafikas"),
    _thing("capitol", "monuments", "usCapitol.webp", "capitol building dome", "the United States Capitol",
           "CC0-1.0, Thomson200"),
    _thing("empire_state", "monuments", "empireState.webp", "skyscraper skyscrapers building tower",
           "the Empire State Building between dark towers", "CC0-1.0, Alex Liivet"),
    _thing("brandenburg_gate", "monuments", "brandenburgGate.webp", "gate columns monument",
           "the Brandenburg Gate lit at dusk", "Public Domain, Evans1551"),
    _thing("christ_redeemer", "monuments", "christTheRedeemer.webp", "statue christ redeemer",
           "the Christ the Redeemer statue on its hill", "CC0-1.0, MaxPixel, 2019"),
    _thing("qutub_minar", "monuments", "kutubMinar.webp", "tower minaret", "the Qutub Minar brick tower",
           "Public Domain, Srikumar Mukherjee"),
    _landmark("machu_picchu", "wonders/machuPicchu.webp", "mountain mountains ruins",
              "Machu Picchu's ruins below a peak", "CC0-1.0, Guillaume Pascal"),
    _landmark("petra", "wonders/petra.webp", "temple ruins rock facade", "the Treasury of Petra carved in rock",
              "Public Domain, Berthold Werner"),
    _landmark("chichen_itza", "wonders/chichenItza.webp", "pyramid temple", "the step pyramid of Chichén Itzá",
              "CC-BY-SA 4.0, Daniel Schwen"),
    _landmark("mont_st_michel", "france/montStMichel.webp", "abbey castle island monastery",
              "Mont-Saint-Michel across the salt meadows", "CC0-1.0, Ali Sabbagh"),
    _landmark("neuschwanstein", "germany/neuschwansteinCastle.webp", "castle palace",
              "Neuschwanstein castle above the forest", "CC0-1.0, cameralends"),
    _landmark("pont_du_gard", "france/pontduGard.webp", "aqueduct bridge", "the Pont du Gard aqueduct",
              "Public Domain, Mimova"),
    # GCompris "categorization" and "explore farm animals": everyday things and animals
    _thing("cup_saucer", "others", "buffetset.webp", "cup teacup saucer", "porcelain cup on its saucer",
           "CC0-1.0, Rijksmuseum"),
    _farm("dog", "dog.webp", "dog shepherd", "German shepherd dog on grass", "Public Domain, Hans Kemperman"),
    _farm("cow", "cow.webp", "cow cows cattle", "black-and-white cows in a field", "Public Domain, Dohduhdah"),
    _farm("kitten", "cat.webp", "cat kitten yarn", "kitten playing with a ball of yarn", "Public Domain, Loliloli"),
    _farm("hens", "chicken.webp", "chicken chickens hen hens", "four brown hens on grass",
          "Public Domain, Tranquilles"),
    _farm("horses", "horse.webp", "horse horses foal", "horses and a foal on a meadow", "CC0-1.0, Seth Zeigler"),
    _farm("duck", "duck.webp", "duck", "white duck by dark water", "CC0-1.0, Bernard Spragg"),
    _farm("sheep", "sheep.webp", "sheep lamb", "sheep standing on grass", "CC0-1.0, Rob Mitchell"),
    _farm("owl", "owl.webp", "owl bird", "tawny owl on a branch", "CC0-1.0, Lepale"),
    _farm("piglet", "pig.webp", "pig piglet", "spotted piglet on grass", "Public Domain, Teinesavaii"),
    _animal("narwhal", "narwhal.webp", "narwhal whale whales", "narwhals surfacing",
            "Public Domain, Dr Kristin Laidre"),
)

