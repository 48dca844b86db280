"""The app as an AI assistant meets it: ``python app.py`` serves its searches (and the four "your photos" tools)
as MCP tools, and the official ``mcp`` Python client connects over streamable HTTP (``/gradio_api/mcp/``),
lists them and calls them.

The answers are checked for meaning (``bird`` finds photos labelled birds, ``said`` → told, the scikit-image cat is
tagged with a cat word), the photos that come back are fetched from their URLs, and a bad call comes back as a tool
error whose text says what to do. Nothing here needs the network: the image goes as a ``data:`` URL (Gradio's MCP
server fetches http(s) URLs only from public addresses, never from this machine's loopback).
"""

from __future__ import annotations

import ast
import asyncio
import base64
import io
import os
import re
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

if TYPE_CHECKING:
    from _app_server import AppServer

pytest_plugins = ["_app_server"]

TOOLS = {
    "similar_images": ["image", "k"],
    "similar_images_by_class": ["image", "imagenet_class", "k"],
    "similar_words": ["query", "k"],
    "tag_image": ["image", "k"],
    "search_images": ["query", "k"],
    "search_images_by_photo_and_words": ["image", "query", "k"],
    "add_photos": ["files"],
    "search_my_photos": ["query", "k"],
    "similar_my_photos": ["image", "k"],
    "clear_my_photos": [],
}
CAT_WORDS = {"cat", "cats", "kitten", "kittens", "feline", "tiger cat", "tabby", "tabby cat", "egyptian cat",
             "siamese cat", "persian cat", "kitty", "domestic cat"}
CAPTION = re.compile(r"^(?P<label>[^·]+?) · (?:.+ · )?distance \d+\.\d{3}$")


def chelsea_data_url() -> str:
    import skimage

    path = os.path.join(os.path.dirname(skimage.__file__), "data", "chelsea.png")
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


def endpoint(server: AppServer) -> str:
    return server.url + "gradio_api/mcp/"


async def _session_run(url: str, calls: list[tuple[str, dict[str, Any]]]) -> tuple[Any, list[Any]]:
    async with streamable_http_client(url) as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        results = [await session.call_tool(name, arguments) for name, arguments in calls]
    return tools, results


def session_run(server: AppServer, *calls: tuple[str, dict[str, Any]]) -> tuple[Any, list[Any]]:
    """Connect the official client, list the tools, make the calls in one session; (tools, results)."""
    return asyncio.run(asyncio.wait_for(_session_run(endpoint(server), list(calls)), timeout=300))


def text_of(result: Any) -> str:
    texts = [block.text for block in result.content if block.type == "text"]
    assert texts, result
    return "\n".join(texts)


def parsed(result: Any) -> Any:
    """A Gradio MCP answer is the output's Python literal as text (a gallery: a list of {image, caption})."""
    assert not result.isError, text_of(result)
    return ast.literal_eval(text_of(result))


def test_the_searches_are_the_tools_each_described_for_a_newcomer(app_server: AppServer) -> None:
    tools, _ = session_run(app_server)
    by_name = {tool.name: tool for tool in tools.tools}
    assert set(by_name) == set(TOOLS)  # the page load, example clicks and other helpers are no tools
    for name, arguments in TOOLS.items():
        tool = by_name[name]
        assert len(tool.description) > 80, (name, tool.description)
        assert "Returns:" in tool.description, name
        properties = tool.inputSchema["properties"]
        assert list(properties) == arguments, name
        for argument, schema in properties.items():
            assert len(schema.get("description", "")) > 20, (name, argument, schema)
        if "k" in properties:
            assert "1 to 50" in properties["k"]["description"], name
        if "image" in properties:  # what an image may be, said where an assistant reads it
            description = properties["image"]["description"]
            assert "http" in description and "base64" in description, description


def test_search_images_bird_returns_bird_photos_at_reachable_urls(app_server: AppServer) -> None:
    _, [result] = session_run(app_server, ("search_images", {"query": "bird", "k": 6}))
    gallery = parsed(result)
    assert len(gallery) == 6
    labels = []
    for item in gallery:
        match = CAPTION.match(item["caption"])
        assert match, item["caption"]
        labels.append(match["label"])
    assert labels.count("birds") >= 3 and "birds" in labels[:3], labels
    server = urllib.parse.urlsplit(app_server.url)
    for item in gallery:
        url = item["image"]["url"]
        parts = urllib.parse.urlsplit(url)
        assert (parts.scheme, parts.netloc) == (server.scheme, server.netloc), url  # an absolute URL of this app
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
            Image.open(io.BytesIO(response.read())).verify()  # the photo itself, not an error page


def test_similar_words_said_gives_told(app_server: AppServer) -> None:
    _, [said, analogy] = session_run(app_server, ("similar_words", {"query": "said", "k": 10}),
                                     ("similar_words", {"query": "king - man + woman", "k": 5}))
    table = parsed(said)
    assert table["headers"] == ["word", "distance"]
    words = [row[0] for row in table["data"]]
    assert len(words) == 10 and "told" in words[:5], words
    assert "queen" in [row[0] for row in parsed(analogy)["data"]]


def test_tag_image_tags_the_cat_photo_sent_as_a_data_url_with_a_cat_word(app_server: AppServer) -> None:
    _, [result] = session_run(app_server, ("tag_image", {"image": chelsea_data_url(), "k": 10}))
    rows = parsed(result)["data"]
    tags = [row[0] for row in rows]
    assert len(tags) == 10 and CAT_WORDS & set(tags), tags
    assert all(0.0 <= row[1] <= 2.0 for row in rows)


def test_similar_images_by_class_takes_the_image_and_a_class(app_server: AppServer) -> None:
    _, [result] = session_run(app_server, ("similar_images_by_class",
                                           {"image": chelsea_data_url(), "imagenet_class": 284, "k": 4}))
    gallery = parsed(result)
    assert len(gallery) == 4 and all(CAPTION.match(item["caption"]) for item in gallery)


def test_search_images_by_photo_and_words_takes_a_photo_and_words(app_server: AppServer) -> None:
    # the cat (sent as a data: URL) and "dog": the collection's dog first; the cat alone: a cat or a dog among the
    # first (photos of the same kind of thing); an unknown word: a tool error that names it
    _, [both, alone, unknown] = session_run(
        app_server,
        ("search_images_by_photo_and_words", {"image": chelsea_data_url(), "query": "dog", "k": 4}),
        ("search_images_by_photo_and_words", {"image": chelsea_data_url(), "query": "", "k": 4}),
        ("search_images_by_photo_and_words", {"image": chelsea_data_url(), "query": "qwzxv", "k": 4}),
    )
    gallery = parsed(both)
    assert len(gallery) == 4 and all(CAPTION.match(item["caption"]) for item in gallery)
    assert CAPTION.match(gallery[0]["caption"])["label"] == "dogs", gallery
    labels = [CAPTION.match(item["caption"])["label"] for item in parsed(alone)]
    assert {"cats", "dogs"} & set(labels), labels
    assert unknown.isError and "'qwzxv' is not in the vocabulary" in text_of(unknown), text_of(unknown)


def test_a_bad_call_is_a_tool_error_that_says_what_to_do(app_server: AppServer) -> None:
    _, [unknown, path, big_k] = session_run(
        app_server,
        ("search_images", {"query": "cat qwzxv", "k": 3}),
        ("tag_image", {"image": "/etc/passwd", "k": 3}),  # refused by Gradio's MCP server before the app: it asks
        ("similar_words", {"query": "said", "k": 500}),
    )
    assert unknown.isError and "'qwzxv' is not in the vocabulary" in text_of(unknown)
    assert path.isError and "url" in text_of(path).lower()
    assert big_k.isError and "1 to 50" in text_of(big_k)


def test_your_photos_tools_refuse_rather_than_share_one_collection_among_assistants(app_server: AppServer) -> None:
    # Gradio's MCP server is stateless: every assistant would share one collection, so the tools say so instead
    _, [search, clear] = session_run(app_server, ("search_my_photos", {"query": "bird", "k": 3}),
                                     ("clear_my_photos", {}))
    for result in (search, clear):
        assert result.isError and "cannot be kept private" in text_of(result), text_of(result)
