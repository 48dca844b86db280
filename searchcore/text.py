"""Words in captions: tokens, stop words, a light plural rule, and the content words a caption gives a photo.

Used by head training (captions become training targets) and by the metrics (caption-word retrieval), so both
read a caption the same way. Stop words are a fixed English list rather than a library's, so targets and figures
never change with a dependency's version.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable

_STOP = """
a about above after again against all almost also am an and another any are around as at away back be because
been before being below between both but by called can cannot could did do does doing done down during each
either else even ever every few first for from further get gets go goes going got had has have having he her
here hers herself him himself his how however i if in into is it its itself just known last least less let like
likely made make makes many may me means might more most much must my myself near need never new next no nor
not now of off often old on once one only or other our ours ourselves out over own per perhaps put rather
really same see seen several she should show shown since so some something still such than that the their
theirs them themselves then there these they thing things this those though three through to too two under
until up upon us use used using usually very was way we well were what when where whether which while who whom
whose why will with within without would yet you your yours yourself yourselves
"""
STOP_WORDS = frozenset(_STOP.split())

_TOKEN = re.compile(r"[a-z]+")


def tokens(text: str) -> list[str]:
    """Lower-case alphabetic tokens (``"A Magellanic penguin."`` → ``["a", "magellanic", "penguin"]``)."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'").replace("'s", ""))


def singular(word: str) -> str:
    """A light English plural rule (``berries`` → ``berry``, ``boxes`` → ``box``, ``birds`` → ``bird``)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def same_word(a: str, b: str) -> bool:
    """``bird`` and ``birds`` are the same word for retrieval; ``bus`` and ``bu`` are not confused."""
    return a == b or singular(a) == singular(b)


def content_words(texts: Iterable[str], keep: Callable[[str], bool] = lambda _w: True) -> Counter[str]:
    """How often each content word (not a stop word, at least 3 letters, accepted by ``keep``) occurs in ``texts``."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w in tokens(text) if len(w) >= 3 and w not in STOP_WORDS and keep(w))
    return counts
