"""What one request may ask: the bounds on its text arguments, checked before any work is done.

A public server answers strangers, so every argument a request carries is bounded before it is parsed or searched:
a query's length (:data:`MAX_QUERY_CHARS`), an ImageNet class's (:data:`MAX_CLASS_CHARS`), a word's weight
(:data:`MAX_WEIGHT`) and the number of results (:func:`check_k`: at most :data:`MAX_K`, or a caller's own limit).
Each check raises a :class:`~searchcore.errors.SearchError` subclass whose message names the limit and quotes at
most a short prefix of what was sent, so neither the work nor the answer grows with the input.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from .errors import BadArgumentError, QueryError, shorten

#: A text query's length: room for a long combination of words ("2:cat + sofa - dog …"), far from a pasted page.
MAX_QUERY_CHARS = 300
#: An ImageNet class as typed: the longest of the 1000 descriptions has 87 characters.
MAX_CLASS_CHARS = 120
#: The largest weight a word may carry ("2:cat"); a minus sign subtracts, so weights run from -100 to 100.
MAX_WEIGHT = 100.0
#: The most results one search may ask for (an app may allow fewer: :func:`check_k`'s ``most``).
MAX_K = 1000


def quoted(value: Any) -> str:
    """``value`` as a message quotes it: short, and never the whole of a huge number (whose repr may even fail)."""
    try:
        return shorten(repr(value))
    except ValueError:  # an int past Python's str-conversion limit
        return "a number too long to show"


def check_k(k: Any, most: int = MAX_K) -> int:
    """``k``, the number of results, as an ``int`` if it is a whole number from 1 to ``most``; else a
    :class:`BadArgumentError`. A whole float (a slider's 12.0) counts as whole; a bool does not."""
    import numpy as np

    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= most:
        raise BadArgumentError(f"k, the number of results, must be a whole number from 1 to {most}; got {quoted(k)}.")
    return int(k)


def check_k_sent(value: Any, most: int = MAX_K) -> int:
    """:func:`check_k` of a count as a request sends it, where a hand-written API call may send text (``"12"``)."""
    k = value
    if isinstance(k, str):
        with contextlib.suppress(ValueError):
            k = float(k.strip())
    try:
        return check_k(k, most)
    except BadArgumentError:  # the message quotes what was sent, not what it was read as
        raise BadArgumentError(f"k, the number of results, must be a whole number from 1 to {most}; got "
                               f"{quoted(value)}.") from None


def check_query(text: str, limit: int | None = MAX_QUERY_CHARS) -> str:
    """``text`` if it is at most ``limit`` characters long (``None``: any length); else a :class:`QueryError`."""
    if limit is not None and len(text) > limit:
        raise QueryError(f"The query is {len(text):,} characters long; the limit is {limit}. Type a few "
                         f"words (it began {shorten(text)!r}).")
    return text


def check_class_text(text: str) -> str:
    """An ImageNet class as typed, if it is at most :data:`MAX_CLASS_CHARS` long; else a :class:`BadArgumentError`."""
    if len(text) > MAX_CLASS_CHARS:
        raise BadArgumentError(f"The ImageNet class is {len(text):,} characters long; the limit is {MAX_CLASS_CHARS}. "
                               f"Type a class name such as 'Siamese cat' or an index from 0 to 999 (it began "
                               f"{shorten(text)!r}).")
    return text


def check_weight(weight: float, term: str) -> float:
    """A word's weight if it is finite and within ±:data:`MAX_WEIGHT`; else a :class:`QueryError` naming the term."""
    if not math.isfinite(weight) or abs(weight) > MAX_WEIGHT:
        raise QueryError(f"The weight of {shorten(term)!r} is out of range: a weight is a number from "
                         f"-{MAX_WEIGHT:g} to {MAX_WEIGHT:g}, as in '2:cat'.")
    return weight
