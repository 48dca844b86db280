"""The Map tab's drawing: the bundle's stored layout (:mod:`searchcore.layout`) as a plotly.js figure for ``gr.Plot``.

The page only draws what the build stored: one point per laid-out photo, coloured by label, the words of each region
written where it sits, and a visitor's own photos placed into the same layout (:func:`searchcore.layout.place`:
nothing is fitted again). Hovering a point shows its label and caption, and the photo beside the map; clicking it
fills the tab's photo box and asks for similar photos (:data:`MAP_JS` binds plotly.js's events, which ``gr.Plot``
does not pass on to Python).

Why ``gr.Plot`` and a figure written here as plotly's JSON: Gradio's own scatter plot (``gr.ScatterPlot``) offers
a tooltip of columns and a brushed x-range, not a clicked point, and no photo; ``gr.Plot`` draws a plotly figure
with plotly.js, which Gradio's front end already ships, and the figure is plain JSON, so the plotly Python package
(about 75 MB installed with narwhals) is not needed (``gradio.components.plot.PlotData`` carries the JSON, as
``gr.Plot`` itself does for a plotly figure).

The tab's two handlers (app.py's ``draw_map`` and ``map_similar``) do their work in :func:`draw` and :func:`similar`.

Importing this module imports Gradio (through :func:`plot` only; the figure itself is Gradio-free).
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from searchcore import layout as L
from searchcore.errors import BadArgumentError

if TYPE_CHECKING:
    from searchcore import Hit, SearchEngine
    from searchcore.bundle import Bundle
    from searchcore.serve.personal import PersonalCollection

#: 24 distinguishable colours (plotly's "Dark24"); labels past them share :data:`OTHER_COLOUR`
PALETTE = ("#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#222A2A", "#B68100", "#750D86", "#EB663B",
           "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D", "#6C7C32", "#778AAE", "#862A16", "#A777F1",
           "#620042", "#1616A7", "#DA60CA", "#6C4516", "#0D2A63", "#AF0038")
OTHER_COLOUR = "#9AA0A6"
MINE = "mine:"  # the prefix of a visitor's photo among the points' ids ("mine:3": their photo 3)
HEIGHT = 640

NO_MAP = ("**This bundle has no map**: it was built before maps were stored in bundles. Bring it up to date with "
          "`python -m training.build_assets --update {root}` (the map is computed from the photos' stored rows; "
          "nothing is extracted again). The offline bundle is rebuilt with its map by a newer version on its own.")

INTRO = ("Every photo of the collection, placed by where it sits in the word space (t-SNE of the embeddings Text → "
         "Image searches): photos the model reads alike sit together, and the nearest visual words are written over "
         "each region. Hover a point to see the photo; click it to find photos that look like it. Your own photos "
         "(from the \"Your photos\" tab) appear as black stars, placed where the model puts them.")

#: Binds the map's hover (photo preview) and click (photo number + search) once plotly.js has drawn it; run after
#: every redraw (Gradio may render a new plot element), a bound element is not bound twice.
MAP_JS = """
() => {
  const bind = (tries) => {
    const gd = document.querySelector('#map-plot .js-plotly-plot');
    if (!gd || typeof gd.on !== 'function') { if (tries > 0) setTimeout(() => bind(tries - 1), 200); return; }
    if (gd.dataset.mapBound === '1') return;
    gd.dataset.mapBound = '1';
    gd.on('plotly_hover', (event) => {
      const point = event.points && event.points[0];
      const data = point && point.customdata;
      const preview = document.querySelector('#map-preview');
      if (!data || !preview) return;
      const img = preview.querySelector('img');
      img.src = data[1];
      img.style.display = 'block';
      preview.querySelector('.map-caption').textContent = data[2];
    });
    gd.on('plotly_click', (event) => {
      const point = event.points && event.points[0];
      const data = point && point.customdata;
      const box = document.querySelector('#map-choice textarea, #map-choice input');
      const go = document.querySelector('#map-go');
      if (!data || !box || !go) return;
      box.value = String(data[0]);
      box.dispatchEvent(new Event('input', { bubbles: true }));
      setTimeout(() => go.click(), 100);
    });
  };
  bind(100);
}
"""

PREVIEW_HTML = """<div id="map-preview" style="min-height: 200px; text-align: center">
<img alt="the photo under the pointer" style="display: none; max-height: 200px; max-width: 100%; margin: 0 auto">
<div class="map-caption" style="margin-top: 6px">Hover a point to see its photo.</div></div>"""


def photo_url(path: str | Path) -> str:
    """The page's address of a photo Gradio serves (the collection's folder is among the app's allowed paths, a
    visitor's photos are in Gradio's upload folder): relative, so it works under a proxy's root path too."""
    return "gradio_api/file=" + quote(str(Path(path).resolve()))


def hover_text(label: str, caption: str, limit: int = 90) -> str:
    """What hovering a point says: its label, and its caption when it says more (escaped: plotly reads HTML)."""
    caption = re.sub(r"\s+", " ", caption or "").strip()
    if len(caption) > limit:
        caption = caption[: limit - 1].rstrip() + "…"
    parts = [label] + ([caption] if caption and caption.lower() != label.lower() else [])
    return " · ".join(parts)


def _trace(name: str, xy: np.ndarray, custom: list[list[str]], colour: str, size: float, **marker: Any
           ) -> dict[str, Any]:
    return {"type": "scatter", "mode": "markers", "name": name, "x": np.round(xy[:, 0], 4).tolist(),
            "y": np.round(xy[:, 1], 4).tolist(), "customdata": custom,
            "hovertemplate": "%{customdata[3]}<extra></extra>",
            "marker": {"color": colour, "size": size, "opacity": 0.85, **marker}}


def figure(bundle: Bundle, mine: PersonalCollection | None = None) -> dict[str, Any]:
    """The map as a plotly figure (a JSON-ready dict). Each point's ``customdata``: [its id (a collection id, or
    ``mine:N``), its photo's address, the hover text (plain), the hover text (escaped)]."""
    layout = bundle.layout
    if layout is None:
        raise BadArgumentError(NO_MAP.format(root=bundle.root))
    items = bundle.items
    labels = [items[int(i)].label for i in layout.ids]
    size = float(np.clip(11 - 1.6 * np.log10(max(len(labels), 1)), 4, 9))  # smaller dots when there are thousands
    coloured = [label for label, _ in Counter(labels).most_common(len(PALETTE))]
    colour = {label: PALETTE[n] for n, label in enumerate(sorted(coloured))}
    traces = []
    groups: dict[str, list[int]] = {}
    for row, label in enumerate(labels):
        groups.setdefault(label if label in colour else "", []).append(row)
    for label in sorted(groups, key=lambda name: (name == "", name)):
        rows = np.array(groups[label])
        custom = []
        for row in rows:
            item = items[int(layout.ids[row])]
            text = hover_text(item.label, item.caption)
            custom.append([str(item.id), photo_url(bundle.image_path(item)), text, html.escape(text)])
        name = label or f"other labels ({len(set(labels) - set(colour))})"
        traces.append(_trace(name, layout.xy[rows], custom, colour.get(label, OTHER_COLOUR), size))
    if mine is not None:
        with mine.lock:
            if len(mine):
                where = L.place(layout, bundle.vectors("semantic", layout.ids), mine.semantic)
                custom = []
                for n, own in enumerate(mine.items):
                    text = hover_text(f"your photo: {own.label}" if own.label else "your photo", own.name)
                    custom.append([f"{MINE}{n}", photo_url(own.path), text, html.escape(text)])
                traces.append(_trace(f"your photos ({len(mine)})", where, custom, "#111111", 15, symbol="star",
                                     line={"color": "#FFFFFF", "width": 1}))
    notes = [{"x": float(x), "y": float(y), "text": "<br>".join(html.escape(w) for w in words[:2]),
              "showarrow": False, "font": {"size": 13, "color": "#1F2937"}, "bgcolor": "rgba(255,255,255,0.72)",
              "borderpad": 2} for (x, y), words in zip(layout.centres.tolist(), layout.words) if words]
    axis = {"visible": False, "range": [-1.12, 1.12]}
    return {"data": traces,
            "layout": {"height": HEIGHT, "margin": {"l": 8, "r": 8, "t": 8, "b": 8}, "hovermode": "closest",
                       "xaxis": axis, "yaxis": {**axis, "scaleanchor": "x"}, "annotations": notes,
                       "legend": {"orientation": "h", "y": -0.02, "font": {"size": 11}},
                       "plot_bgcolor": "#FFFFFF", "paper_bgcolor": "rgba(0,0,0,0)", "dragmode": "pan"},
            "config": {"displaylogo": False, "scrollZoom": True}}


def summary(bundle: Bundle, mine: PersonalCollection | None = None) -> str:
    """The line under the map: how many photos it shows, of how many, and how it was made."""
    layout = bundle.layout
    if layout is None:
        return NO_MAP.format(root=bundle.root)
    shown = len(layout.ids)
    whole = len(bundle.items)
    part = f"all {whole:,} photos" if shown == whole else f"{shown:,} of the {whole:,} photos (a sample, by label)"
    own = f"; your {len(mine)} photos placed into it (★)" if mine is not None and len(mine) else ""
    return f"The map shows {part}, laid out by {layout.method} when the bundle was built{own}."


def plot(bundle: Bundle, mine: PersonalCollection | None = None) -> Any:
    """The figure as ``gr.Plot`` takes it (plotly JSON, drawn by Gradio's plotly.js)."""
    from gradio.components.plot import PlotData

    return PlotData(type="plotly", plot=json.dumps(figure(bundle, mine)))


def choice(value: Any, bundle: Bundle, mine: PersonalCollection | None) -> int | str:
    """The photo a click (or the typed box) chose: a collection id (int), or the path of a visitor's photo."""
    text = "" if value is None else str(value).strip()
    if text.startswith(MINE) and text[len(MINE):].isdigit():
        n = int(text[len(MINE):])
        if mine is None or not 0 <= n < len(mine):
            raise BadArgumentError("That photo of yours is no longer in your collection: open the Map tab again.")
        return str(mine.items[n].path)
    if not text.lstrip("-").isdigit():
        raise BadArgumentError("Choose a photo: click a point of the map, or type a photo's number (0 to "
                               f"{len(bundle.items) - 1}).")
    return int(text)


def draw(bundle: Bundle, mine: PersonalCollection | None = None) -> tuple[Any, str]:
    """The Map tab's plot (none when the bundle has no map) and the line under it."""
    return (None if bundle.layout is None else plot(bundle, mine)), summary(bundle, mine)


def similar(engine: SearchEngine, value: Any, k: int, mine: PersonalCollection | None) -> tuple[list[Hit], str]:
    """Image → Image from the photo chosen on the map (:func:`choice`), and the line above the results."""
    chosen = choice(value, engine.bundle, mine)
    hits = engine.similar_images(chosen, k)
    if isinstance(chosen, int):
        item = engine.bundle.items[chosen]
        return hits, f"Photos that look like photo {chosen}: **{hover_text(item.label, item.caption)}**"
    return hits, "Photos that look like your photo"
