"""The exceptions searchcore raises.

The core raises these; only the UI (app.py) turns them into user-facing errors. Every message says what was wrong
and what to do about it, so it can be shown to a person as is.
"""

from __future__ import annotations

from pathlib import Path

#: How much of a user's text a message quotes: enough to recognise it, never a whole pasted page.
QUOTE_LIMIT = 40


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` as a message quotes it: the first ``limit`` characters, and "…" when there was more."""
    return text if len(text) <= limit else text[:limit] + "…"


#: What a search of a visitor's own photos says before any was added (or after they were cleared or expired).
NO_PHOTOS_YET = ("You have no photos of your own yet: add some first (the 'Your photos' tab, or /add_photos with "
                 "image files or a .zip of class folders).")


class SearchError(Exception):
    """Base class of every error a user of searchcore can act on."""


class BadArgumentError(SearchError, ValueError):
    """An argument is out of range or of the wrong kind (k, an ImageNet class, a source name)."""


class ImageError(SearchError, ValueError):
    """An image could not be read, or is too large to be read safely."""


class QueryError(SearchError, ValueError):
    """A text query is empty or cannot be parsed."""


class UnknownWordError(QueryError, KeyError):
    """A word is not in the word-vector vocabulary."""

    def __init__(self, word: str, hint: str = "") -> None:
        self.word = word  # whole, for callers; the message quotes it shortened (a pasted page stays out of it)
        message = f"'{shorten(word)}' is not in the vocabulary of the word vectors."
        super().__init__(message + (f" {hint}" if hint else " Try a more common spelling or another word."))

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return str(self.args[0])


class BundleError(SearchError):
    """An asset bundle is missing, incomplete or inconsistent with its manifest."""

    def __init__(self, message: str, path: str | Path | None = None, hint: str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        text = message if path is None else f"{path}: {message}"
        if hint:
            text += f" {hint}"
        super().__init__(text)


class AssetSourceError(BadArgumentError):
    """A source (bundle, word vectors or backbone) names nothing that can be loaded."""


class LimitError(SearchError):
    """A visitor's private collection, or the server's room for such collections, is full."""


class EmptyCollectionError(SearchError):
    """A search of a visitor's private collection before any photo was added to it."""
