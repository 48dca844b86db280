"""A visitor's own photos through the real app: ``python app.py`` driven with ``gradio_client``, one client per visitor.

Two clients add different photos and each finds only its own; a zip of class folders gives labels and a trained
head with its figures against ConSE; one upload holding a zip with ``../`` entries and a zip bomb, a text file named
.jpg and a truncated JPEG gets a message for each while its good photos are added; clearing works; and a second app
started with small limits (``SEARCH_MY_MAX_PHOTOS``, ``SEARCH_MY_MAX_COLLECTIONS``) holds them.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from gradio_client import Client, handle_file
from test_personal import CLASSES, class_zip, stamps, truncated_jpeg, zip_of

if TYPE_CHECKING:
    from _app_server import AppServer

pytest_plugins = ["_app_server"]

CAPTION = re.compile(r"^(?P<label>[^·]+?) · (?:.+ · )?distance \d+\.\d{3}$")


def client(server: AppServer, tmp_path: Path) -> Client:
    return Client(server.url, verbose=False, download_files=str(tmp_path))


def labels(gallery: list[dict[str, Any]]) -> list[str]:
    found = []
    for item in gallery:
        match = CAPTION.match(item["caption"])
        assert match, item["caption"]
        found.append(match["label"])
    return found


def files(paths: list[Path]) -> list[Any]:
    return [handle_file(str(p)) for p in paths]


def test_two_clients_each_find_only_their_own_photos(app_server: AppServer, tmp_path: Path) -> None:
    alice, bob = client(app_server, tmp_path / "a"), client(app_server, tmp_path / "b")
    birds, flowers = stamps("animals/birds", 4), stamps("plants/flowers", 4)
    assert alice.predict(files(birds), api_name="/add_photos")["added"] == 4
    assert bob.predict(files(flowers), api_name="/add_photos")["added"] == 4
    mine = labels(alice.predict("flower", 10, api_name="/search_my_photos"))
    assert sorted(mine) == sorted(p.name for p in birds)  # the unlabelled photos: captioned with their file names
    theirs = labels(bob.predict(handle_file(str(birds[0])), 10, api_name="/similar_my_photos"))
    assert sorted(theirs) == sorted(p.name for p in flowers)
    own = alice.predict(handle_file(str(birds[0])), 1, api_name="/similar_my_photos")
    assert labels(own) == [birds[0].name] and own[0]["caption"].endswith("distance 0.000")
    for c in (alice, bob):
        c.predict(api_name="/clear_my_photos")


def test_a_zip_of_class_folders_gives_labels_and_a_trained_head(app_server: AppServer, tmp_path: Path) -> None:
    visitor = client(app_server, tmp_path)
    archive = tmp_path / "classes.zip"
    archive.write_bytes(class_zip(6, prefix="my photos/"))
    summary = visitor.predict([handle_file(str(archive))], api_name="/add_photos")
    assert summary["added"] == 18 and summary["labels"] == {label: 6 for label in CLASSES}, summary
    head = summary["head"]
    assert head["trained"] and head["labels"] == sorted(CLASSES)
    assert set(head["text_image_p10"]) == {"conse", "head", "served"}
    assert labels(visitor.predict("bird", 3, api_name="/search_my_photos")) == ["birds"] * 3
    visitor.predict(api_name="/clear_my_photos")


def test_bad_files_get_their_message_while_the_good_photos_are_added(app_server: AppServer, tmp_path: Path) -> None:
    visitor = client(app_server, tmp_path)
    good = stamps("animals/birds", 3)
    archive = tmp_path / "mixed.zip"
    archive.write_bytes(zip_of({"../../escape.png": good[0].read_bytes(), "bomb.png": b"\0" * 30_000_000,
                                good[1].name: good[1].read_bytes()}))
    text = tmp_path / "letter.jpg"
    text.write_text("Dear visitor, I am a letter, not a photo.")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(truncated_jpeg())
    summary = visitor.predict(files([archive, text, good[2], cut]), api_name="/add_photos")
    assert summary["added"] == 2 and summary["photos"] == 2, summary
    why = {s["file"]: s["why"] for s in summary["skipped"]}
    assert set(why) == {"mixed.zip: ../../escape.png", "mixed.zip: bomb.png", "letter.jpg", "cut.jpg"}, why
    assert "leaves the zip's folder" in why["mixed.zip: ../../escape.png"]
    assert "zip bomb" in why["mixed.zip: bomb.png"]
    assert "not a readable photo" in why["letter.jpg"] and "truncated" in why["cut.jpg"]
    assert sorted(labels(visitor.predict("bird", 5, api_name="/search_my_photos"))) == sorted([good[1].name,
                                                                                               good[2].name])
    visitor.predict(api_name="/clear_my_photos")


def test_clearing_empties_the_collection_and_a_search_says_how_to_add_photos(app_server: AppServer,
                                                                             tmp_path: Path) -> None:
    visitor = client(app_server, tmp_path)
    with pytest.raises(Exception, match="add some first"):
        visitor.predict("bird", 3, api_name="/search_my_photos")
    visitor.predict(files(stamps("animals/birds", 2)), api_name="/add_photos")
    assert visitor.predict(api_name="/clear_my_photos") == {"removed": 2, "photos": 0}
    with pytest.raises(Exception, match="add some first"):
        visitor.predict("bird", 3, api_name="/search_my_photos")
    with pytest.raises(Exception, match="No files yet"):
        visitor.predict([], api_name="/add_photos")
    assert len(visitor.predict("bird", 3, api_name="/search_images")) == 3  # the served collection is untouched


@pytest.fixture(scope="module")
def small_app(offline_bundle: Path, test_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    from _app_server import start_app, stop, wait_until_answering

    folder = tmp_path_factory.mktemp("small")
    (folder / "tmp").mkdir()
    # its own TMPDIR: where the visitors' photos go, so the last test can see them go
    server = start_app(test_cache, folder / "app.log", SEARCH_MY_MAX_PHOTOS="3", SEARCH_MY_MAX_MB="1",
                       SEARCH_MY_MAX_COLLECTIONS="1", TMPDIR=str(folder / "tmp"))
    try:
        wait_until_answering(server)
        yield server
    finally:
        stop(server.process)


def test_limits_hold(small_app: AppServer, tmp_path: Path) -> None:
    first, second = client(small_app, tmp_path / "1"), client(small_app, tmp_path / "2")
    birds = stamps("animals/birds", 5)
    summary = first.predict(files(birds), api_name="/add_photos")
    assert summary["added"] == 3 and summary["limits"] == {"photos": 3, "megabytes": 1.0}
    assert [s["file"] for s in summary["skipped"]] == [p.name for p in birds[3:]]
    assert all("at most 3 photos" in s["why"] for s in summary["skipped"])
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as archive:  # stored: no zip bomb, only too much
        archive.writestr("noise.png", bytes(1_500_000))
    over = first.predict([handle_file(str(big))], api_name="/add_photos")
    assert over["added"] == 0 and "room" in over["skipped"][0]["why"]
    # one live collection for the whole server: a second visitor's upload is refused, nobody's photos are evicted
    with pytest.raises(Exception, match=r"busy.*Try again in \d+ minute"):
        second.predict(files(birds[:1]), api_name="/add_photos")
    # and 40 visitors who only search take no collection either
    for i in range(40):
        with pytest.raises(Exception, match="add some first"):
            client(small_app, tmp_path / f"s{i}").predict("bird", 3, api_name="/search_my_photos")
    assert len(first.predict("bird", 3, api_name="/search_my_photos")) == 3
    first.predict(api_name="/clear_my_photos")


def test_stopping_the_app_deletes_the_visitors_photos(small_app: AppServer, tmp_path: Path) -> None:
    from _app_server import stop

    visitor = client(small_app, tmp_path)
    birds = stamps("animals/birds", 2)
    assert visitor.predict(files(birds), api_name="/add_photos")["added"] == 2
    shown = visitor.predict("bird", 2, api_name="/search_my_photos")
    query = stamps("animals/birds", 3)[2]
    visitor.predict(handle_file(str(query)), 1, api_name="/similar_my_photos")
    temp = small_app.log_path.parent / "tmp"
    [root] = list(temp.rglob("search-my-photos-*"))
    assert len(list(root.rglob("*.png"))) == 2 and len(shown) == 2
    stop(small_app.process)  # SIGTERM, as a Space or a supervisor stops it
    assert not root.exists()
    ours = {p.read_bytes() for p in [*birds, query]}
    left = [p for p in temp.rglob("*") if p.is_file() and p.read_bytes() in ours]
    assert not left, left
