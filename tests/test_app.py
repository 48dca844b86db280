"""The app as its users meet it: ``python app.py`` in a subprocess, driven through its API with ``gradio_client``.

Every endpoint of the public contract answers with sensible results, every bad input comes back as a Gradio error
whose message names the problem (and the server keeps answering), and ten clients at once all get answers. The app
serves the offline bundle from the test cache, so nothing here needs the network.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from gradio_client import Client, handle_file
from PIL import Image

if TYPE_CHECKING:
    from _app_server import AppServer

pytest_plugins = ["_app_server"]

ENDPOINTS = {
    "/similar_images": ["image", "k"],
    "/similar_images_by_class": ["image", "imagenet_class", "k"],
    "/similar_words": ["query", "k"],
    "/tag_image": ["image", "k"],
    "/search_images": ["query", "k"],
    "/search_images_by_photo_and_words": ["image", "query", "k"],
    # a visitor's own photos (tests/test_my_photos.py)
    "/add_photos": ["files"],
    "/search_my_photos": ["query", "k"],
    "/similar_my_photos": ["image", "k"],
    "/clear_my_photos": [],
}
CAT_WORDS = {"cat", "cats", "kitten", "kittens", "feline", "tiger", "tabby", "kitty", "siamese", "persian", "lynx"}
CAPTION = re.compile(r"^(?P<label>[^·]+?) · (?:.+ · )?distance \d+\.\d{3}$")


def chelsea() -> str:
    import skimage

    return os.path.join(os.path.dirname(skimage.__file__), "data", "chelsea.png")


@pytest.fixture(scope="module")
def client(app_server: AppServer, tmp_path_factory: pytest.TempPathFactory) -> Client:
    return Client(app_server.url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def captions(result: list[dict[str, Any]]) -> list[str]:
    return [item["caption"] for item in result]


def words(result: dict[str, Any]) -> list[str]:
    assert result["headers"] == ["word", "distance"]
    return [row[0] for row in result["data"]]


def assert_still_serving(client: Client) -> None:
    result = client.predict("bird", 3, api_name="/search_images")
    assert len(result) == 3


def test_api_lists_exactly_the_public_endpoints_with_their_parameters(client: Client) -> None:
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == set(ENDPOINTS)  # examples, page load etc. add none
    assert not api["unnamed_endpoints"]
    for name, params in ENDPOINTS.items():
        assert [p["parameter_name"] for p in api["named_endpoints"][name]["parameters"]] == params, name


def test_search_images_bird_finds_birds(client: Client) -> None:
    result = client.predict("bird", 10, api_name="/search_images")
    assert len(result) == 10
    for item in result:
        assert CAPTION.match(item["caption"]), item["caption"]
        assert Path(item["image"]).is_file()
    labels = [CAPTION.match(c)["label"] for c in captions(result)]
    assert sum(label == "birds" for label in labels[:10]) >= 5, labels
    assert "birds" in labels[:3], labels


def test_tag_image_on_a_cat_photo_names_a_cat(client: Client) -> None:
    result = client.predict(handle_file(chelsea()), 10, api_name="/tag_image")
    tags = words(result)
    assert len(tags) == 10
    assert CAT_WORDS & set(tags), tags
    assert len(set(tags)) == 10
    # the classifier's and the collection's tags lead; each row still carries its cosine distance to the photo
    assert all(0.0 <= row[1] <= 2.0 for row in result["data"])


def test_similar_words_said(client: Client) -> None:
    assert "told" in words(client.predict("said", 10, api_name="/similar_words"))
    analogy = words(client.predict("king - man + woman", 5, api_name="/similar_words"))
    assert "queen" in analogy, analogy


def test_similar_images_puts_the_photo_itself_first(client: Client, offline_bundle: Path) -> None:
    items = [json.loads(line) for line in (offline_bundle / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    label = Counter(item["label"] for item in items).most_common(1)[0][0]
    item = next(it for it in items if it["label"] == label)
    result = client.predict(handle_file(str(offline_bundle / "images" / item["path"])), 5, api_name="/similar_images")
    assert len(result) == 5
    first = CAPTION.match(result[0]["caption"])
    assert first and first["label"] == label, result[0]["caption"]
    assert result[0]["caption"].endswith("distance 0.000")


@pytest.mark.parametrize("imagenet_class", [284, "Siamese cat", "284: Siamese cat, Siamese"])
def test_similar_images_by_class(client: Client, imagenet_class: int | str) -> None:
    result = client.predict(handle_file(chelsea()), imagenet_class, 6, api_name="/similar_images_by_class")
    assert len(result) == 6
    assert all(CAPTION.match(c) for c in captions(result))


def test_search_images_by_photo_and_words_turns_a_red_apple_green(client: Client, offline_bundle: Path) -> None:
    items = [json.loads(line) for line in (offline_bundle / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    apple = next(it for it in items if it["caption"] == "A red apple.")
    photo = handle_file(str(offline_bundle / "images" / apple["path"]))
    result = client.predict(photo, "green", 6, api_name="/search_images_by_photo_and_words")
    assert len(result) == 6 and all(CAPTION.match(c) for c in captions(result))
    first = CAPTION.match(result[0]["caption"])
    assert first and first["label"] == "fruit" and "green" in result[0]["caption"].lower(), captions(result)
    # the photo alone: the red apple itself first; the words alone: the same answer as /search_images
    alone = client.predict(photo, "", 3, api_name="/search_images_by_photo_and_words")
    assert alone[0]["caption"].startswith("fruit · A red apple.") and alone[0]["caption"].endswith("distance 0.000")
    words_only = client.predict(None, "fruit + red", 5, api_name="/search_images_by_photo_and_words")
    assert captions(words_only) == captions(client.predict("fruit + red", 5, api_name="/search_images"))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bad")
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(b"these bytes are not an image, whatever the name says\n" * 20)
    huge = folder / "huge.png"
    Image.new("RGB", (2000, 2000), (200, 120, 40)).save(huge)  # 4 MP, above the test app's 1 MP limit
    return {"corrupt": str(corrupt), "huge": str(huge)}


BAD_INPUTS = [
    # (id, endpoint, arguments (file names resolved from bad_files), words the message must contain)
    ("no-image", "/similar_images", [None, 5], ["no image"]),
    ("no-image-tags", "/tag_image", [None, 5], ["no image"]),
    ("corrupt-image", "/tag_image", ["@corrupt", 5], ["could not read", "image"]),
    ("huge-image", "/similar_images", ["@huge", 5], ["2000×2000", "limit"]),
    ("empty-query", "/search_images", ["", 5], ["empty"]),
    ("blank-query", "/similar_words", ["   ", 5], ["empty"]),
    ("unknown-word", "/similar_words", ["qwzxv", 5], ["qwzxv", "vocabulary"]),
    ("unknown-word-images", "/search_images", ["cat qwzxv", 5], ["qwzxv", "vocabulary"]),
    ("no-photo-no-words", "/search_images_by_photo_and_words", [None, "  ", 5], ["give a photo", "words"]),
    ("unknown-word-photo", "/search_images_by_photo_and_words", ["@chelsea", "red qwzxv", 5], ["qwzxv", "vocabulary"]),
    ("corrupt-photo", "/search_images_by_photo_and_words", ["@corrupt", "red", 5], ["could not read", "image"]),
    ("k-zero-photo", "/search_images_by_photo_and_words", ["@chelsea", "red", 0], ["k", "1 to 50", "got 0"]),
    ("k-zero", "/search_images", ["bird", 0], ["k", "1 to 50", "got 0"]),
    ("k-too-big", "/similar_words", ["said", 500], ["k", "1 to 50", "500"]),
    ("k-fraction", "/search_images", ["bird", 2.5], ["k", "whole number"]),
    ("class-out-of-range", "/similar_images_by_class", ["@chelsea", 5000, 5], ["imagenet class", "0 to 999", "5000"]),
    ("class-unknown", "/similar_images_by_class", ["@chelsea", "no such class", 5], ["no imagenet class", "no such"]),
]


@pytest.mark.parametrize(("endpoint", "args", "expected"), [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_a_gradio_error_that_names_the_problem(client: Client, bad_files: dict[str, str], endpoint: str,
                                                            args: list[Any], expected: list[str]) -> None:
    files = {**bad_files, "chelsea": chelsea()}
    resolved = [handle_file(files[a[1:]]) if isinstance(a, str) and a.startswith("@") else a for a in args]
    with pytest.raises(Exception) as caught:  # gradio_client raises AppError (an Exception) with the app's message
        client.predict(*resolved, api_name=endpoint)
    message = str(caught.value).lower()
    for fragment in expected:
        assert fragment.lower() in message, f"{fragment!r} not in {caught.value!s}"
    assert "traceback" not in message
    assert_still_serving(client)


def test_ten_clients_at_once_all_get_answers(app_server: AppServer, client: Client) -> None:
    assert_still_serving(client)  # the engine is up; now the load
    queries = ["bird", "fruit", "dog", "flower", "car", "fish", "tree", "hat", "boat", "cat"]

    def ask(query: str) -> tuple[int, list[str]]:
        own = Client(app_server.url, verbose=False, download_files=False)
        gallery = own.predict(query, 4, api_name="/search_images")
        similar = own.predict(query, 4, api_name="/similar_words")
        return len(gallery), words(similar)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(ask, queries))
    assert len(answers) == 10
    for query, (n_photos, similar) in zip(queries, answers, strict=True):
        assert n_photos == 4, query
        assert len(similar) == 4 and query not in similar, (query, similar)


def test_only_the_collection_photos_are_served(app_server: AppServer, client: Client) -> None:
    assert_still_serving(client)
    for path in [Path(__file__).resolve().parents[1] / "app.py", Path("/etc/passwd")]:
        url = app_server.url + "gradio_api/file=" + urllib.parse.quote(str(path))
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url, timeout=30)
        assert caught.value.code in (403, 404), (path, caught.value.code)


def test_an_unreachable_bundle_falls_back_to_the_offline_one(offline_bundle: Path, test_cache: Path,
                                                              tmp_path: Path) -> None:
    from _app_server import start_app, stop, wait_until_answering

    server = start_app(test_cache, tmp_path / "app.log", SEARCH_BUNDLE="nobody/no-such-bundle")  # Hub offline here
    try:
        wait_until_answering(server)
        result = Client(server.url, verbose=False, download_files=False).predict("bird", 3, api_name="/search_images")
        assert len(result) == 3, server.log()
        log = server.log()
        assert "nobody/no-such-bundle" in log and "offline demo bundle" in log, log
        # one warning line that says what to check, not a traceback
        assert "Traceback" not in log and "Check the repo id and your network" in log and "HF_TOKEN" in log, log
    finally:
        stop(server.process)


# ---- messages a newcomer can act on, showing nothing of the server ---------------------------------------------------
def test_an_empty_upload_is_named_as_the_user_named_it_not_by_the_servers_temp_path(client: Client,
                                                                                    tmp_path: Path) -> None:
    empty = tmp_path / "z.png"
    empty.write_bytes(b"")
    with pytest.raises(Exception) as caught:
        client.predict(handle_file(str(empty)), 5, api_name="/tag_image")
    message = str(caught.value)
    assert "'z.png'" in message and "as an image" in message, message
    assert "/" not in message.split("(")[0] and tempfile.gettempdir() not in message, message  # no folder at all
    assert "gradio" not in message.lower(), message


def test_a_very_long_unknown_word_is_shortened_in_the_message(client: Client) -> None:
    word = "q" + "wz" * 100  # 201 characters: within the query limit, so the vocabulary says no
    with pytest.raises(Exception) as caught:
        client.predict(word, 5, api_name="/similar_words")
    message = str(caught.value)
    assert word[:40] + "…" in message and "vocabulary" in message, message[:300]
    assert len(message) < 300, len(message)
    assert_still_serving(client)


SEND_IT = ["send the image itself", "gradio_client.handle_file", "not a path on the server"]


def call_raw(app_server: AppServer, endpoint: str, data: list[Any]) -> str:
    """POST to Gradio's plain HTTP API (no client library) and return the SSE answer."""
    request = urllib.request.Request(f"{app_server.url}gradio_api/call/{endpoint}", method="POST",
                                     data=json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{app_server.url}gradio_api/call/{endpoint}/{event_id}", timeout=120) as response:
        return response.read().decode()


@pytest.mark.parametrize("how", ["string", "file-data", "bare-dict"])
def test_an_image_named_by_a_path_on_the_server_is_refused_saying_what_to_send(app_server: AppServer, client: Client,
                                                                              how: str) -> None:
    """Gradio refuses the first two before the app runs (and would answer ``{"error": null}``); the third, a
    description without Gradio's ``meta``, passes Gradio unchecked, so the app itself must refuse it, unread: the
    path is a real photo on the server (scikit-image's cat), which must not be tagged."""
    path = chelsea()
    if how == "string":  # gradio_client sends a plain string as it is
        with pytest.raises(Exception) as caught:
            client.predict(path, 5, api_name="/tag_image")
        message = str(caught.value)
    else:
        value: dict[str, Any] = {"path": path}
        if how == "file-data":
            value["meta"] = {"_type": "gradio.FileData"}
        answer = call_raw(app_server, "tag_image", [value, 5])
        assert "event: error" in answer, answer[:500]
        message = answer
    for fragment in SEND_IT:
        assert fragment.lower() in message.lower(), message
    assert not CAT_WORDS & set(re.findall(r"[a-z]+", message.lower())), message  # refused, not tagged
    assert_still_serving(client)


def test_how_it_works_names_the_bundle_never_its_folder(offline_engine: Any, offline_bundle: Path) -> None:
    import app

    text = app.describe(offline_engine, offline_bundle.name)
    assert f"`{offline_bundle.name}`" in text
    assert str(offline_bundle) not in text and str(offline_bundle.parent) not in text, text
    assert app.bundle_name(str(offline_bundle)) == offline_bundle.name
    assert app.bundle_name("/srv/bundles/pascal") == "pascal"  # a folder by its name, even one not there
    assert app.bundle_name("user/pascal-search") == "user/pascal-search"  # a Hub id as it is
