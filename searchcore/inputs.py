"""What one request may ask: the bounds on its text arguments, checked before any work is done.

A public server answers strangers, so every argument a request carries is bounded before it is parsed or searched:
a query's length (:data:`MAX_QUERY_CHARS`), an ImageNet class's (:data:`MAX_CLASS_CHARS`) and a word's weight
(:data:`MAX_WEIGHT`). Each check raises a :class:`~searchcore.errors.SearchError` subclass whose message names the
limit and quotes at most a short prefix of what was sent, so neither the work nor the answer grows with the input.
"""

from __future__ import annotations

import math

from .errors import BadArgumentError, QueryError, shorten

#: A text query's length: room for a long combination of words ("2:cat + sofa - dog …"), far from a pasted page.
MAX_QUERY_CHARS = 300
#: An ImageNet class as typed: the longest of the 1000 descriptions has 87 characters.
MAX_CLASS_CHARS = 120
#: The largest weight a word may carry ("2:cat"); a minus sign subtracts, so weights run from -100 to 100.
MAX_WEIGHT = 100.0


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
