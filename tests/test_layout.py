"""searchcore.layout (the collection's map) on tiny data, its place in a built bundle, and the Map tab's figure.

Clustered rows stand for a collection: each cluster is a direction of the word space with noise, each a label. The
map must keep clusters apart, be the same for the same rows, place a known row beside its neighbours without
fitting again, and name each region with the tag phrase of its direction. A tiny bundle built by
:func:`searchcore.build.write.write_bundle` must carry the map and :func:`searchcore.bundle.open_bundle` load it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from _synthetic import LABELS, tiny_bundle

from searchcore import bundle as B
from searchcore import layout as L
from searchcore.errors import BadArgumentError, BundleError
from searchcore.index import exact_search

DIM = 12


class ExactIndex(NamedTuple):
    """The tags index's interface over a matrix (exact cosine)."""

    rows: np.ndarray

    def query(self, queries: np.ndarray, k: int):
        return exact_search(self.rows, queries, k)

    def __len__(self) -> int:
        return len(self.rows)


def clustered(per: int, clusters: int = 4, noise: float = 0.15, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """``clusters`` groups of ``per`` unit rows around the first ``clusters`` axes; labels "c0", "c1", …"""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for c in range(clusters):
        centre = np.eye(DIM)[c]
        rows.append(centre + noise * rng.standard_normal((per, DIM)))
        labels += [f"c{c}"] * per
    out = np.concatenate(rows).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True), labels


def neighbour_agreement(xy: np.ndarray, labels: list[str], k: int = 5) -> float:
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    near = np.argsort(d, axis=1)[:, :k]
    names = np.array(labels)
    return float((names[near] == names[:, None]).mean())


# ---- the sample ---------------------------------------------------------------------------------------------------
def test_a_small_collection_is_laid_out_whole() -> None:
    assert L.sample(["a", "b", "a"], limit=5).tolist() == [0, 1, 2]


def test_the_sample_keeps_each_labels_share_and_its_seed() -> None:
    labels = ["big"] * 700 + ["mid"] * 250 + ["small"] * 48 + ["one"] * 2
    ids = L.sample(labels, limit=100, seed=3)
    assert len(ids) == 100 and len(set(ids.tolist())) == 100 and (np.diff(ids) > 0).all()
    counts = {name: sum(labels[i] == name for i in ids) for name in ("big", "mid", "small", "one")}
    assert abs(counts["big"] - 70) <= 1 and abs(counts["mid"] - 25) <= 1 and abs(counts["small"] - 5) <= 1
    assert counts["one"] >= 1  # a rare label still shows
    assert L.sample(labels, limit=100, seed=3).tolist() == ids.tolist()
    assert L.sample(labels, limit=100, seed=4).tolist() != ids.tolist()


def test_more_labels_than_places_still_gives_the_limit() -> None:
    labels = [f"l{i}" for i in range(30)] * 2
    assert len(L.sample(labels, limit=20)) == 20


# ---- the fit, the placement, the regions --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted() -> tuple[np.ndarray, list[str], np.ndarray]:
    rows, labels = clustered(15)
    return rows, labels, L.fit(rows)


def test_the_fit_keeps_clusters_apart_and_is_deterministic(fitted) -> None:
    rows, labels, xy = fitted
    assert xy.shape == (len(rows), 2) and xy.dtype == np.float32
    assert np.abs(xy).max() == pytest.approx(1.0, abs=1e-6)  # scaled into [-1, 1]
    assert neighbour_agreement(xy, labels) > 0.95
    assert np.array_equal(L.fit(rows), xy)
    # a shuffled space gives a different map: the test above is about these rows, not any rows
    assert neighbour_agreement(L.fit(np.random.default_rng(5).permutation(rows)), labels) < 0.6


def test_a_handful_of_photos_is_laid_out_without_tsne() -> None:
    rows, _ = clustered(1, clusters=3)
    xy = L.fit(rows)
    assert xy.shape == (3, 2) and np.isfinite(xy).all() and len({tuple(p) for p in xy.tolist()}) == 3
    assert L.fit(rows[:1]).tolist() == [[0.0, 0.0]]


def test_a_placed_row_lands_beside_its_neighbours(fitted) -> None:
    rows, labels, xy = fitted
    layout = L.Layout(np.arange(len(rows)), xy, np.zeros(len(rows), np.int32), np.zeros((1, 2), np.float32),
                      ((),), "test")
    # a sampled photo placed again lands on itself
    assert np.allclose(L.place(layout, rows, rows[[3, 20]]), xy[[3, 20]], atol=1e-3)
    # a new photo near cluster 2's direction lands among cluster 2's photos, not the others'
    new = np.eye(DIM, dtype=np.float32)[2] + 0.05 * np.random.default_rng(9).standard_normal(DIM).astype(np.float32)
    where = L.place(layout, rows, new)[0]
    centres = {c: xy[[i for i, name in enumerate(labels) if name == c]].mean(axis=0) for c in set(labels)}
    assert min(centres, key=lambda c: np.linalg.norm(centres[c] - where)) == "c2"
    # blocks give the same answer as one pass
    assert np.allclose(L.place(layout, rows, rows, block=7), L.place(layout, rows, rows), atol=1e-6)


def test_regions_are_named_by_their_directions_without_repeats(fitted) -> None:
    rows, labels, xy = fitted
    phrases = ["north", "east", "south", "west", "up", "down"]
    tags = ExactIndex(np.eye(DIM, dtype=np.float32)[[0, 1, 2, 3, 4, 5]])
    cluster, centres, words = L.regions(xy, rows, tags, phrases, per=2)
    assert len(centres) == len(words) == cluster.max() + 1
    named = [w for ws in words for w in ws]
    assert len(named) == len(set(named))  # no phrase twice
    # each label's photos sit in regions named first by that label's direction (c0 → north, c1 → east, …)
    for c, phrase in enumerate(phrases[:4]):
        theirs = {int(cluster[i]) for i, name in enumerate(labels) if name == f"c{c}"}
        assert any(words[r] and words[r][0] == phrase for r in theirs), (c, theirs, words)


def test_saved_and_loaded_alike_and_a_bad_file_is_refused(tmp_path: Path) -> None:
    rows, labels = clustered(6)
    phrases = ["north", "east", "south", "west"]
    layout = L.compute(rows, labels, ExactIndex(np.eye(DIM, dtype=np.float32)[:4]), phrases)
    L.save(tmp_path / "layout.npz", layout)
    back = L.load(tmp_path / "layout.npz", len(rows))
    for name in ("ids", "xy", "cluster", "centres"):
        assert np.array_equal(getattr(back, name), getattr(layout, name)), name
    assert back.words == layout.words and back.method == layout.method and "t-SNE" in back.method
    assert [p.name for p in tmp_path.iterdir()] == ["layout.npz"]  # no temporary file left
    with pytest.raises(ValueError, match="ids"):
        L.load(tmp_path / "layout.npz", len(rows) - 1)  # a map of more photos than the collection has


# ---- in a bundle ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return tiny_bundle(tmp_path_factory.mktemp("layout"))[0]


def test_a_build_writes_the_map_and_open_bundle_loads_it(built: Path) -> None:
    manifest = json.loads((built / B.MANIFEST).read_text())
    assert B.LAYOUT in manifest["files"]  # vouched for like every data file
    assert manifest["layout"]["points"] == 9 and manifest["build"]["layout_seconds"] >= 0
    bundle = B.open_bundle(built)
    layout = bundle.layout
    assert layout is not None and layout.ids.tolist() == list(range(9))
    # laid out from the semantic rows the bundle serves: computed again from them, the same map
    again = L.compute(bundle.rows["semantic"], [it.label for it in bundle.items], bundle.indexes["tags"],
                      bundle.tags.phrases)
    assert np.array_equal(again.xy, layout.xy) and again.words == layout.words
    assert all(w in bundle.tags.phrases for ws in layout.words for w in ws) and any(layout.words)


def test_a_bundle_without_a_map_loads_and_a_bad_map_is_refused(built: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(built, copy)
    fields = {k: v for k, v in B.verify(copy, check_sums=False).items() if k not in ("format", "files", "layout")}
    (copy / B.LAYOUT).unlink()
    B.write_manifest(copy, fields)
    assert B.open_bundle(copy).layout is None  # a bundle built before maps: served, without a map
    good = L.load(built / B.LAYOUT, 9)
    L.save(copy / B.LAYOUT, good._replace(ids=good.ids + 1))  # names a photo 9 of a 9-photo bundle
    B.write_manifest(copy, fields)  # its checksum agrees: the loader must catch it
    with pytest.raises(BundleError, match="map"):
        B.open_bundle(copy)


def test_the_map_figure_draws_every_point_and_places_a_visitors_photos(built: Path, tmp_path: Path) -> None:
    from searchcore.serve import map as M
    from searchcore.serve.personal import PersonalCollection, PersonalItem

    bundle = B.open_bundle(built)
    fig = M.figure(bundle)
    points = [row for trace in fig["data"] for row in trace["customdata"]]
    assert sorted(int(p[0]) for p in points) == list(range(9))
    assert {t["name"] for t in fig["data"]} == set(LABELS)
    for trace in fig["data"]:
        for (x, y), row in zip(zip(trace["x"], trace["y"]), trace["customdata"]):
            assert bundle.items[int(row[0])].label == trace["name"] and row[2].startswith(trace["name"])
            assert np.allclose([x, y], bundle.layout.xy[int(row[0])], atol=1e-3)
    words = {n["text"] for n in fig["layout"]["annotations"]}
    assert words and all(n.split("<br>")[0] in bundle.tags.phrases for n in words)
    json.dumps(fig)  # what gr.Plot is sent

    mine = PersonalCollection(tmp_path, bundle.features.shape[1], bundle.logits.shape[1], 16, 10, 10**7)
    mine.items = [PersonalItem("like-photo-4.png", "", tmp_path / "a.png")]
    mine.semantic = bundle.rows["semantic"][[4]]
    own = M.figure(bundle, mine)["data"][-1]
    assert own["name"] == "your photos (1)" and own["customdata"][0][0] == "mine:0"
    # placed into the stored map from the laid-out photos' semantic rows (the tiny random model makes several photos
    # near-twins of photo 4 in word space, so it lands among them rather than on it)
    expected = L.place(bundle.layout, bundle.rows["semantic"][bundle.layout.ids], mine.semantic)[0]
    assert np.allclose([own["x"][0], own["y"][0]], expected, atol=1e-3)
    assert M.choice("mine:0", bundle, mine) == str(tmp_path / "a.png") and M.choice(" 7 ", bundle, mine) == 7
    with pytest.raises(BadArgumentError, match="click a point"):
        M.choice("", bundle, mine)
    with pytest.raises(BadArgumentError, match="no longer"):
        M.choice("mine:3", bundle, mine)


def test_no_map_says_how_to_make_one(built: Path) -> None:
    from searchcore.serve import map as M

    bundle = B.open_bundle(built)
    bundle.layout = None
    assert "--update" in M.summary(bundle) and str(bundle.root) in M.summary(bundle)
    with pytest.raises(BadArgumentError, match="no map"):
        M.figure(bundle)
