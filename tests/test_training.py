"""Tests for head training: the split, label words, the two losses, train_head, resumable extraction, and a short
real training run through searchcore.build.pipeline on a tiny synthetic bundle (tiny random timm model, synthetic word
vectors in the cache format). No network; every folder is a temp folder.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from searchcore import bundle as B
from searchcore.models.fit import (
    Split,
    TrainConfig,
    cosine_loss,
    hinge_rank_loss,
    label_targets,
    stratified_split,
    train_head,
)
from searchcore.models.words import WordVectors, label_words, segment

TINY_BACKBONE = "test_resnet@random"
PHOTO_LABELS = ("cat", "dog", "bottle", "roadsigns")  # "roadsigns" must be segmented into road + signs
IMAGENET_WORDS = ["siamese", "tabby", "tiger", "egyptian", "persian", "golden", "retriever", "beer", "wine", "water",
                  "pop", "jar", "goldfish", "espresso", "cup", "coffee", "mug", "sofa", "studio", "couch", "table"]


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # the models here are tiny: on a busy 2-core machine, torch's thread pool only adds contention
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- helpers ---------------------------------------------------------------------------------------------------------
def word_table(words: list[str], dim: int = 8, seed: int = 0, vectors: np.ndarray | None = None) -> WordVectors:
    if vectors is None:
        vectors = np.random.default_rng(seed).standard_normal((len(words), dim)).astype(np.float32)
    return WordVectors(source="synthetic", words=list(words), vectors=np.asarray(vectors, np.float32))


def write_words_cache(folder: Path, dim: int = 16) -> Path:
    """A word-vector table in the cache format (vocab.txt + vectors.npy) that load_word_vectors opens as is."""
    filler = ["q" + "".join(p) for p in itertools.product("abcdef", repeat=3)][:60]
    vocab = ["the", ",", ".", "of", "1999", "cat", "dog", "bottle", "road", "signs", "roads", "sign",
             *IMAGENET_WORDS, "u.s.", *filler]
    folder.mkdir(parents=True)
    np.save(folder / "vectors.npy", np.random.default_rng(1).standard_normal((len(vocab), dim)).astype(np.float32))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return folder


def make_photos(root: Path, labels=PHOTO_LABELS, per_label: int = 8, seed: int = 0) -> Path:
    """Small generated photos in class folders: each class its own colour and corner pattern."""
    rng = np.random.default_rng(seed)
    for n, label in enumerate(labels):
        (root / label).mkdir(parents=True, exist_ok=True)
        base = np.array([(60 * n + 40) % 256, (200 - 45 * n) % 256, (90 + 70 * n) % 256])
        for i in range(per_label):
            arr = np.clip(base + rng.integers(-50, 50, (40, 48, 3)) + 8 * i, 0, 255).astype(np.uint8)
            arr[: 4 * (i + 1), : 8 * (n + 1)] = 255 - arr[: 4 * (i + 1), : 8 * (n + 1)]
            Image.fromarray(arr).save(root / label / f"{label}_{i}.png")
    return root


# ---- stratified_split ------------------------------------------------------------------------------------------------
SPLIT_LABELS = ["a"] * 10 + ["b"] * 5 + ["c"] + ["d"] * 7 + ["e"] * 12
SPLIT_LABELS = [SPLIT_LABELS[i] for i in np.random.default_rng(3).permutation(len(SPLIT_LABELS))]


def test_split_is_deterministic_for_a_seed_and_changes_with_it():
    one, two = stratified_split(SPLIT_LABELS, 0.2, seed=5), stratified_split(SPLIT_LABELS, 0.2, seed=5)
    assert one.to_dict() == two.to_dict()
    other = stratified_split(SPLIT_LABELS, 0.2, seed=6)
    assert other.to_dict()["val"] != one.to_dict()["val"]


def test_split_sends_a_rounded_fifth_of_each_label_to_validation():
    split = stratified_split(SPLIT_LABELS, 0.2, seed=0)
    val = Counter(SPLIT_LABELS[i] for i in split.val)
    train = Counter(SPLIT_LABELS[i] for i in split.train)
    total = Counter(SPLIT_LABELS)
    for label, n in total.items():
        expected = round(0.2 * n) if n > 1 else 0
        assert val[label] == expected, label
        assert train[label] == n - expected, label
    assert val["c"] == 0 and train["c"] == 1  # a lone item always trains
    assert len(split.holdout) == 0


def test_split_holdout_classes_go_to_holdout_only():
    split = stratified_split(SPLIT_LABELS, 0.2, seed=1, holdout_classes=["d", "b"])
    assert sorted(SPLIT_LABELS[i] for i in split.holdout) == ["b"] * 5 + ["d"] * 7
    assert all(SPLIT_LABELS[i] not in ("b", "d") for i in np.concatenate([split.train, split.val]))


@pytest.mark.parametrize("holdout", [(), ("e",)])
def test_split_parts_are_disjoint_and_cover_every_item(holdout):
    split = stratified_split(SPLIT_LABELS, 0.2, seed=2, holdout_classes=holdout)
    parts = [set(split.train.tolist()), set(split.val.tolist()), set(split.holdout.tolist())]
    assert sum(len(p) for p in parts) == len(SPLIT_LABELS)
    assert set().union(*parts) == set(range(len(SPLIT_LABELS)))
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert Split.from_dict(split.to_dict()).to_dict() == split.to_dict()


# ---- label words -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compound_words() -> WordVectors:
    return word_table(["the", "road", "signs", "roads", "sign", "dining", "table", "cat"], dim=6, seed=2)


def test_segment_splits_a_compound_into_the_fewest_known_words(compound_words):
    assert segment("roadsigns", compound_words) == ["road", "signs"]
    assert segment("xyzzy", compound_words) is None


def test_label_words(compound_words):
    assert label_words("roadsigns", compound_words) == ["road", "signs"]
    assert label_words("dining table", compound_words) == ["dining", "table"]
    assert label_words("Dining_Table", compound_words) == ["dining", "table"]
    assert label_words("xyzzy", compound_words) is None
    assert label_words("dining xyzzy", compound_words) is None


def test_label_targets_are_unit_phrase_vectors_and_skip_unknown_labels(compound_words):
    targets = label_targets(["cat", "roadsigns", "xyzzy", "cat"], compound_words)
    assert sorted(targets) == ["cat", "roadsigns"]
    for vec in targets.values():
        assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
    expected = compound_words.unit("road") + compound_words.unit("signs")
    np.testing.assert_allclose(targets["roadsigns"], expected / np.linalg.norm(expected), atol=1e-6)


# ---- losses ----------------------------------------------------------------------------------------------------------
LABEL_MATRIX = torch.eye(3, 5)  # three orthogonal unit label vectors


def test_hinge_loss_is_zero_when_the_prediction_is_its_label_vector():
    pred = LABEL_MATRIX.clone() * 3.0  # scale must not matter: scores are cosines
    loss = hinge_rank_loss(pred, torch.tensor([0, 1, 2]), LABEL_MATRIX, margin=0.1)
    assert float(loss) == pytest.approx(0.0, abs=1e-7)


def test_hinge_loss_is_positive_for_another_labels_vector():
    pred = LABEL_MATRIX[1:2].clone()
    loss = hinge_rank_loss(pred, torch.tensor([0]), LABEL_MATRIX, margin=0.1)
    # label 1 violates by 0.1 - 0 + 1, label 2 by 0.1 - 0 + 0
    assert float(loss) == pytest.approx(1.2, abs=1e-6)


def test_hinge_loss_gradient_moves_toward_the_right_label():
    pred = torch.tensor([[0.6, 0.8, 0.0, 0.0, 0.0]], requires_grad=True)  # closer to label 1, true label 0
    target = torch.tensor([0])
    before = hinge_rank_loss(pred, target, LABEL_MATRIX)
    before.backward()
    assert before.item() > 0
    with torch.no_grad():
        stepped = pred - 0.1 * pred.grad
        after = hinge_rank_loss(stepped, target, LABEL_MATRIX)
        cos = torch.nn.functional.cosine_similarity
        assert float(after) < float(before)
        assert float(cos(stepped, LABEL_MATRIX[0:1])) > float(cos(pred, LABEL_MATRIX[0:1]))
        assert float(cos(stepped, LABEL_MATRIX[1:2])) < float(cos(pred, LABEL_MATRIX[1:2]))


def test_cosine_loss_values():
    v = torch.tensor([[1.0, 2.0, -0.5]])
    assert float(cosine_loss(v, v * 4)) == pytest.approx(0.0, abs=1e-6)
    assert float(cosine_loss(torch.tensor([[1.0, 0, 0]]), torch.tensor([[0, 2.0, 0]]))) == pytest.approx(1.0)
    assert float(cosine_loss(v, -v)) == pytest.approx(2.0, abs=1e-6)


# ---- train_head ------------------------------------------------------------------------------------------------------
HEAD_LABELS = ("cat", "dog", "bottle")


def synthetic_problem(n_per_label: int = 20, dim: int = 32, noise: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    prototypes = rng.standard_normal((len(HEAD_LABELS), dim))
    labels = [HEAD_LABELS[i % len(HEAD_LABELS)] for i in range(n_per_label * len(HEAD_LABELS))]
    features = np.stack([prototypes[HEAD_LABELS.index(lab)] + noise * rng.standard_normal(dim) for lab in labels])
    words = word_table(["the", "of", *HEAD_LABELS, "sofa", "jar"], dim=8, seed=seed + 1)
    return features.astype(np.float32), labels, words


@pytest.fixture(scope="module")
def problem():
    return synthetic_problem()


def own_label_accuracy(emb: np.ndarray, labels: list[str], words: WordVectors) -> float:
    names = sorted(set(labels))
    matrix = np.stack([words.unit(n) for n in names])
    nearest = np.argmax(emb @ matrix.T, axis=1)
    return float(np.mean([names[j] == lab for j, lab in zip(nearest, labels)]))


@pytest.mark.parametrize("loss", ["cosine", "hinge"])
def test_train_head_learns_to_map_features_to_their_label_vectors(problem, loss):
    features, labels, words = problem
    config = TrainConfig(loss=loss, epochs=40, patience=40, hidden_dim=64, lr=3e-3, batch_size=16)
    result = train_head(features, labels, words, config, backbone="synthetic@random")
    assert result.labels == sorted(HEAD_LABELS)
    assert len(result.split.val) == 12  # round(0.2 * 20) per label
    emb = result.measured.embed(features[result.split.val])
    assert emb.shape == (12, 8)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    val_labels = [labels[i] for i in result.split.val]
    assert own_label_accuracy(emb, val_labels, words) >= 0.9
    assert not result.measured.training  # returned ready to serve
    assert result.measured.backbone == "synthetic@random" and result.measured.out_dim == 8
    assert len(result.history) >= 1 and result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_train_head_early_stopping_keeps_the_best_epoch():
    # features unrelated to labels: validation loss stops improving quickly, so training stops early
    rng = np.random.default_rng(7)
    features = rng.standard_normal((30, 16)).astype(np.float32)
    labels = [HEAD_LABELS[i] for i in rng.integers(0, 3, 30)]
    words = word_table(["the", *HEAD_LABELS], dim=8, seed=3)
    config = TrainConfig(epochs=200, patience=3, hidden_dim=64, lr=1e-2, batch_size=8, refit=False)
    result = train_head(features, labels, words, config)
    history = result.history
    assert [row["epoch"] for row in history] == list(range(1, len(history) + 1))
    assert all({"train_loss", "val_loss"} <= set(row) for row in history)
    assert len(history) < config.epochs  # stopped early
    assert len(history) == result.best_epoch + config.patience
    best_val = history[result.best_epoch - 1]["val_loss"]
    assert best_val <= min(row["val_loss"] for row in history) + 1e-5
    # the returned weights are the best epoch's: its validation loss is reproduced exactly
    val = result.split.val
    targets = torch.from_numpy(np.stack([words.phrase([labels[i]]) for i in val]))
    with torch.inference_mode():
        reproduced = float(cosine_loss(result.measured(torch.from_numpy(features[val])), targets))
    assert reproduced == pytest.approx(best_val, abs=1e-5)


def test_train_head_leaves_holdout_classes_out(problem):
    features, labels, words = problem
    config = TrainConfig(epochs=2, hidden_dim=16, holdout_classes=("dog",))
    result = train_head(features, labels, words, config)
    assert result.labels == ["bottle", "cat"]
    assert sorted({labels[i] for i in result.split.holdout}) == ["dog"]
    assert "dog" not in {labels[i] for i in np.concatenate([result.split.train, result.split.val])}


def test_train_head_refuses_an_unknown_loss(problem):
    features, labels, words = problem
    with pytest.raises(ValueError, match="squared"):
        train_head(features, labels, words, TrainConfig(loss="squared", epochs=1))


def test_train_head_needs_two_labels_with_vectors(problem):
    features, labels, words = problem
    with pytest.raises(ValueError, match="two labels"):
        train_head(features, ["cat" if lab == "cat" else "xyzzy" for lab in labels], words,
                   TrainConfig(epochs=1, hidden_dim=8))


# ---- resumable extraction --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_backbone():
    from searchcore.models.backbones import load_backbone

    return load_backbone(TINY_BACKBONE)  # one object: random weights differ between loads


def chunk_files(work: Path) -> list[Path]:
    return sorted((work / ".extract").glob("chunk-*.npz"))


def test_extraction_resumes_to_the_same_features_as_a_fresh_run(tmp_path, tiny_backbone):
    from searchcore.build.extract import extract_collection
    from searchcore.collection import folder_collection

    photos = make_photos(tmp_path / "photos", labels=("cat", "dog"), per_label=5)
    collection = folder_collection(photos)
    assert len(collection) == 10
    work = tmp_path / "work"
    with pytest.raises(InterruptedError):
        extract_collection(tiny_backbone, collection, work, chunk_size=3, stop_after_chunks=2)
    assert len(chunk_files(work)) == 2
    seen = []
    resumed = extract_collection(tiny_backbone, collection, work, chunk_size=3,
                                 progress=lambda done, n: seen.append((done, n)))
    assert len(chunk_files(work)) == 4
    assert seen[-1] == (10, 10)
    fresh = extract_collection(tiny_backbone, collection, tmp_path / "fresh", chunk_size=3)
    assert resumed.features.features.shape == (10, tiny_backbone.feature_dim)
    assert resumed.features.logits.shape == (10, 1000)
    np.testing.assert_allclose(resumed.features.features, fresh.features.features, atol=1e-6, rtol=0)
    np.testing.assert_allclose(resumed.features.logits, fresh.features.logits, atol=1e-5, rtol=0)
    assert resumed.skipped == [] and len(resumed.collection) == 10
    assert [it.path for it in resumed.collection.items] == [it.path for it in collection.items]

    # a changed collection (one more photo) must not reuse the old chunks
    shutil.copy(photos / "cat" / "cat_0.png", photos / "dog" / "dog_5.png")
    grown = folder_collection(photos)
    assert len(grown) == 11
    with pytest.raises(InterruptedError):
        extract_collection(tiny_backbone, grown, work, chunk_size=3, stop_after_chunks=0)
    assert chunk_files(work) == []
    again = extract_collection(tiny_backbone, grown, work, chunk_size=3)
    scratch = extract_collection(tiny_backbone, grown, tmp_path / "scratch", chunk_size=3)
    assert len(again.collection) == 11
    np.testing.assert_allclose(again.features.features, scratch.features.features, atol=1e-6, rtol=0)


def test_extraction_skips_and_reports_a_corrupt_image(tmp_path, tiny_backbone):
    from searchcore.build.extract import extract_collection
    from searchcore.collection import folder_collection

    photos = make_photos(tmp_path / "photos", labels=("cat", "dog"), per_label=3)
    (photos / "cat" / "cat_1b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    collection = folder_collection(photos)
    assert len(collection) == 7
    result = extract_collection(tiny_backbone, collection, tmp_path / "work", chunk_size=3)
    assert [(it.path, it.label) for it, _ in result.skipped] == [("cat/cat_1b.png", "cat")]
    assert result.skipped[0][1]  # says why
    assert len(result.collection) == 6 and result.features.features.shape[0] == 6
    assert [it.id for it in result.collection.items] == list(range(6))
    assert "cat/cat_1b.png" not in [it.path for it in result.collection.items]
    assert np.isfinite(result.features.features).all()
    alone = tiny_backbone.extract([collection.path(it) for it in result.collection.items])
    np.testing.assert_allclose(result.features.features, alone.features, atol=1e-5, rtol=0)


# ---- a short real training run through the pipeline -----------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Build a tiny bundle with pipeline.build_bundle, keep an untrained copy, then train it for 5 epochs."""
    from searchcore.build import pipeline
    from training.card import write_card

    base = tmp_path_factory.mktemp("pipeline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEARCH_CACHE_DIR", str(base / "cache"))
        photos = make_photos(base / "photos")
        words_dir = write_words_cache(base / "words")
        root, info = pipeline.build_bundle(str(photos), base / "bundle", TINY_BACKBONE, str(words_dir),
                                           word_vocab=40)
        untrained = Path(shutil.copytree(root, base / "untrained"))
        reports = []
        config = TrainConfig(epochs=5, hidden_dim=64, holdout_classes=("dog",))
        result, metrics = pipeline.train_bundle(root, config,
                                                report=lambda f, m: reports.append((f, m)), write_card=write_card)
        yield {"root": Path(root), "untrained": untrained, "info": info, "result": result, "metrics": metrics,
               "reports": reports, "words_dir": words_dir}


def test_build_bundle_info(trained):
    info = trained["info"]
    assert info["skipped"] == []
    assert info["source"] and info["extract_seconds"] >= 0
    assert not (trained["root"] / ".extract").exists()  # chunk cache cleared once the bundle is complete


def test_train_bundle_writes_the_head_and_its_card(trained):
    head = trained["root"] / "head"
    for name in ("config.json", "model.safetensors", "README.md", "training.png"):
        assert (head / name).is_file(), name
    config = json.loads((head / "config.json").read_text())
    assert config["backbone"] == TINY_BACKBONE and config["out_dim"] == 16 and config["hidden_dim"] == 64
    readme = (head / "README.md").read_text(encoding="utf-8")
    assert "| metric | conse | head | served |" in readme
    assert "training.png" in readme
    assert (head / "training.png").read_bytes().startswith(b"\x89PNG")
    assert not list(trained["root"].glob(".head*"))  # the staging folder is gone
    fractions = [f for f, _ in trained["reports"]]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def metrics_split(manifest: dict) -> str:
    return manifest["metrics"]["split"]


def test_train_bundle_records_training_and_metrics_in_the_manifest(trained):
    root, result = trained["root"], trained["result"]
    manifest = B.verify(root)  # the rewritten manifest vouches for every file, the head included
    assert manifest["head"] is True and manifest["semantic"].startswith("head")
    assert any(rel.startswith("head/") for rel in manifest["files"])
    training = manifest["training"]
    assert {"split", "history", "train_seconds"} <= set(training)
    assert 1 <= len(training["history"]) <= 5 and training["config"]["epochs"] == 5
    assert training["split"] == result.split.to_dict()
    split = training["split"]
    assert sum(len(split[k]) for k in ("train", "val", "test", "holdout")) == manifest["count"] == 32
    # per trained label of 8 photos: round(0.2 * 8) = 2 to test, 2 to validation, 4 to training; all dogs held out
    assert (len(split["train"]), len(split["val"]), len(split["test"]), len(split["holdout"])) == (12, 6, 6, 8)
    assert training["split_seed"] == 0 and metrics_split(manifest) == "test"
    assert training["config"]["holdout_classes"] == ["dog"]
    assert training["trained_labels"] == ["bottle", "cat", "roadsigns"]  # "roadsigns" trained via road + signs
    assert "dog" not in training["calibration_classes"] and len(training["calibration_classes"]) == 1
    metrics = manifest["metrics"]
    assert {"conse", "head", "served"} <= set(metrics)
    assert metrics["eval_items"] == 14
    for method in ("conse", "head", "served"):
        for key in ("text_image_p10", "caption_word_p5", "tag_hit5", "zero_shot_text_image_p10",
                    "zero_shot_tag_hit5", "real_photo_tag_hit5"):
            assert 0.0 <= metrics[method][key] <= 1.0, (method, key)
    assert same(metrics, trained["metrics"])
    # each setting is the best of its grid on its own objective (validation precision@10 for the search, tag hits
    # for the unseen-photo floor), as recorded beside it; and the served head and engine carry what was chosen
    from searchcore.models.tagging import TagRule
    from searchcore.quality.evaluation import NEIGHBOUR_MIXES, SHARES, UNSEEN_CLASS_PROBS

    scores = training["mix_scores"]
    chosen = training["settings"]
    config = json.loads((root / "head" / "config.json").read_text())
    assert {row["neighbour_mix"] for row in scores["search"].values()} == set(NEIGHBOUR_MIXES)
    assert is_best(scores["search"], f"{chosen['neighbour_mix']}/{chosen['seen_similarity']}")
    assert metrics["served"]["neighbour_mix"] == config["neighbour_mix"] == chosen["neighbour_mix"]
    assert {(row["word_mix"], row["class_mix"], row["unseen_class_mix"], row["exemplar_mix"])
            for row in scores["mixes"].values()} == {(w, c, u, e) for w in SHARES for c in SHARES
                                                     for u in SHARES for e in SHARES}
    shares = [chosen[key] for key in ("word_mix", "class_mix", "unseen_class_mix", "exemplar_mix")]
    assert is_best(scores["mixes"], "/".join(map(str, shares)))
    for key in ("word_mix", "class_mix", "unseen_class_mix", "exemplar_mix"):
        assert metrics["served"][key] == config[key] == chosen[key]
    assert {"bottle", "cat", "road", "sign"} <= set(config["word_vocab"])  # the targets' words, singular
    floor = manifest["serving"]["unseen_class_min_prob"]
    assert set(scores["unseen_class_min_prob"]) == {str(p) for p in UNSEEN_CLASS_PROBS}
    assert is_best(scores["unseen_class_min_prob"], str(floor))
    assert metrics["served"]["unseen_class_min_prob"] == floor
    assert TagRule.from_manifest(manifest).unseen_class_min_prob == floor
    # the tag rules were chosen with the public validation photos too, never the evaluation ones
    from searchcore.quality.validation_photos import VALIDATION_PHOTOS

    real = training["mix_scores"]["real_photos"]
    assert real["count"] == len(VALIDATION_PHOTOS) and 0 <= real["unseen"] <= real["count"]


def is_best(table: dict, key: str) -> bool:
    """Whether ``key``'s recorded score is the highest of ``table``'s (rows ``{"score": …}`` or bare scores)."""
    scores = {k: (v["score"] if isinstance(v, dict) else v) for k, v in table.items()}
    assert key in scores, f"{key} is not among {sorted(scores)}"
    return scores[key] is not None and scores[key] == max(v for v in scores.values() if v is not None)


def same(a, b) -> bool:
    """Equality that treats NaN as equal to NaN (JSON round trips keep NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def test_engine_serves_the_trained_head(trained):
    from searchcore import load_engine

    engine = load_engine(trained["root"])
    assert engine.head is not None
    assert engine.head.backbone == TINY_BACKBONE
    assert engine.info.semantic.startswith("head")
    hits = engine.search_images("cat", k=5)
    assert len(hits) == 5
    assert len({h.id for h in hits}) == 5
    assert all(h.label in PHOTO_LABELS for h in hits)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)


def test_evaluate_bundle_gives_the_recorded_metrics(trained):
    from searchcore.build.pipeline import evaluate_bundle

    metrics = evaluate_bundle(trained["root"])
    assert metrics.keys() == trained["metrics"].keys()
    assert same(metrics, trained["metrics"])  # same head, same split: same figures


def test_evaluate_cli_prints_one_json_object(trained, capsys):
    from training import evaluate

    assert evaluate.main(["--bundle", str(trained["root"]), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.strip().count("\n") == 0
    metrics = json.loads(out)
    assert {"conse", "head", "served", "eval_items"} <= set(metrics)
    assert same(metrics, json.loads(json.dumps(trained["metrics"])))


def test_evaluate_cli_prints_a_table_by_default(trained, capsys):
    from training import evaluate

    assert evaluate.main(["--bundle", str(trained["root"])]) == 0
    out = capsys.readouterr().out
    assert "| metric | conse | head | served |" in out
    assert "held-back photos" in out


def test_evaluate_cli_on_a_bundle_without_head_fails_with_a_message(trained, capsys):
    from training import evaluate

    assert evaluate.main(["--bundle", str(trained["untrained"]), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error:" in captured.err and "train_devise" in captured.err


def test_train_devise_cli_trains_a_copy_and_prints_json(trained, tmp_path, capsys):
    from training import train_devise

    root = Path(shutil.copytree(trained["untrained"], tmp_path / "bundle"))
    argv = ["--bundle", str(root), "--epochs", "2", "--loss", "hinge", "--holdout-classes", "dog, bottle", "--json"]
    assert train_devise.main(argv) == 0
    out = capsys.readouterr().out
    assert out.strip().count("\n") == 0
    summary = json.loads(out)
    assert summary["bundle"] == str(root) and 1 <= summary["best_epoch"] <= 2
    assert {"conse", "head", "served"} <= set(summary["metrics"])
    manifest = B.verify(root)
    config = manifest["training"]["config"]
    assert config["loss"] == "hinge" and config["epochs"] == 2 and config["holdout_classes"] == ["dog", "bottle"]
    assert manifest["training"]["trained_labels"] == ["cat", "roadsigns"]
    assert (root / "head" / "README.md").is_file() and (root / "head" / "training.png").is_file()


def test_train_devise_cli_on_a_folder_that_is_not_a_bundle_fails_with_a_message(tmp_path, capsys):
    from training import train_devise

    assert train_devise.main(["--bundle", str(tmp_path), "--epochs", "1"]) == 2
    captured = capsys.readouterr()
    assert "error:" in captured.err and "manifest.json" in captured.err


def test_a_fixed_neighbour_mix_is_served_as_given(trained, tmp_path, monkeypatch):
    from searchcore.build import pipeline

    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    root = Path(shutil.copytree(trained["untrained"], tmp_path / "fixed"))
    pipeline.train_bundle(root, TrainConfig(epochs=2, hidden_dim=16, neighbour_mix=0.0), real_photos=False)
    training = B.verify(root)["training"]
    assert training["settings"]["neighbour_mix"] == 0.0
    assert {row["neighbour_mix"] for row in training["mix_scores"]["search"].values()} == {0.0}


def test_the_ablations_switch_off_the_word_classifier_the_class_hierarchy_and_the_exemplars(trained, tmp_path,
                                                                                             monkeypatch):
    from searchcore.build import pipeline

    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    root = Path(shutil.copytree(trained["untrained"], tmp_path / "plain"))
    pipeline.train_bundle(root, TrainConfig(epochs=2, hidden_dim=16, word_classifier=False, class_hierarchy=False,
                                            exemplars=False), real_photos=False)
    training = B.verify(root)["training"]
    keys = ("word_mix", "class_mix", "unseen_class_mix", "exemplar_mix")
    assert tuple(training["settings"][k] for k in keys) == (0.0, 0.0, 0.0, 0.0)
    assert {tuple(row[k] for k in keys) for row in training["mix_scores"]["mixes"].values()} == {(0.0,) * 4}
    config = json.loads((root / "head" / "config.json").read_text())
    assert not config.get("word_vocab") and tuple(config[k] for k in keys) == (0.0, 0.0, 0.0, 0.0)
