"""The page's tabs: where each tab's components sit and which of app.py's handlers each event calls.

app.py lists the five search tabs (:class:`SearchTab`); they share one layout, which :func:`search_tab` builds and
wires from each entry. "Your photos" (:func:`my_photos_tab`) and "Map" (:func:`map_tab`) are given their handlers.
What the page fills in once the engine is loaded (the banner, "How it works", the class list, the collection's
example photos): :class:`EngineViews`. The components themselves and the look: :mod:`searchcore.serve.page`.

Importing this module imports Gradio.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import gradio as gr

from searchcore.errors import SearchError
from searchcore.serve import map as map_view
from searchcore.serve import page, pagetext

if TYPE_CHECKING:
    from searchcore import SearchEngine
    from searchcore.serve.lifecycle import Served


@dataclass(frozen=True)
class SearchTab:
    """One of the five search tabs: its inputs (a k slider is added), its button, its results and its examples."""

    id: str  # the tab's id and the search's API name
    title: str  # (its opening line: pagetext.TAB_INTROS[id])
    search: Callable[..., Any]
    inputs: Callable[[], list[Any]]
    button: str
    results: Callable[[], Any]
    k: int
    examples: tuple[str, ...] = ()  # words to click; none: the example photos
    photo_words: bool = False  # its examples are (photo, words) pairs, the collection's joining once it is loaded


def search_tab(tab: SearchTab, photos: list[list[str]], pairs: Sequence[tuple[str, str]], most: int
               ) -> tuple[list[Any], gr.Examples]:
    """Lay out one search tab (inputs and examples on the left, results on the right) and wire its search, public as
    ``tab.id``. ``photos``: the example photos; ``pairs``: the (photo file, words) examples of a photo-words tab."""
    with gr.Tab(tab.title, id=tab.id):
        gr.Markdown(pagetext.TAB_INTROS[tab.id])
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                inputs = [*tab.inputs(), page.k_slider(tab.k, most)]
                go = gr.Button(tab.button, variant="primary")
                samples = (page.photo_word_samples(pairs) if tab.photo_words
                           else [[w] for w in tab.examples] if tab.examples else photos)
                examples = gr.Examples(samples, inputs=inputs[:2 if tab.photo_words else 1],
                                       label="Examples (click one)", api_visibility="private")
            with gr.Column(scale=2):
                results = tab.results()
        typed = [box.submit for box in inputs if isinstance(box, gr.Textbox)]
        gr.on([go.click, *typed], tab.search, inputs=inputs, outputs=results, api_name=tab.id, preprocess=False)
        page.run_example_search(examples, tab.search, inputs, results)
    return inputs, examples


class LoadedExamples:
    """The search tabs' photo examples, which the collection's own photos join once the engine is loaded.

    Until then (or when it cannot load) they keep the "any photo" examples as Gradio cached them at start-up: an
    update, even ``gr.skip()``, rebuilds a Dataset from its arguments, so it must be given samples Gradio may serve.
    """

    def __init__(self, tabs: Sequence[SearchTab], built: Mapping[str, tuple[list[Any], gr.Examples]]) -> None:
        """``built``: what :func:`search_tab` returned for each of ``tabs``, by its id."""
        self.photos = [built[t.id][1] for t in tabs if not t.examples and not t.photo_words]  # examples: photos
        self.pairs = [built[t.id][1] for t in tabs if t.photo_words]  # examples: (photo, words)
        self.cached = page.cached_samples(self.photos[0]) if self.photos else []
        self.cached_pairs = page.cached_samples(self.pairs[0]) if self.pairs else []

    @property
    def datasets(self) -> list[gr.Dataset]:
        return [ex.dataset for ex in (*self.photos, *self.pairs)]

    def updates(self, engine: SearchEngine | None, n: int, pairs: Sequence[tuple[str, str]]) -> list[gr.Dataset]:
        """The datasets' new samples: ``n`` collection photos and the collection's (caption, words) ``pairs`` first,
        or, with no ``engine``, the cached examples alone."""
        samples, paired = self.cached, self.cached_pairs
        if engine is not None:
            samples = [[p] for p in page.collection_photos(engine, n)] + samples
            paired = page.collection_photo_words(engine, pairs) + paired
        return [*(gr.Dataset(samples=samples) for _ in self.photos), *(gr.Dataset(samples=paired) for _ in self.pairs)]


class MyPhotos(NamedTuple):
    """The handlers "Your photos" wires, each public under its own name but ``tag_image`` (private on this tab)."""

    add_photos: Callable[..., Any]
    search_my_photos: Callable[..., Any]
    similar_my_photos: Callable[..., Any]
    tag_image: Callable[..., Any]
    clear_my_photos: Callable[..., Any]
    status_update: Callable[[Any], tuple[str, Any]]  # what the tab says after an upload or a clear (private)


def my_photos_tab(handlers: MyPhotos, intro: str, k: int, most: int, indexing: int) -> None:
    """Lay out "Your photos" and wire it: upload on the left (``indexing``: uploads read at once, all visitors
    together), the searches of the visitor's photos on the right."""
    with gr.Tab("Your photos", id="my_photos"):
        gr.Markdown(intro)
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                files = page.files_input()
                status = gr.Markdown("No photos of yours yet.", elem_classes=["my-status"])
                summary = gr.JSON(label="Summary (as the API returns it)", open=False, visible=False)
                clear = gr.Button("Clear my photos", variant="stop")
            with gr.Column(scale=2):
                with gr.Row():
                    query = page.words_input("bird", scale=3)
                    slider = page.k_slider(k, most)
                go = gr.Button("Search my photos", variant="primary")
                with gr.Accordion("Search with a photo, or tag it", open=False):
                    photo = page.image_input("A photo")
                    with gr.Row():
                        similar = gr.Button("Find similar in my photos")
                        tag = gr.Button("Tag this photo")
                    tags = page.words_table("Tags")
                results = page.results_gallery("Your matching photos")
        account = {"fn": handlers.status_update, "inputs": [summary], "outputs": [status, results],
                   "api_visibility": "private"}
        # its own concurrency group: reading uploads never takes a search's place in the queue
        gr.on([files.upload], handlers.add_photos, inputs=[files], outputs=summary, api_name="add_photos",
              preprocess=False, concurrency_limit=indexing, concurrency_id="my_photos_indexing",
              show_progress_on=[status]).then(**account)
        gr.on([go.click, query.submit], handlers.search_my_photos, inputs=[query, slider], outputs=results,
              api_name="search_my_photos", preprocess=False)
        gr.on([similar.click], handlers.similar_my_photos, inputs=[photo, slider], outputs=results,
              api_name="similar_my_photos", preprocess=False)
        gr.on([tag.click], handlers.tag_image, inputs=[photo, slider], outputs=tags, preprocess=False,
              api_visibility="private")
        gr.on([clear.click], handlers.clear_my_photos, outputs=summary, api_name="clear_my_photos").then(**account)


def map_tab(draw: Callable[..., Any], similar: Callable[..., Any], k: int, most: int) -> None:
    """Lay out "Map" and wire it (privately: the map is the page's, not the API's): opening the tab ``draw``s the
    map; a clicked point (or a typed number) asks ``similar`` for its look-alikes."""
    with gr.Tab("Map", id="map") as tab:
        gr.Markdown(map_view.INTRO)
        with gr.Row():
            with gr.Column(scale=3):
                plot = gr.Plot(label="The collection in the word space", elem_id="map-plot")
                note = gr.Markdown("The map appears here once the search engine is ready.", elem_classes=["map-note"])
            with gr.Column(scale=2, min_width=280):
                gr.HTML(map_view.PREVIEW_HTML)
                with gr.Row():
                    photo = gr.Textbox(label="Photo number", placeholder="click a point", max_lines=1, scale=2,
                                       elem_id="map-choice")
                    slider = page.k_slider(k, most)
                go = gr.Button("Find photos like it", variant="primary", elem_id="map-go")
                chosen = gr.Markdown("")
                results = page.results_gallery("Photos that look like it")
    # drawn on opening the tab (not at page load: a few thousand points), so the visitor's latest photos show
    tab.select(draw, outputs=[plot, note], api_visibility="private").then(
        None, js=map_view.MAP_JS, api_visibility="private")
    gr.on([go.click, photo.submit], similar, inputs=[photo, slider], outputs=[results, chosen],
          api_visibility="private")


def banner(served: Served) -> str:
    """The banner's text once the engine is served: what it serves, and why that bundle."""
    return pagetext.banner(served.engine.info, served.why)


@dataclass
class EngineViews:
    """What the page fills in once the engine is loaded (at each page load): the banner, the build's progress line
    (hidden then), the "How it works" panel, the class list and the examples of the collection's photos."""

    status: gr.Markdown
    building: gr.Markdown
    about: gr.Markdown
    classes: gr.Dropdown
    examples: LoadedExamples

    @property
    def outputs(self) -> list[Any]:
        return [self.status, self.building, self.about, self.classes, *self.examples.datasets]

    def ready(self, served: Served, n: int, pairs: Sequence[tuple[str, str]]) -> tuple[Any, ...]:
        """The updates once ``served``: ``n`` of its photos and its (caption, words) ``pairs`` join the examples."""
        engine = served.engine
        classes = [f"{i}: {name}" for i, name in enumerate(engine.class_names)]
        return (banner(served), gr.Markdown(visible=False), pagetext.describe(engine, served.name),
                gr.Dropdown(choices=classes), *self.examples.updates(engine, n, pairs))

    def failed(self, error: BaseException) -> tuple[Any, ...]:
        """The updates when the engine could not be built: the banner says why (searchcore's message; else the log)."""
        message = str(error) if isinstance(error, SearchError) else "see the server log"
        return (f"**The search engine could not start:** {message}", gr.Markdown(visible=False), gr.skip(),
                gr.skip(), *self.examples.updates(None, 0, ()))
