"""The "Your photos" handlers' work: a visitor's own collection held for one request, an upload read into it, a
clear, and what the tab says after each. The collections themselves: :mod:`searchcore.serve.personal`.

app.py's endpoints check what a request sent (the visitor first: :func:`searchcore.serve.page.visitor`) and call
these with the served engine. Importing this module imports Gradio.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from searchcore.errors import BadArgumentError
from searchcore.serve import page
from searchcore.serve.pagetext import my_photos_account

if TYPE_CHECKING:
    from searchcore import SearchEngine
    from searchcore.serve.lifecycle import Served
    from searchcore.serve.personal import PersonalCollection


@contextlib.contextmanager
def using(served: Served, key: str, create: bool = False) -> Iterator[tuple[SearchEngine, PersonalCollection]]:
    """The engine and the visitor ``key``'s own collection, held for one request (``create``: an upload makes it)."""
    assert served.photos is not None
    with served.photos.using(key, create=create) as mine:
        yield served.engine, mine


def add(key: str, paths: list[tuple[str, str]], served: Callable[[], Served], progress: gr.Progress
        ) -> dict[str, Any]:
    """Read the uploaded files ``paths`` (:func:`searchcore.serve.page.files`) into ``key``'s collection, made if
    need be; the summary the API returns. Gradio's copies of the upload are deleted whatever happens (the collection
    keeps its own), even when ``served()`` (waiting for the engine) fails."""
    from searchcore.serve.uploads import read_uploads, skipped_summary
    from searchcore.tempfiles import delete_file

    try:
        with using(served(), key, create=True) as (engine, mine):
            progress(0.0, desc="Reading your files")
            reading = read_uploads(paths, mine.room[1])

            def report(done: int, total: int) -> None:
                progress((done, total), desc=f"Reading photos {done}/{total}", unit="photos")

            added = engine.add_images(mine, reading.candidates, progress=report if reading.candidates else None)
    finally:
        for path, _ in paths:
            delete_file(path)
    return {"added": added.added, "skipped": skipped_summary([*reading.skipped, *added.skipped]), **added.summary}


def query_photo(mine: PersonalCollection, image: str | bytes) -> str | bytes:
    """``image`` to search ``mine`` with; an uploaded file is deleted with the collection."""
    if isinstance(image, str):
        mine.query_files.add(Path(image))
    return image


def clear(served: Served, key: str) -> dict[str, Any]:
    """Remove ``key``'s photos, its place among the server's live collections, and its files; the API's summary."""
    assert served.photos is not None
    mine = served.photos.peek(key)
    removed = served.engine.remove_images(mine) if mine is not None else 0
    served.photos.drop(key)
    return {"removed": removed, "photos": 0}


def forget(served: Served | None, request: gr.Request) -> None:
    """The browser tab closed: its photos go at once (the idle timeout catches the rest)."""
    if served is not None and served.photos is not None:
        with contextlib.suppress(BadArgumentError):
            served.photos.drop(page.visitor(request))


def peek(served: Served, request: gr.Request) -> PersonalCollection | None:
    """The visitor's own collection, if they have one (the map places it; no collection is made for it)."""
    if served.photos is None:
        return None
    with contextlib.suppress(BadArgumentError):  # no session (an API call): the map alone
        return served.photos.peek(page.visitor(request))
    return None


def status_update(summary: Any) -> tuple[str, Any]:
    """After an upload or a clear: the account of the collection; a clear also empties the results."""
    cleared = isinstance(summary, dict) and "removed" in summary
    return my_photos_account(summary), ([] if cleared else gr.skip())
