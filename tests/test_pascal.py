"""Pascal Sentences: the page parser and the resumable, retrying downloader, against a page served on loopback.

The tests write their own page in the real page's format (a table row per photo, five captions in a nested table)
with a few tiny JPEGs made by PIL, and serve it with http.server on 127.0.0.1; nothing touches the network.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from searchcore.errors import AssetSourceError
from training.pascal import CAPTIONS_FILE, PART_SUFFIX, download_pascal, load_pascal, parse_page

PAGE_PATH = "/pascal-sentences/"
# (folder on the page, file) -> five captions; the folders exercise the three renamed classes and a plain one.
PHOTOS = {
    ("aeroplane", "2008_000716.jpg"): [f"One jet lands at an airport, take {i}." for i in range(5)],
    ("aeroplane", "2008_000033.jpg"): [f"A plane on the tarmac number {i}." for i in range(5)],
    ("diningtable", "2008_000123.jpg"): [f"A dinner table set for {i} people." for i in range(5)],
    ("pottedplant", "2008_000456.jpg"): [f"A potted plant by a window, {i}." for i in range(5)],
    ("tvmonitor", "2008_000789.jpg"): [f"A television on a stand, view {i}." for i in range(5)],
}


def _jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (24, 24, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def tidy_page() -> str:
    rows = []
    for (folder, name), captions in PHOTOS.items():
        cells = "\n".join(f"<tr><td> {c} </td></tr>" for c in captions)
        rows.append(f'<tr><td><img src="{folder}/{name}"></td><td><table>\n{cells}\n</table></td></tr>')
    return ('<html><head><title>Pascal Sentences</title></head><body>\n<img src="logo.jpg">\n'
            '<img src="images/banner.jpg">\n<table>\n' + "\n".join(rows) + "\n</table></body></html>")


def sloppy_page() -> str:
    """The same content as hand-written HTML: upper case, attribute order, self-closing tags, missing end tags."""
    rows = []
    for (folder, name), captions in PHOTOS.items():
        # Line breaks inside captions and an entity that must be decoded; end tags of the caption cells left out.
        cells = "".join(f"<TR>\n<TD>\n  {c.replace(' ', chr(10) + '   ', 1)}" for c in captions)
        rows.append(f"<TR >\n <TD ALIGN=center><IMG ALT='photo' WIDTH=100 SRC='./{folder}/{name}' /></TD>"
                    f"\n <TD><TABLE BORDER=0>{cells}</TABLE></TD>")
    return "<HTML><BODY><P>Pascal &amp; friends<TABLE>" + "".join(rows) + "</TABLE>"


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    fail_first: int = 0  # answer the first N requests with 503
    honour_range: bool = True
    truncate: set[str] = field(default_factory=set)  # paths whose body is cut in half, then the connection closed
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ranges_for(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.requests if p == path]


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # keep the test output quiet
        pass

    def do_GET(self) -> None:
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        with state.lock:
            state.requests.append((path, self.headers.get("Range")))
            failing = len(state.requests) <= state.fail_first
        if failing:
            self.send_error(503, "Busy")
            return
        body = state.files.get(path)
        if body is None:
            self.send_error(404)
            return
        start, rng = 0, self.headers.get("Range")
        if rng and state.honour_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Type", "text/html; charset=utf-8" if path == PAGE_PATH else "image/jpeg")
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        self.wfile.write(chunk[: len(chunk) // 2] if path in state.truncate else chunk)


@pytest.fixture
def server() -> Iterator[tuple[str, ServerState]]:
    state = ServerState()
    state.files[PAGE_PATH] = tidy_page().encode("utf-8")
    for seed, (folder, name) in enumerate(PHOTOS):
        state.files[f"{PAGE_PATH}{folder}/{name}"] = _jpeg(seed)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}{PAGE_PATH}", state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _download(out: Path, url: str, **kwargs) -> object:
    kwargs = {"backoff": 0.0, "timeout": 5, "progress": False, "workers": 2, **kwargs}
    return download_pascal(out, url, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Parser


@pytest.mark.parametrize("page", [tidy_page, sloppy_page])
def test_parse_page_maps_classes_and_keeps_five_captions(page) -> None:
    base = "http://example.org/pascal-sentences/"
    photos = parse_page(page(), base)
    assert [(p.folder, p.filename) for p in photos] == list(PHOTOS)  # page order; logo and banner ignored
    for photo in photos:
        assert photo.url == f"{base}{photo.folder}/{photo.filename}"
        assert photo.captions == tuple(PHOTOS[photo.folder, photo.filename])
    by_folder = {p.folder: p for p in photos}
    assert by_folder["diningtable"].label == "dining table"
    assert by_folder["diningtable"].relpath == "dining_table/2008_000123.jpg"
    assert by_folder["pottedplant"].label == "potted plant"
    assert by_folder["tvmonitor"].label == "tv monitor"
    assert by_folder["tvmonitor"].class_name == "tv_monitor"
    assert by_folder["aeroplane"].label == "aeroplane"


def test_parse_page_resolves_against_the_page_url() -> None:
    html = '<table><tr><td><img src="bus/1.jpg"></td><td><table><tr><td>A red bus.</td></tr></table></td></tr>' \
           '<tr><td><img src="/mirror/cat/2.jpg"></td><td>A cat &amp; a sofa.</td></tr></table>'
    photos = parse_page(html, "https://mirror.test/pascal/index.html")
    assert [p.url for p in photos] == ["https://mirror.test/pascal/bus/1.jpg", "https://mirror.test/mirror/cat/2.jpg"]
    assert [p.captions for p in photos] == [("A red bus.",), ("A cat & a sofa.",)]


def test_parse_page_rejects_unsafe_names_and_duplicates() -> None:
    html = '<img src="cat/..jpg"><img src="cat/a.jpg"><img src="cat/a.jpg"><img src="unknown/b.jpg">'
    assert [p.filename for p in parse_page(html, "http://h/p/")] == ["a.jpg"]


# ---------------------------------------------------------------------------------------------------------------
# Downloader


def test_full_download_writes_photos_captions_and_collection(server, tmp_path: Path) -> None:
    url, state = server
    out = tmp_path / "pascal"
    collection = _download(out, url)

    renamed = {"diningtable": "dining_table", "pottedplant": "potted_plant", "tvmonitor": "tv_monitor"}
    expected = sorted(f"{renamed.get(folder, folder)}/{name}" for folder, name in PHOTOS)
    assert [item.path for item in collection.items] == expected
    assert [item.id for item in collection.items] == list(range(len(PHOTOS)))
    assert collection.name == "pascal" and collection.root == out
    for (folder, name), captions in PHOTOS.items():
        item = next(i for i in collection.items if i.path.endswith(name))
        assert (out / item.path).read_bytes() == state.files[f"{PAGE_PATH}{folder}/{name}"]
        assert item.captions == tuple(captions) and item.caption == captions[0]
    assert {i.label for i in collection.items} == {"aeroplane", "dining table", "potted plant", "tv monitor"}
    assert not list(out.rglob(f"*{PART_SUFFIX}"))

    saved = json.loads((out / CAPTIONS_FILE).read_text(encoding="utf-8"))
    assert list(saved) == expected
    assert saved["dining_table/2008_000123.jpg"] == PHOTOS["diningtable", "2008_000123.jpg"]
    assert load_pascal(out) == collection

    # A second run fetches the page only: finished photos are skipped.
    state.requests.clear()
    assert _download(out, url).items == collection.items
    assert [path for path, _ in state.requests] == [PAGE_PATH]


def test_resume_continues_a_part_file_with_a_range_request(server, tmp_path: Path) -> None:
    url, state = server
    out = tmp_path / "pascal"
    path = f"{PAGE_PATH}aeroplane/2008_000716.jpg"
    full = state.files[path]
    half = len(full) // 2
    (out / "aeroplane").mkdir(parents=True)
    (out / "aeroplane" / f"2008_000716.jpg{PART_SUFFIX}").write_bytes(full[:half])

    _download(out, url)

    assert state.ranges_for(path) == [f"bytes={half}-"]
    assert (out / "aeroplane" / "2008_000716.jpg").read_bytes() == full
    assert not (out / "aeroplane" / f"2008_000716.jpg{PART_SUFFIX}").exists()


def test_restarts_the_file_when_the_server_ignores_range(server, tmp_path: Path) -> None:
    url, state = server
    state.honour_range = False
    out = tmp_path / "pascal"
    (out / "tv_monitor").mkdir(parents=True)
    (out / "tv_monitor" / f"2008_000789.jpg{PART_SUFFIX}").write_bytes(b"stale bytes from another server")

    _download(out, url)

    assert (out / "tv_monitor" / "2008_000789.jpg").read_bytes() == state.files[f"{PAGE_PATH}tvmonitor/2008_000789.jpg"]


def test_retries_after_server_errors_with_exponential_backoff(server, tmp_path: Path, monkeypatch) -> None:
    url, state = server
    sleeps: list[float] = []
    monkeypatch.setattr("training.pascal.time.sleep", sleeps.append)
    state.fail_first = 3  # the page fails three times, then everything works
    collection = _download(tmp_path / "pascal", url, retries=5, backoff=0.5, workers=1)
    assert len(collection) == len(PHOTOS)
    assert state.requests[:4] == [(PAGE_PATH, None)] * 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_page_that_keeps_failing_raises_after_bounded_retries(server, tmp_path: Path) -> None:
    url, state = server
    state.fail_first = 10**6
    with pytest.raises(AssetSourceError, match=r"Pascal Sentences page .* after 3 attempts"):
        _download(tmp_path / "pascal", url, retries=2)
    assert len(state.requests) == 3
    assert not (tmp_path / "pascal").exists()


def test_missing_photo_is_not_retried(server, tmp_path: Path) -> None:
    url, state = server
    del state.files[f"{PAGE_PATH}pottedplant/2008_000456.jpg"]
    with pytest.raises(AssetSourceError, match="404"):
        _download(tmp_path / "pascal", url, retries=4)
    assert len(state.ranges_for(f"{PAGE_PATH}pottedplant/2008_000456.jpg")) == 1


def test_failed_download_leaves_no_file_under_the_final_name_and_resumes(server, tmp_path: Path) -> None:
    url, state = server
    out = tmp_path / "pascal"
    path = f"{PAGE_PATH}diningtable/2008_000123.jpg"
    state.truncate.add(path)  # every answer for this photo stops half way

    with pytest.raises(AssetSourceError, match=r"1 of 5 Pascal photos .*dining_table/2008_000123.jpg"):
        _download(out, url, retries=2)

    final = out / "dining_table" / "2008_000123.jpg"
    part = final.with_name(final.name + PART_SUFFIX)
    assert not final.exists()
    assert part.is_file() and 0 < part.stat().st_size < len(state.files[path])
    assert not (out / CAPTIONS_FILE).exists()  # the collection is not declared complete
    assert (out / "aeroplane" / "2008_000716.jpg").is_file()  # the other photos were kept
    with pytest.raises(AssetSourceError, match=r"captions\.json"):
        load_pascal(out)

    # Once the server behaves, the next run finishes the photo from where the .part stopped.
    state.truncate.clear()
    state.requests.clear()
    kept = part.stat().st_size
    _download(out, url)
    assert final.read_bytes() == state.files[path]
    assert state.ranges_for(path) == [f"bytes={kept}-"]
    assert len(load_pascal(out)) == len(PHOTOS)
