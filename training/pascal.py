"""The Pascal Sentences collection: 1000 photos (20 classes × 50), each with five captions written by people.

The collection lives on one HTML page (:data:`PASCAL_URL`): a table whose rows hold a photo
(``<img src="CLASS/FILE.jpg">``, relative to the page) and, in a nested table, its five captions. This module
parses that page, downloads every photo into ``OUT/<class_name>/<file>.jpg`` (resumable, with bounded retries) and
writes ``OUT/captions.json``; the result is a :class:`searchcore.collection.Collection` that
``training.build_assets`` turns into a bundle.

Run it::

    python -m training.pascal assets/pascal-photos            # download (or finish downloading) the collection
    python -m training.pascal assets/pascal-photos --page-url file:///mirror/pascal-sentences/index.html

In Python::

    from training.pascal import download_pascal, load_pascal
    collection = download_pascal(Path("assets/pascal-photos"))  # network
    collection = load_pascal(Path("assets/pascal-photos"))      # already downloaded, no network
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import posixpath
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

from searchcore import storage
from searchcore.collection import Collection, Item
from searchcore.errors import AssetSourceError

PASCAL_URL = "http://vision.cs.uiuc.edu/pascal-sentences/"
CAPTIONS_FILE = "captions.json"
PART_SUFFIX = ".part"
USER_AGENT = "semantic-search/0.1 (+https://huggingface.co/spaces; Pascal Sentences downloader)"

# The page's folder names, mapped to the class names the seed used (and the bundle labels are made from).
FOLDER_TO_CLASS = {
    "aeroplane": "aeroplane", "bicycle": "bicycle", "bird": "bird", "boat": "boat", "bottle": "bottle",
    "bus": "bus", "car": "car", "cat": "cat", "chair": "chair", "cow": "cow",
    "diningtable": "dining_table", "dog": "dog", "horse": "horse", "motorbike": "motorbike", "person": "person",
    "pottedplant": "potted_plant", "sheep": "sheep", "sofa": "sofa", "train": "train", "tvmonitor": "tv_monitor",
}
CLASS_NAMES = tuple(sorted(set(FOLDER_TO_CLASS.values())))
PHOTO_SUFFIXES = (".jpg", ".jpeg")
# A photo's file name goes straight into a local path, so only plain names are accepted (no "..", no slashes).
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Statuses worth asking again for: the server is overloaded or briefly broken, not refusing us for good.
_TRANSIENT_STATUS = {408, 425, 429}
_CHUNK = 1 << 16

T = TypeVar("T")


class PascalPhoto(NamedTuple):
    url: str  # absolute URL of the photo
    folder: str  # folder on the page, e.g. "diningtable"
    filename: str  # e.g. "2008_000123.jpg"
    label: str  # class name with spaces, e.g. "dining table"
    captions: tuple[str, ...]

    @property
    def class_name(self) -> str:
        return FOLDER_TO_CLASS[self.folder]

    @property
    def relpath(self) -> str:
        """Where the photo lives under the download folder: ``<class_name>/<file>``."""
        return f"{self.class_name}/{self.filename}"


# ---------------------------------------------------------------------------------------------------------------
# Parsing the page


class _PageParser(HTMLParser):
    """Collects photos and the text of the table cells that follow each one.

    The page is old hand-written HTML, so the parser keeps its own small stack of table/tr/td elements and closes
    cells and rows the way browsers do when an end tag is left out (a new ``<td>`` closes the open one, a new
    ``<tr>`` closes the open row). A photo owns the text of every leaf cell (a cell with no cell inside it) that
    comes after it, until the row holding the photo closes or the next photo starts.
    """

    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.photos: list[PascalPhoto] = []
        self._stack: list[str] = []  # open "table" / "tr" / "td" elements, innermost last
        self._cells: list[list[str]] = []  # text buffers of the open td elements
        self._leaf: list[bool] = []  # whether each open td is still a leaf (no td opened inside it)
        self._photo: tuple[str, str, str] | None = None  # (url, folder, filename) of the photo being filled
        self._photo_depth = 0  # len(self._stack) at the photo's row; the photo ends when that row closes
        self._captions: list[str] = []
        self._seen: set[str] = set()

    # -- element stack -------------------------------------------------------------------------------------------
    def _pop(self) -> None:
        tag = self._stack.pop()
        if tag == "td":
            text = " ".join("".join(self._cells.pop()).split())
            if self._leaf.pop() and text and self._photo is not None:
                self._captions.append(text)
        elif tag == "tr" and self._photo is not None and len(self._stack) < self._photo_depth:
            self._finish_photo()

    def _close_until(self, names: tuple[str, ...], stop_at: tuple[str, ...] = ()) -> bool:
        """Pop up to and including the innermost element named in ``names``, unless a ``stop_at`` comes first."""
        for tag in reversed(self._stack):
            if tag in stop_at:
                return False
            if tag in names:
                break
        else:
            return False
        while self._stack:
            tag = self._stack[-1]
            self._pop()
            if tag in names:
                return True
        return False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._stack.append("table")
        elif tag == "tr":
            self._close_until(("tr",), stop_at=("table",))
            self._stack.append("tr")
        elif tag in ("td", "th"):
            self._close_until(("td",), stop_at=("table", "tr"))
            for i in range(len(self._leaf)):
                self._leaf[i] = False
            self._stack.append("td")
            self._cells.append([])
            self._leaf.append(True)
        elif tag == "img":
            src = next((value for name, value in attrs if name == "src" and value), None)
            if src:
                self._start_photo(src.strip())
        elif tag == "br" and self._cells:
            self._cells[-1].append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._close_until(("table",))
        elif tag == "tr":
            self._close_until(("tr",), stop_at=("table",))
        elif tag in ("td", "th"):
            self._close_until(("td",), stop_at=("table", "tr"))

    def handle_data(self, data: str) -> None:
        if self._cells:
            self._cells[-1].append(data)

    # -- photos --------------------------------------------------------------------------------------------------
    def _start_photo(self, src: str) -> None:
        url = urljoin(self.base_url, src)
        parts = [unquote(p) for p in urlsplit(url).path.split("/") if p]
        if len(parts) < 2:
            return
        folder, filename = parts[-2].lower(), parts[-1]
        if folder not in FOLDER_TO_CLASS or not filename.lower().endswith(PHOTO_SUFFIXES):
            return  # a logo or icon, not one of the collection's photos
        if not _SAFE_NAME.fullmatch(filename) or url in self._seen:
            return
        self._finish_photo()
        self._seen.add(url)
        self._photo = (url, folder, filename)
        # The photo's row is the innermost open tr; a photo outside any row ends at the next photo.
        self._photo_depth = self._stack_depth_of_row()
        self._captions = []
        # The img's own cell is not a caption: mark it as not a leaf so its text (if any) is dropped.
        if self._leaf:
            self._leaf[-1] = False

    def _stack_depth_of_row(self) -> int:
        for depth in range(len(self._stack), 0, -1):
            if self._stack[depth - 1] == "tr":
                return depth
        return 0

    def _finish_photo(self) -> None:
        if self._photo is None:
            return
        url, folder, filename = self._photo
        label = FOLDER_TO_CLASS[folder].replace("_", " ")
        self.photos.append(PascalPhoto(url, folder, filename, label, tuple(self._captions)))
        self._photo, self._captions = None, []

    def close(self) -> None:
        super().close()
        while self._stack:
            self._pop()
        self._finish_photo()


def parse_page(html: str, base_url: str) -> list[PascalPhoto]:
    """Every Pascal photo on the page, in page order, with the captions from its table row.

    ``base_url`` is the page's own URL: the page links photos relative to it (``aeroplane/2008_000716.jpg``).
    Images outside the 20 class folders (logos, icons) are ignored; a photo listed twice is kept once.
    """
    parser = _PageParser(base_url)
    parser.feed(html)
    parser.close()
    return parser.photos


# ---------------------------------------------------------------------------------------------------------------
# Downloading


class _ShortReadError(Exception):
    """The connection closed before the body was complete (the ``.part`` file keeps what arrived)."""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code in _TRANSIENT_STATUS
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, FileNotFoundError):
        return False  # a file:// mirror without the file: asking again will not help
    return isinstance(exc, urllib.error.URLError | TimeoutError | ConnectionError | http.client.HTTPException
                      | _ShortReadError)


def _with_retries(action: Callable[[], T], what: str, retries: int, backoff: float) -> T:
    """Run ``action``; on a transient network error try again up to ``retries`` times, waiting 1, 2, 4… × backoff."""
    attempts = max(0, retries) + 1
    for attempt in range(attempts):
        try:
            return action()
        except Exception as exc:
            if not _is_transient(exc):
                if isinstance(exc, urllib.error.HTTPError):
                    raise AssetSourceError(f"Could not download {what}: the server answered HTTP {exc.code} "
                                           f"{exc.reason}.") from exc
                if isinstance(exc, urllib.error.URLError):
                    raise AssetSourceError(f"Could not download {what}: {exc.reason}.") from exc
                raise
            if attempt + 1 == attempts:
                raise AssetSourceError(f"Could not download {what} after {attempts} attempts "
                                       f"({type(exc).__name__}: {exc}). Check the network and run again: "
                                       "finished files are kept and partial ones resume.") from exc
            time.sleep(backoff * (2 ** attempt))
    raise AssertionError("unreachable")  # the loop either returns or raises


def _open(url: str, timeout: float, offset: int = 0) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _fetch_page(url: str, timeout: float) -> str:
    with _open(url, timeout) as response:
        raw = response.read()
        charset = response.headers.get_content_charset() if response.headers else None
    # Old pages often declare nothing and are Latin-1; UTF-8 first since it fails loudly on Latin-1 bytes.
    for encoding in (charset, "utf-8", "latin-1"):
        if encoding:
            try:
                return raw.decode(encoding)
            except (UnicodeDecodeError, LookupError):
                continue
    return raw.decode("latin-1")


def _content_range_start(value: str | None) -> int | None:
    match = re.match(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)", value or "")
    return int(match.group(1)) if match else None


def _download_once(url: str, dest: Path, timeout: float) -> None:
    """One attempt at ``dest``: continue ``dest.part`` with a Range request, rename it into place when complete."""
    part = dest.with_name(dest.name + PART_SUFFIX)
    offset = part.stat().st_size if part.is_file() else 0
    try:
        response = _open(url, timeout, offset)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:
            raise
        # The server cannot serve from our offset (the .part is stale or too long): start this file again.
        exc.close()
        part.unlink(missing_ok=True)
        offset = 0
        response = _open(url, timeout)
    with response:
        status = response.status or 200  # file:// URLs report no status
        length = response.headers.get("Content-Length") if response.headers else None
        if status == 206:
            if not offset or _content_range_start(response.headers.get("Content-Range")) != offset:
                # A piece we did not ask for: appending it would corrupt the file, so start the file again.
                part.unlink(missing_ok=True)
                raise _ShortReadError(f"{url}: the server sent an unexpected byte range")
            mode, expected_start = "ab", offset
        else:
            # The server ignored the Range header (or there was nothing to resume): write the whole file afresh.
            mode, expected_start = "wb", 0
        expected = expected_start + int(length) if length and length.isdigit() else None
        with open(part, mode) as handle:
            while chunk := response.read(_CHUNK):
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    size = part.stat().st_size
    if expected is not None and size != expected:
        raise _ShortReadError(f"{url}: got {size} of {expected} bytes")
    if size == 0:
        raise _ShortReadError(f"{url}: the server sent an empty file")
    os.replace(part, dest)


def download_photo(url: str, dest: Path, *, retries: int = 5, backoff: float = 0.5, timeout: float = 30) -> Path:
    """Download one file to ``dest`` (skipped when it is already there); never leaves a partial file at ``dest``."""
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    _with_retries(lambda: _download_once(url, dest, timeout), url, retries, backoff)
    return dest


def _collection(out_dir: Path, captions: dict[str, list[str]]) -> Collection:
    items = []
    for i, rel in enumerate(sorted(captions)):
        texts = tuple(captions[rel])
        label = rel.split("/", 1)[0].replace("_", " ")
        items.append(Item(i, rel, label, texts[0] if texts else label, texts))
    return Collection("pascal", out_dir, items)


def download_pascal(out_dir: Path, page_url: str = PASCAL_URL, *, retries: int = 5, backoff: float = 0.5,
                    timeout: float = 30, progress: bool = True, workers: int = 4) -> Collection:
    """Download the page and every photo into ``out_dir/<class_name>/<file>.jpg``; write ``captions.json``.

    Safe to run again: finished photos are skipped and ``.part`` files continue where they stopped. Raises
    :class:`AssetSourceError` when the page cannot be fetched, lists no photos, or some photos still fail after
    the retries (the message names them; ``captions.json`` is only written once every photo is in place).
    """
    out_dir = Path(out_dir)
    html = _with_retries(lambda: _fetch_page(page_url, timeout), f"the Pascal Sentences page {page_url}",
                         retries, backoff)
    photos = parse_page(html, page_url)
    if not photos:
        raise AssetSourceError(f"The page {page_url} lists no Pascal photos (expected <img src=\"CLASS/FILE.jpg\"> "
                               "in a table); the page layout may have changed.")
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [p for p in photos if not (out_dir / p.relpath).is_file()]
    failures: list[tuple[PascalPhoto, AssetSourceError]] = []
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="Pascal photos", unit="photo")
    try:
        # A few connections at once: the photos are small, so latency, not bandwidth, sets the pace.
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {pool.submit(download_photo, p.url, out_dir / p.relpath, retries=retries, backoff=backoff,
                                   timeout=timeout): p for p in todo}
            for future in as_completed(futures):
                try:
                    future.result()
                except AssetSourceError as exc:
                    failures.append((futures[future], exc))
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if failures:
        names = ", ".join(p.relpath for p, _ in failures[:5]) + (" …" if len(failures) > 5 else "")
        raise AssetSourceError(f"{len(failures)} of {len(photos)} Pascal photos could not be downloaded ({names}); "
                               f"first error: {failures[0][1]}") from failures[0][1]
    captions = {p.relpath: list(p.captions) for p in sorted(photos, key=lambda p: p.relpath)}
    storage.write_json(out_dir / CAPTIONS_FILE, captions)
    return _collection(out_dir, captions)


def load_pascal(out_dir: Path) -> Collection:
    """The collection from a folder :func:`download_pascal` filled (no network)."""
    out_dir = Path(out_dir)
    path = out_dir / CAPTIONS_FILE
    hint = f"Download it with: python -m training.pascal {out_dir}"
    if not path.is_file():
        raise AssetSourceError(f"No {CAPTIONS_FILE} in {out_dir}: the Pascal Sentences download is missing or did "
                               f"not finish. {hint}")
    try:
        captions = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise AssetSourceError(f"{path} is not valid JSON ({exc}). {hint}") from exc
    if not isinstance(captions, dict) or not all(isinstance(v, list) for v in captions.values()):
        raise AssetSourceError(f"{path} should map each photo's path to its list of captions. {hint}")
    for rel in captions:
        # captions.json is a file a person could edit: keep its paths inside out_dir.
        if posixpath.isabs(rel) or ".." in rel.split("/"):
            raise AssetSourceError(f"{path} lists {rel!r}, which is not a path inside {out_dir}. {hint}")
    missing = [rel for rel in captions if not (out_dir / rel).is_file()]
    if missing:
        raise AssetSourceError(f"{len(missing)} photos listed in {path} are missing (e.g. {missing[0]}). {hint}")
    return _collection(out_dir, captions)


# ---------------------------------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.pascal",
        description="Download the Pascal Sentences collection (1000 photos, 20 classes, five captions each) into "
                    "OUT/<class>/<file>.jpg and write OUT/captions.json. Safe to run again: it resumes.")
    parser.add_argument("out", type=Path, help="folder to download into, e.g. assets/pascal-photos")
    parser.add_argument("--page-url", default=PASCAL_URL, help=f"the collection's page (default: {PASCAL_URL})")
    parser.add_argument("--retries", type=int, default=5, help="extra attempts per request on network errors")
    parser.add_argument("--timeout", type=float, default=30, help="seconds before a request is given up")
    parser.add_argument("--workers", type=int, default=4, help="photos downloaded at once")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        collection = download_pascal(args.out, args.page_url, retries=args.retries, timeout=args.timeout,
                                     progress=not args.no_progress, workers=args.workers)
    except AssetSourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(collection)} photos in {len(collection.labels)} classes under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
