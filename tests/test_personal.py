"""A visitor's own photos, without the app: safe reading of uploads, the private collection and the bounded store.

Uploads: a zip entry that leaves its folder, a zip bomb (by ratio, by the session's room, and with a header that
lies about the size), non-photos, class folders as labels. The collection: a text file named .jpg and a truncated
JPEG are skipped with their reasons while the good photos are added; labelled photos train a head measured against
ConSE; searches find the right photos; removing and clearing work. The store: photo and byte limits, the oldest
idle collection evicted first, a busy one never, the idle timeout, folders deleted. Real Tux Paint photos and the
real offline engine (tests/conftest.py); nothing here needs the network.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from searchcore.errors import EmptyCollectionError, LimitError
from searchcore.serve.personal import OWN_EXEMPLAR_MIX, CollectionStore, Limits, PersonalCollection, PersonalItem
from searchcore.serve.uploads import MAX_RATIO, Candidate, read_uploads, read_zip

STAMPS = Path("/usr/share/tuxpaint/stamps")
CLASSES = {"birds": "animals/birds", "flowers": "plants/flowers", "fruit": "food/fruit"}


def stamps(category: str, n: int) -> list[Path]:
    found = sorted(p for p in (STAMPS / category).rglob("*.png") if "mirror" not in p.name)
    if len(found) < n:
        pytest.skip(f"needs the Tux Paint stamps under {STAMPS / category} (apt-get install tuxpaint-stamps-default)")
    return found[:n]


def zip_of(entries: dict[str, bytes], compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compress) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def class_zip(per_class: int, prefix: str = "") -> bytes:
    return zip_of({f"{prefix}{label}/{p.name}": p.read_bytes()
                   for label, category in CLASSES.items() for p in stamps(category, per_class)})


def truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.effect_mandelbrot((96, 96), (-2, -1.5, 1, 1.5), 60).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---- reading uploads ---------------------------------------------------------------------------------------------
def test_zip_slip_entries_are_refused_and_the_rest_is_read(tmp_path: Path) -> None:
    good = stamps("animals/birds", 1)[0].read_bytes()
    path = write(tmp_path, "up.zip", zip_of({"../evil.png": good, "/etc/abs.png": good, "a/../../b.png": good,
                                             "C:/win.png": good, "ok.png": good}))
    result = read_zip(path, 10**8)
    assert [c.name for c in result.candidates] == ["ok.png"]
    refused = {s.name.split(": ", 1)[1] for s in result.skipped if "leaves the zip's folder" in s.why}
    assert refused == {"../evil.png", "/etc/abs.png", "a/../../b.png", "C:/win.png"}


def test_a_zip_bomb_is_refused_by_ratio_and_by_room(tmp_path: Path) -> None:
    good = stamps("animals/birds", 1)[0].read_bytes()
    path = write(tmp_path, "bomb.zip", zip_of({"bomb.png": b"\0" * 20_000_000, "ok.png": good}))
    result = read_zip(path, 10**9)
    assert [c.name for c in result.candidates] == ["ok.png"]
    [bomb] = result.skipped
    assert f"{MAX_RATIO}×" in bomb.why and "zip bomb" in bomb.why
    small_room = read_zip(write(tmp_path, "plain.zip", zip_of({"a.png": good, "b.png": good}, zipfile.ZIP_STORED)),
                          len(good) + 10)  # room for one photo only
    assert len(small_room.candidates) == 1 and "room" in small_room.skipped[0].why


def test_a_zip_whose_header_lies_about_the_size_is_read_no_further_than_allowed(tmp_path: Path) -> None:
    data = bytearray(zip_of({"liar.png": b"\0" * 5_000_000}))
    # patch the declared size (central directory and local header) down to 10 bytes: zipfile's reader would then
    # stop at 10 and complain; either way at most limit+1 bytes are read and the entry is skipped
    index = data.rfind(b"PK\x01\x02")
    data[index + 24 : index + 28] = (10).to_bytes(4, "little")
    data[22:26] = (10).to_bytes(4, "little")
    result = read_zip(write(tmp_path, "liar.zip", bytes(data)), 10**9)
    assert not result.candidates and len(result.skipped) == 1


def test_class_folders_give_labels_and_a_wrapping_folder_does_not(tmp_path: Path) -> None:
    labelled = read_zip(write(tmp_path, "classes.zip", class_zip(2, prefix="photos/")), 10**8)
    assert sorted({c.label for c in labelled.candidates}) == sorted(CLASSES) and not labelled.skipped
    wrapped = read_zip(write(tmp_path, "trip.zip", zip_of({f"trip/{p.name}": p.read_bytes()
                                                            for p in stamps("animals/birds", 2)})), 10**8)
    assert [c.label for c in wrapped.candidates] == ["", ""]


def test_non_photos_and_nested_zips_are_skipped_and_resource_forks_ignored(tmp_path: Path) -> None:
    good = stamps("animals/birds", 1)[0].read_bytes()
    path = write(tmp_path, "mixed.zip", zip_of({"notes.txt": b"hello", "inner.zip": b"PK", "__MACOSX/._a.png": b"x",
                                                "._b.png": b"x", "a.png": good}))
    result = read_zip(path, 10**8)
    assert [c.name for c in result.candidates] == ["a.png"]
    why = {s.name.split(": ", 1)[1]: s.why for s in result.skipped}
    assert set(why) == {"notes.txt", "inner.zip"} and "not a photo" in why["notes.txt"]


def test_loose_files_keep_their_names_and_a_broken_zip_says_so(tmp_path: Path) -> None:
    photo = stamps("animals/birds", 1)[0]
    result = read_uploads([(photo, "My Bird.png"), (write(tmp_path, "x.zip", b"not a zip"), "x.zip")], 10**8)
    assert result.candidates == [Candidate("My Bird.png", "", photo.read_bytes())]
    assert result.skipped[0].name == "x.zip" and "not a readable zip" in result.skipped[0].why


# ---- the collection, through the engine ---------------------------------------------------------------------------
@pytest.fixture
def store(offline_engine, tmp_path: Path) -> CollectionStore:
    store = offline_engine.collection_store(Limits(max_photos=40, max_bytes=50_000_000, max_collections=2))
    yield store
    store.close()


def test_bad_files_are_skipped_with_reasons_while_good_photos_are_added(offline_engine, store) -> None:
    good = [Candidate(p.name, "", p.read_bytes()) for p in stamps("animals/birds", 3)]
    bad = [Candidate("letter.jpg", "", b"Dear visitor, this is text."), Candidate("cut.jpg", "", truncated_jpeg())]
    with store.using("a", create=True) as mine:
        added = offline_engine.add_images(mine, [good[0], *bad, *good[1:]])
    assert added.added == 3 and len(mine) == 3
    why = {s.name: s.why for s in added.skipped}
    assert set(why) == {"letter.jpg", "cut.jpg"}
    assert "not a readable photo" in why["letter.jpg"] and "0x" not in why["letter.jpg"]
    assert "truncated" in why["cut.jpg"]
    assert all(it.path.is_file() and it.path.is_relative_to(store.root) for it in mine.items)
    hits = offline_engine.similar_images(good[1].data, 3, collection=mine)
    assert hits[0].label == good[1].name and hits[0].distance < 1e-4 and hits[0].caption == ""


def test_labelled_photos_train_a_head_measured_against_conse_and_words_find_them(offline_engine, store,
                                                                               tmp_path: Path) -> None:
    with store.using("a", create=True) as mine:
        result = read_zip(write(tmp_path, "classes.zip", class_zip(6)), 10**8)
        added = offline_engine.add_images(mine, result.candidates)
        head = added.summary["head"]
        assert head["trained"] and head["labels"] == sorted(CLASSES), head
        assert set(head["text_image_p10"]) == {"conse", "head", "served"}
        assert all(0.0 <= v <= 1.0 for v in head["text_image_p10"].values())
        assert head["seconds"] < 60
        hits = offline_engine.search_images("bird", 5, collection=mine)
        assert [h.label for h in hits[:3]] == ["birds"] * 3, hits
        # the labels' words have exemplars: every labelled photo is its own nearest, so all birds come first
        assert mine.own.head.exemplar_mix == OWN_EXEMPLAR_MIX > 0
        np.testing.assert_allclose(mine.exemplars.sims[:, 0], 1.0, atol=1e-5)
        birds = sum(it.label == "birds" for it in mine.items)
        assert {h.label for h in offline_engine.search_images("bird", birds, collection=mine)} == {"birds"}
        assert all(h.caption.endswith(".png") for h in hits)  # labelled: the file name follows the label
        flowers = offline_engine.search_images("flower", 4, collection=mine)
        assert flowers[0].label == "flowers", flowers


def test_remove_and_clear(offline_engine, store) -> None:
    photos = [Candidate(p.name, "", p.read_bytes()) for p in stamps("animals/birds", 4)]
    with store.using("a", create=True) as mine:
        offline_engine.add_images(mine, photos)
        gone = mine.items[0].path
        assert offline_engine.remove_images(mine, [0]) == 1 and len(mine) == 3 and not gone.exists()
        left = offline_engine.similar_images(photos[0].data, 3, collection=mine)
        assert photos[0].name not in {h.label for h in left}
        assert offline_engine.remove_images(mine) == 3 and len(mine) == 0 and mine.nbytes == 0
        with pytest.raises(EmptyCollectionError, match="add some first"):
            offline_engine.search_images("bird", 3, collection=mine)


# ---- the store's limits ----------------------------------------------------------------------------------------------
def test_photo_and_byte_limits_hold(offline_engine, store) -> None:
    photos = [Candidate(p.name, "", p.read_bytes()) for p in stamps("animals/birds", 5)]
    store.limits.max_photos = 3
    with store.using("a", create=True) as mine:
        mine.max_photos = 3
        added = offline_engine.add_images(mine, photos, train=False)
        assert added.added == 3 and [s.name for s in added.skipped] == [p.name for p in photos[3:]]
        assert all("at most 3 photos" in s.why for s in added.skipped)
        again = offline_engine.add_images(mine, photos[:1], train=False)
        assert again.added == 0 and "at most 3" in again.skipped[0].why
    with store.using("b", create=True) as other:
        other.max_bytes = len(photos[0].data) + 1
        added = offline_engine.add_images(other, photos[:2], train=False)
        assert added.added == 1 and "MB in all" in added.skipped[0].why


def _one_photo(store: CollectionStore, key: str, data: bytes = b"a") -> Path:
    """Add one (vector-less) photo to ``key``'s collection, made for it; its stored file."""
    with store.using(key, create=True) as mine:
        path = mine.store("x.png", data)
        mine.append([PersonalItem("x.png", "", path)], np.zeros((1, 4)), np.zeros((1, 3)), np.zeros((1, 2)),
                    np.zeros(1), len(data))
    return path


def test_a_full_store_evicts_nobody_and_close_deletes_everything(tmp_path: Path) -> None:
    store = CollectionStore(4, 3, 2, Limits(max_collections=2), root=tmp_path / "store")
    _one_photo(store, "a")
    _one_photo(store, "b")
    with pytest.raises(LimitError, match="Try again in 30 minutes"):
        _one_photo(store, "c")
    assert store.peek("a") is not None and store.peek("b") is not None and len(store) == 2
    store.close()
    assert not (tmp_path / "store").exists()


def test_idle_collections_are_dropped_with_their_folders(tmp_path: Path) -> None:
    import time

    store = CollectionStore(4, 3, 2, Limits(idle_seconds=60), root=tmp_path / "store")
    path = _one_photo(store, "a")
    assert path.is_file()
    assert store.sweep(time.monotonic() + 30) == 0
    assert store.sweep(time.monotonic() + 61) == 1 and not path.exists() and len(store) == 0
    path = _one_photo(store, "b", b"b")
    assert store.drop("b") and not path.exists() and not store.drop("b")


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEARCH_MY_MAX_PHOTOS", "7")
    monkeypatch.setenv("SEARCH_MY_MAX_MB", "3")
    monkeypatch.setenv("SEARCH_MY_MAX_COLLECTIONS", "5")
    monkeypatch.setenv("SEARCH_MY_IDLE_MINUTES", "2")
    assert Limits.from_env() == Limits(7, 3_000_000, 5, 120.0)


def test_a_collection_names_its_files_safely(tmp_path: Path) -> None:
    collection = PersonalCollection(tmp_path / "c", 4, 3, 2, 10, 10**6)
    path = collection.store("../../etc/passwd", b"x")
    assert path.is_relative_to(tmp_path / "c") and path.name == "passwd"
    assert collection.store("...", b"x").name == "photo"


def test_a_collection_nobody_touches_again_still_goes_after_the_timeout(tmp_path: Path) -> None:
    import time

    store = CollectionStore(4, 3, 2, Limits(idle_seconds=1.0), root=tmp_path / "store")
    path = _one_photo(store, "a")
    deadline = time.monotonic() + 10
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not path.exists() and len(store) == 0
    store.close()


def test_a_zip_of_very_many_files_is_looked_at_only_so_far(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from searchcore.serve import uploads

    monkeypatch.setattr(uploads, "MAX_ENTRIES", 3)
    good = stamps("animals/birds", 1)[0].read_bytes()
    result = read_zip(write(tmp_path, "many.zip", zip_of({f"{i}.png": good for i in range(5)})), 10**8)
    assert len(result.candidates) == 3 and "only the first 3" in result.skipped[0].why
