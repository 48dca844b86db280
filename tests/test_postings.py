"""Index-first Text → Image and by-class search: posting tables with known answers on tiny data, and on the real
offline bundle the served ranking (candidates from indexes and lists, re-ranked) equal to the same score computed
exactly over every photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from searchcore.index import exact_search, unit_rows
from searchcore.models.exemplars import Exemplars, served_exemplars
from searchcore.models.scoring import query_parts
from searchcore.models.words import parse_query
from searchcore.postings import PartTables, dense_table, exemplar_table, table_parts

QUERIES = ["bird", "fruit + red", "christmas tree", "guitar", "tool", "hat", "2:bird + penguin", "horse", "dog",
           "ocean", "cat - dog", "red", "flower", "car", "fish", "vegetable", "tree", "music", "0.5:boat + water"]


def test_a_dense_table_lists_every_photo_with_a_score_best_first() -> None:
    scores = np.array([[0.2, 0.0], [0.9, 0.5], [0.2, 0.1], [0.7, 0.0]], np.float32)
    table = dense_table(["cat", "dog"], lambda part: scores[part], len(scores))
    cat, dog = table.row("cat"), table.row("dog")
    assert table.top(cat, 10)[0].tolist() == [1, 3, 0, 2]  # ties: the lower id first
    assert table.top(cat, 2)[1].tolist() == pytest.approx([0.9, 0.7])
    assert table.top(dog, 10)[0].tolist() == [1, 2]  # zeros are not listed
    assert table.size(cat) == 4 and table.size(dog) == 2
    assert table.scores_of(cat, np.array([3, 2, 1])).tolist() == pytest.approx([0.7, 0.2, 0.9])
    assert table.scores_of(dog, np.array([0, 3, 2])).tolist() == pytest.approx([0.0, 0.0, 0.1])  # unlisted: 0
    assert table.row("cats") == cat and table.row("bird") is None  # a plural finds its singular's list


def test_the_hierarchy_table_is_the_sparse_hierarchy_part_of_every_photo() -> None:
    from searchcore.models.hierarchy import MIN_PROBABILITY, hierarchy_part
    from searchcore.postings import hierarchy_table

    logits = np.random.default_rng(1).normal(0, 3, (300, 1000)).astype(np.float32)
    table = hierarchy_table(logits)
    assert table is not None
    for word in ["dog", "bird", "fruit", "animal"]:
        row = table.row(word)
        computed, _ = hierarchy_part(logits, parse_query(word))
        np.testing.assert_allclose(table.scores_of(row, np.arange(300)), computed, atol=1e-6)
        listed = table.top(row, 10_000)[0]
        # every photo with a probability of at least MIN_PROBABILITY is listed, and no other
        assert sorted(listed.tolist()) == np.flatnonzero(computed >= MIN_PROBABILITY).tolist()
    # a word the hierarchy places but no photo reaches keeps an empty list: it has its share, and every photo 0
    quiet = [w for w in table.words if table.size(table.row(w)) == 0]
    assert quiet, "some of WordNet's words get no photo of these 300"
    part, share = hierarchy_part(logits, parse_query(quiet[0]))
    assert share == 1.0 and not part.any()


def test_the_exemplar_table_keeps_the_nearest_known_photo_per_word() -> None:
    words = [{"cat"}, {"dog"}, {"cat", "pet"}]
    ids = np.array([[0, 2, 1], [1, 0, 2], [2, 0, -1]])
    sims = np.array([[1.0, 0.8, 0.3], [1.0, 0.4, -0.2], [1.0, 0.8, 0.0]], np.float32)
    table = exemplar_table(Exemplars(ids, sims, words))
    cat, pet, dog = table.row("cats"), table.row("pet"), table.row("dog")
    assert table.scores_of(cat, np.arange(3)).tolist() == pytest.approx([1.0, 0.4, 1.0])
    assert table.scores_of(pet, np.arange(3)).tolist() == pytest.approx([0.8, 0.0, 1.0])  # -0.2 counts as nothing
    assert table.scores_of(dog, np.arange(3)).tolist() == pytest.approx([0.3, 1.0, 0.0])
    assert table.top(cat, 10)[0].tolist() == [0, 2, 1]


def test_tables_survive_a_save_and_load_memory_mapped(tmp_path: Path) -> None:
    scores = np.random.default_rng(0).random((50, 3)).astype(np.float32)
    tables = PartTables(hierarchy=dense_table(["a", "b", "c"], lambda part: scores[part], 50))
    facts = tables.save(tmp_path / "p.npz")
    back = PartTables.load(tmp_path / "p.npz")
    assert facts == {"hierarchy": {"words": 3, "entries": 150}} and back.exemplars is None
    assert isinstance(back.hierarchy.ids, np.memmap)  # read as queries touch it, not at load
    for name in ("ids", "scores", "top_ids", "top_scores", "offsets"):
        np.testing.assert_array_equal(getattr(back.hierarchy, name), getattr(tables.hierarchy, name))
    assert back.hierarchy.row("b") == 1
    assert back.hierarchy.top(1, 3)[0].tolist() == np.argsort(-scores[:, 1], kind="stable")[:3].tolist()


def test_tables_of_an_older_layout_are_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "old.npz", **{"hierarchy.words": np.asarray(["a"]), "hierarchy.offsets": np.array([0, 1])})
    with pytest.raises(ValueError, match="layout 1"):
        PartTables.load(tmp_path / "old.npz")
    # layout 2: the best-first order as positions into the id-ordered list
    np.savez(tmp_path / "two.npz", version=np.asarray(2), **{"hierarchy.words": np.asarray(["a"]),
                                                             "hierarchy.best": np.array([0], np.int32)})
    with pytest.raises(ValueError, match="layout 2; this version reads layout 3"):
        PartTables.load(tmp_path / "two.npz")


def _exact(engine, query: str) -> np.ndarray:
    """The served Text → Image score of every photo as the metrics measure it
    (:func:`searchcore.quality.metrics.rankers`), with every photo's exemplars among the collection (as served): what
    the tables and the indexes stand in for."""
    from searchcore.quality.metrics import rankers

    bundle, words, head = engine.bundle, engine.words, engine.head
    everyone = np.arange(len(bundle.items))
    exemplars = served_exemplars(bundle.indexes["images"], bundle.features, bundle.items, words)
    semantic, conse = bundle.indexes["semantic"].get(everyone), bundle.indexes["conse"].get(everyone)
    measured = rankers(conse, semantic, head, words=words, features=bundle.features, logits=bundle.logits,
                       exemplars=exemplars)["served"]
    terms = parse_query(query)
    return measured(words.combine(terms), terms)


def test_the_served_ranking_is_the_measured_ranking_on_the_real_bundle(offline_engine) -> None:
    engine = offline_engine
    assert engine.head is not None and engine.bundle.tables.hierarchy is not None
    for query in QUERIES:
        exact = _exact(engine, query)
        served = engine.search_images(query, 10)
        order = np.argsort(-exact, kind="stable")[:10]
        assert [h.id for h in served] == order.tolist(), query
        np.testing.assert_allclose([1 - h.distance for h in served], exact[order], atol=1e-5)


def test_the_joint_index_reads_the_mixed_cosine_and_serves_as_the_two_indexes_do(offline_engine, monkeypatch) -> None:
    """The head's and ConSE's rows side by side in one index give (1-m)·cos_head + m·cos_ConSE (over √2 and the
    query's length) for a query's mix m; a bundle built before it (no joint index) reads the two indexes apart,
    with the same answers."""
    engine = offline_engine
    joint = engine.bundle.indexes["joint"]
    assert joint.nodes < len(joint)  # the head's crowds: near-copies listed under one node
    semantic, conse = engine.bundle.rows["semantic"], engine.bundle.rows["conse"]
    rng = np.random.default_rng(0)
    head_side, conse_side = (v / np.linalg.norm(v) for v in rng.normal(size=(2, semantic.shape[1])))
    for mix in (0.0, 0.3, 1.0):
        vector = np.concatenate([(1 - mix) * head_side, mix * conse_side])
        found = joint.query(vector, 20)
        mixed = (1 - mix) * semantic @ head_side + mix * conse @ conse_side
        scale = np.sqrt(2.0) * np.linalg.norm(vector)
        np.testing.assert_allclose(scale * (1 - found.distances[0]), mixed[found.ids[0]], atol=1e-5)
        np.testing.assert_allclose(scale * (1 - found.distances[0]), -np.sort(-mixed)[:20], atol=1e-5)
    with_joint = {q: engine.search_images(q, 10) for q in QUERIES}
    monkeypatch.delitem(engine.bundle.indexes, "joint")
    for query in QUERIES:
        assert engine.search_images(query, 10) == with_joint[query], query


def test_table_parts_equal_the_computed_parts_for_every_photo(offline_engine) -> None:
    engine, bundle = offline_engine, offline_engine.bundle
    exemplars = served_exemplars(bundle.indexes["images"], bundle.features, bundle.items, engine.words)
    everyone = np.arange(len(bundle.items))
    for query in ["bird", "christmas tree", "cat - dog", "2:fruit + red"]:
        terms = parse_query(query)
        computed = query_parts(engine.head, bundle.features, bundle.logits, terms, exemplars=exemplars)
        read = table_parts(bundle.tables, engine.head, terms, everyone)
        for (a, share_a), (b, share_b) in zip(computed, read, strict=True):
            assert share_a == pytest.approx(share_b) and (a is None) == (b is None), query
            if a is not None:
                np.testing.assert_allclose(a, b, atol=1e-5)


def test_by_class_search_from_candidates_finds_the_exact_neighbours(offline_engine, monkeypatch) -> None:
    from searchcore.serve import engine as engine_module

    engine, bundle = offline_engine, offline_engine.bundle
    cls = engine.resolve_class("Siamese cat")
    weights = engine.backbone.classifier_weights()[cls]
    exact_matrix = unit_rows(np.asarray(bundle.features) * weights)
    photos = range(0, len(bundle.items), 37)
    # the whole bundle is within the pool: exactly the re-weighted cosine's neighbours
    for photo in photos:
        want = exact_search(exact_matrix, bundle.features[photo] * weights, 10).ids[0].tolist()
        assert [h.id for h in engine.similar_images_by_class(photo, cls, 10)] == want
    # a pool of a quarter of the photos: candidates from the index, still (nearly) the same top 10
    monkeypatch.setattr(engine_module, "BY_CLASS_POOL", len(bundle.items) // 4)
    recall = []
    for photo in photos:
        want = set(exact_search(exact_matrix, bundle.features[photo] * weights, 10).ids[0].tolist())
        got = {h.id for h in engine.similar_images_by_class(photo, cls, 10)}
        recall.append(len(want & got) / 10)
    assert np.mean(recall) >= 0.9, recall


def test_the_threshold_algorithm_finds_the_exact_top_k_and_stops_early() -> None:
    from searchcore.topk import Source, top_k

    rng = np.random.default_rng(0)
    n = 5000
    a, b = rng.random(n).astype(np.float32), (rng.random(n) ** 8).astype(np.float32)  # b: few high values
    weights = (0.7, 0.3)
    read: list[int] = []

    def listed(values: np.ndarray) -> Source:
        order = np.argsort(-values, kind="stable")

        def fetch(depth: int) -> tuple[np.ndarray, np.ndarray]:
            read.append(depth)
            return order[:depth], values[order[:depth]]

        return order, fetch

    sources = [Source(w, listed(v)[1]) for w, v in zip(weights, (a, b))]
    found = top_k(sources, lambda ids: weights[0] * a[ids] + weights[1] * b[ids], 10, n)
    exact = weights[0] * a + weights[1] * b
    assert found.ids.tolist() == np.lexsort((np.arange(n), -exact))[:10].tolist() and found.exact
    assert found.depth < n and max(read) < n  # it stopped long before reading the lists to the end
    # a cap below what the bound needs: the best of what was read, said to be inexact
    capped = top_k(sources, lambda ids: weights[0] * a[ids] + weights[1] * b[ids], 10, n, start=2, cap=4)
    assert capped.depth == 4 and not capped.exact
