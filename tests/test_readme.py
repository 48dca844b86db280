"""The README's "Use it from code" Python example, run as written against the real app (``python app.py``).

The example names its two inputs in the first lines, ``APP`` (the app's URL) and ``PHOTO`` (a URL or a local path):
the test swaps exactly those two values, for the test app's URL and scikit-image's cat photo (the Hub and Wikimedia
are out of reach here), and executes everything else verbatim. What the README says the endpoints return is then
checked on the objects the example made, and so are its comments' figures (the first photo for "bird", the first words
for "king - man + woman"): a README that no longer tells what the app answers fails here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _app_server import AppServer

pytest_plugins = ["_app_server"]

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Use it from code"
CAPTION = re.compile(r"^(?P<label>[^·]+?) · (?:.+ · )?distance \d+\.\d{3}$")


def chelsea() -> str:
    import skimage

    return os.path.join(os.path.dirname(skimage.__file__), "data", "chelsea.png")


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section, up to the next level-2 heading."""
    start = text.index(title + "\n")
    end = text.find("\n## ", start + len(title))
    return text[start:] if end < 0 else text[start:end]


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, re.DOTALL | re.MULTILINE)


def example_code(app_url: str, photo: str) -> str:
    """The section's Python, with only the values of ``APP`` and ``PHOTO`` replaced."""
    code = "\n".join(python_blocks(section(README.read_text(encoding="utf-8"), SECTION)))
    for name, value in (("APP", app_url), ("PHOTO", photo)):
        code, count = re.subn(rf"^{name} = [^#\n]*", f"{name} = {value!r}  ", code, flags=re.MULTILINE)
        assert count == 1, f"the README's example must assign {name} exactly once, on a line of its own"
    return code


def comment_after(code: str, statement: str) -> str:
    """The comment on the README example's line that begins with ``statement``."""
    line = next(line for line in code.splitlines() if line.strip().startswith(statement))
    return line.split("#", 1)[1].strip()


def table_rows(result: Any) -> list[list[Any]]:
    """A word table as the README describes it: {headers: ["word", "distance"], data: [[word, distance], ...]}."""
    assert isinstance(result, dict) and result["headers"] == ["word", "distance"], result
    rows = result["data"]
    assert rows and all(isinstance(w, str) and isinstance(d, (int, float)) for w, d in rows), rows
    return rows


def test_the_example_is_there_and_takes_its_inputs_from_two_names() -> None:
    blocks = python_blocks(section(README.read_text(encoding="utf-8"), SECTION))
    assert len(blocks) == 1
    assert example_code("http://127.0.0.1:1/", "cat.png").count("Client(APP)") == 1
    assert "handle_file(PHOTO)" in blocks[0]


def test_the_python_example_runs_as_written(app_server: AppServer, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(example_code(app_server.url, chelsea()), f"{README} ({SECTION[3:]})", "exec"), namespace)
    # (gradio_client announces each connection on stdout)
    printed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("Loaded as API")]

    # /search_images: a gallery of {image, caption}; the loop printed "caption image-path" for each photo
    photos = namespace["photos"]
    assert len(photos) == 8
    for photo, line in zip(photos, printed, strict=False):
        assert CAPTION.match(photo["caption"]), photo["caption"]
        assert Path(photo["image"]).is_file()  # a local copy of the photo
        assert line == f"{photo['caption']} {photo['image']}"

    code = example_code(app_server.url, chelsea())
    said = re.match(r'"([^"]+)"', comment_after(code, 'print(photo["caption"]'))
    assert said and photos[0]["caption"] == said[1], f"the README says {said}; the app answers {photos[0]['caption']!r}"

    # /similar_words and /tag_image both return a word table; the example printed their rows
    words, tags = table_rows(namespace["words"]), table_rows(namespace["tags"])
    said_rows = [[w, float(d)] for w, d in re.findall(r'\["([^"]+)", ([0-9.]+)\]', comment_after(code, "print(words"))]
    assert len(said_rows) >= 2 and len(words) == 5
    assert words[:len(said_rows)] == said_rows, f"the README says {said_rows}; the app answers {words}"
    assert len(tags) == 10
    assert printed[len(photos):len(photos) + 2] == [str(words), str(tags)]

    # the image galleries, by class given as a name and as an index
    for name in ("similar", "as_siamese", "as_284"):
        gallery = namespace[name]
        assert len(gallery) == 12 and all(CAPTION.match(item["caption"]) for item in gallery), name
    assert [item["caption"] for item in namespace["as_siamese"]] == [item["caption"] for item in namespace["as_284"]]
    # the photo and a word: a gallery too, and the word has its say (a red photo among the first)
    but_red = namespace["cat_but_red"]
    assert len(but_red) == 8 and all(CAPTION.match(item["caption"]) for item in but_red)
    assert any("red" in item["caption"].lower() for item in but_red[:4]), [item["caption"] for item in but_red]

    # your own photos: the cat was added, is found by a word and by itself, and cleared
    summary, mine, like_mine = namespace["summary"], namespace["mine"], namespace["like_mine"]
    assert summary["added"] == 1 and summary["skipped"] == [] and summary["photos"] == 1
    assert printed[len(photos) + 2] == "1 []"
    assert len(mine) == 1 and mine[0]["caption"].startswith(Path(chelsea()).name + " · distance ")
    assert printed[len(photos) + 3] == mine[0]["caption"]
    assert like_mine[0]["caption"] == Path(chelsea()).name + " · distance 0.000"
    assert namespace["cleared"] == {"removed": 1, "photos": 0}
