"""The page in a real browser: headless Chromium (Debian's, driven by Playwright) against ``python app.py``.

Loads the page, visits every tab, runs a Text → Image search for "bird" and checks the gallery shows photos captioned
with their labels, runs an example with one click, and takes the screenshot the README shows (screenshot.png).
In the "Your photos" tab it uploads a zip of class folders, sees the progress and the summary (labels, a trained
head), searches the photos and takes your-photos.png. In the "Map" tab it waits for the drawn map (one mark per
laid-out photo, its regions' words), hovers a point (its photo appears), clicks it (its look-alikes) and takes map.png.
The screenshots go to a temporary folder: a test run changes no tracked file. ``python docs/screenshots.py`` runs
the screenshot tests with ``$SEARCH_SCREENSHOTS`` pointing at docs/, which is how the committed ones are renewed.
Needs /usr/bin/chromium (``apt-get install chromium``); Playwright's own browser download is not used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from _app_server import AppServer
    from playwright.sync_api import Browser, Page

pytest_plugins = ["_app_server"]
pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
TABS = {  # tab → a button only that tab has
    "Image → Image": "Find similar photos",
    "Image → Image by ImageNet class": "Find similar photos for this class",
    "Text → Text": "Find similar words",
    "Image → Tags": "Tag this photo",
    "Text → Image": "Search photos",
    "Your photos": "Search my photos",
}
SLOW = 300_000  # ms: the engine loads on first use, and the machine may be busy
QUICK = 90_000  # ms: once the page is up (the fixture waits for the engine)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"No Chromium at {CHROMIUM}: install it with `apt-get install chromium` (Debian/Ubuntu), or point "
                    "the CHROMIUM variable at a Chromium binary. Playwright's own browser download is not used.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() gives every run a fresh temporary profile
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the README's screenshots go: ``$SEARCH_SCREENSHOTS`` (docs/screenshots.py sets it), else a temp folder."""
    folder = Path(os.environ.get("SEARCH_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Browser, app_server: AppServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app_server.url, wait_until="domcontentloaded")
    # the banner names the served bundle once the engine is ready
    page.locator(".banner").get_by_text("Serving", exact=False).wait_for(timeout=SLOW)
    try:
        yield page
    finally:
        context.close()


def open_tab(page: Page, name: str) -> None:
    """Open the tab ``name``: from the tab bar, or from Gradio's "More tabs" menu where the bar overflows (the page
    has more tabs than a 1280-pixel bar shows)."""
    tab = page.get_by_role("tab", name=name, exact=True)
    if tab.count() and tab.first.is_visible():
        tab.first.click()
        return
    page.get_by_role("button", name="More tabs").click()
    page.locator(".overflow-dropdown").get_by_role("button", name=name, exact=True).click()


def visible_panel(page: Page):
    return page.locator("[role=tabpanel]:visible")


def test_tabs_search_and_screenshot(page: Page, tmp_path: Path, shots: Path) -> None:
    for tab, button in TABS.items():
        open_tab(page, tab)
        visible_panel(page).get_by_role("button", name=button, exact=True).wait_for()
    open_tab(page, "How it works")
    visible_panel(page).get_by_text("What is being served").wait_for()

    open_tab(page, "Text → Image")
    panel = visible_panel(page)
    panel.get_by_role("textbox", name="Words", exact=True).fill("bird")
    panel.get_by_role("button", name="Search photos", exact=True).click()
    thumbnails = panel.locator(".results .thumbnail-item img")
    thumbnails.first.wait_for(timeout=SLOW)
    page.wait_for_function(  # every photo has arrived and decoded
        """() => { const imgs = [...document.querySelectorAll('[role=tabpanel] .results .thumbnail-item img')]
                   .filter(i => i.offsetParent !== null);
                   return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        timeout=SLOW,
    )
    assert thumbnails.count() == 12  # the slider's default k
    captions = [c.inner_text() for c in panel.locator(".results .caption-label").all()]
    assert len(captions) == 12
    assert all(re.match(r"^[^·]+ · .*distance \d+\.\d{3}$", c) for c in captions), captions
    assert any("birds" in c for c in captions), captions

    page.mouse.move(0, 0)  # no hover effects in the picture
    page.screenshot(path=str(shots / "screenshot.png"))
    page.screenshot(path=str(tmp_path / "text_to_image.png"), full_page=True)
    assert (shots / "screenshot.png").stat().st_size > 10_000


def test_an_example_runs_with_one_click(page: Page, tmp_path: Path) -> None:
    open_tab(page, "Text → Text")
    panel = visible_panel(page)
    panel.locator("button.gallery-item", has_text="said").first.click()  # the example fills the box and searches
    first_words = panel.locator(".results [role=gridcell][data-col='0']")
    first_words.first.wait_for(timeout=SLOW)
    assert panel.get_by_role("textbox", name="Words", exact=True).input_value() == "said"
    assert "told" in [w.strip() for w in first_words.all_inner_texts()]
    page.screenshot(path=str(tmp_path / "text_to_text.png"), full_page=True)


def test_a_bad_input_shows_the_message(page: Page) -> None:
    open_tab(page, "Image → Tags")
    visible_panel(page).get_by_role("button", name="Tag this photo", exact=True).click()  # no photo given
    page.get_by_text("No image yet", exact=False).first.wait_for(timeout=SLOW)


def test_your_photos_upload_progress_search_and_screenshot(page: Page, tmp_path: Path, shots: Path) -> None:
    from test_personal import CLASSES, class_zip

    archive = tmp_path / "my-photos.zip"
    archive.write_bytes(class_zip(10))
    open_tab(page, "Your photos")
    panel = visible_panel(page)
    panel.locator(".my-upload input[type=file]").set_input_files(str(archive))
    # the progress of reading and indexing, then the account of what was added
    panel.get_by_text(re.compile(r"Reading (your files|photos)")).first.wait_for(timeout=QUICK)
    status = panel.locator(".block.my-status")
    status.get_by_text("photos added", exact=False).wait_for(timeout=QUICK)
    text = status.inner_text()
    assert "30 photos added" in text and "A head was trained" in text, text
    assert all(label in text for label in CLASSES), text
    panel.get_by_role("textbox", name="Words", exact=True).fill("bird")
    panel.get_by_role("button", name="Search my photos", exact=True).click()
    panel.locator(".results .thumbnail-item img").first.wait_for(timeout=QUICK)
    page.wait_for_function(
        """() => { const imgs = [...document.querySelectorAll('[role=tabpanel] .results .thumbnail-item img')]
                   .filter(i => i.offsetParent !== null);
                   return imgs.length == 12 && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        timeout=QUICK,
    )
    captions = [c.inner_text() for c in panel.locator(".results .caption-label").all()]
    assert captions[:3] and all(c.startswith("birds · ") for c in captions[:3]), captions
    page.mouse.move(0, 0)
    page.screenshot(path=str(shots / "your-photos.png"), full_page=True)
    assert (shots / "your-photos.png").stat().st_size > 10_000


def test_the_map_draws_the_collection_a_click_finds_look_alikes_and_screenshot(page: Page, offline_bundle: Path,
                                                                               tmp_path: Path, shots: Path) -> None:
    from searchcore.bundle import open_bundle

    layout = open_bundle(offline_bundle).layout
    open_tab(page, "Map")
    panel = visible_panel(page)
    if layout is None:  # a test cache built before bundles had maps (searchcore.build.offline.RECIPE not yet bumped)
        panel.get_by_text("This bundle has no map", exact=False).wait_for(timeout=SLOW)
        pytest.skip("the offline bundle in the test cache has no map; a newer offline RECIPE rebuilds it with one")
    points = panel.locator("#map-plot .scatterlayer .point")
    points.first.wait_for(timeout=SLOW)
    assert points.count() == len(layout.ids)  # one mark per laid-out photo
    written = [t.strip() for t in panel.locator("#map-plot .annotation-text").all_text_contents()]
    assert written and all(ws[0] in " ".join(written) for ws in layout.words if ws), (written, layout.words)
    assert "The map shows all" in panel.locator(".block.map-note").inner_text()

    # hovering a point shows its photo and caption beside the map
    box = points.nth(len(layout.ids) // 2).bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    preview = page.locator("#map-preview img")
    page.wait_for_function("() => { const i = document.querySelector('#map-preview img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=QUICK)
    hovered = page.locator("#map-preview .map-caption").inner_text()
    assert "gradio_api/file=" in (preview.get_attribute("src") or "") and hovered

    # clicking it asks for the photos that look like it: the photo itself first (distance 0), with its label
    page.mouse.click(x, y)
    panel.locator(".results .thumbnail-item img").first.wait_for(timeout=QUICK)
    page.wait_for_function(
        """() => { const imgs = [...document.querySelectorAll('[role=tabpanel] .results .thumbnail-item img')]
                   .filter(i => i.offsetParent !== null);
                   return imgs.length == 12 && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        timeout=QUICK,
    )
    chosen = panel.get_by_role("textbox", name="Photo number", exact=True).input_value()
    assert chosen.isdigit() and 0 <= int(chosen) < len(layout.ids)
    captions = [c.inner_text() for c in panel.locator(".results .caption-label").all()]
    assert captions[0].startswith(hovered.split(" · ")[0]) and captions[0].endswith("distance 0.000"), captions
    page.mouse.move(0, 0)
    page.screenshot(path=str(shots / "map.png"), full_page=True)
    assert (shots / "map.png").stat().st_size > 10_000
