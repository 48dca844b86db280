"""Scale: the five searches on synthetic enlargements of the offline Tux Paint bundle, 429 to 400,000 photos.

    python -m bench.bench_scale                         # 429, 10,000, 100,000 and 400,000 photos
    python -m bench.bench_scale --quick                 # 429 and 10,000 photos, fewer rounds
    python -m bench.bench_scale --sizes 429,10000,100000 --write   # chosen sizes; also update section 12
    python -m bench.bench_scale --sizes 400000 --build-only         # build (and cache) the bundles, measure nothing

**The generator.** The real bundle is the offline Tux Paint bundle with its trained head
(:func:`searchcore.build.offline.ensure_offline_bundle` ``(collection="tuxpaint")``, in the benchmarks' cache folder,
``bench.bench_training.use_cache``): R = 429 photos. A synthetic bundle of N photos has row i = real row i mod R,
plus seeded Gaussian noise (``numpy.random.default_rng(--seed)``, drawn in blocks of 8,192 rows) whose expected norm
is 5 % of the row's own norm (per coordinate ``0.05·‖row‖/√d``), added to the features (1280-d) and, drawn
separately, to the logits (1000-d); every row gets noise, the first R too. Item i copies real item i mod R's label,
captions and image path: the N items share the R photo files, so ``write_bundle``'s ``copy_images`` copies R files
into the bundle's images/ folder (no 400,000 files; each file is referenced about N/R times). The bundle is then
built by the project's own code: :func:`searchcore.build.write.write_bundle` with the real bundle's served head
(:func:`searchcore.models.head.load_head` of its head/ folder, copied in first so :func:`searchcore.load_engine` serves
it) builds the image index, the tag vocabulary and its index, the head's semantic index, the ConSE index and the
posting tables (:func:`searchcore.build.write.rebuild_semantic` → :func:`searchcore.build.write.write_postings`),
exactly as for a real bundle; the real bundle's words index is copied in first, so ``_word_index`` reuses it rather than
rebuilding the same 100,000 words. One deviation, with the same result: :meth:`searchcore.models.conse.ConSE.embed` is
called on blocks of 16,384 photos (:func:`conse_in_blocks`; it is row by row, and on a whole bundle at once it needs
about 12 GiB at 400,000 photos, more than this machine can spare beside the rest of the build). The manifest then
gets the real bundle's served rules and training record (``serving``, ``training``: what
:func:`searchcore.build.pipeline.train_bundle` adds) through :func:`searchcore.bundle.write_manifest`. Built bundles are
cached under ``CACHE/bundles/scale-N`` with a key (generator version, seed, noise, the real bundle's files,
:data:`searchcore.build.offline.RECIPE` and a digest of the searchcore modules that write bundles) and reused while the
key matches. Each bundle is built in a child process (so
the measuring process's memory is the engines' alone); its build time is measured there, step by step.

**The measurement**, in one process with every size loaded side by side, served as the app serves (one torch
thread, ``load_engine(path)`` with the app's default ``check_sums=True``; the backbone and word vectors loaded once
and passed in, since they do not depend on the bundle):

* *load*: ``load_engine`` after this bundle's files were evicted from the page cache (``posix_fadvise``), twice: the
  first load on this machine (the record of verified files that :func:`searchcore.bundle.verify` keeps is removed
  first, so every file is hashed) and a restart (the files found verified); the *first query*,
  ``search_images("dog")``, right after each; RSS growth after the restart's load and after one pass of every
  search; the process's peak RSS (monotone, so per size only the growth says anything). Then features.npy and
  logits.npy are read once into the page cache, as on a server that has run a while, before the timed rounds.
* *timings*: ``--reps`` interleaved rounds (search after search, every size of a search back to back); each call
  timed alone, p50 and p95 over all calls of all rounds. Image → Image and by class are timed twice: with an item id
  (stored features, no backbone pass: the index cost alone, as the "before" figures were) and with a real photo file
  (the backbone runs too: what a visitor's upload costs). Image → Tags likewise. Text → Text reads the words index,
  which does not depend on the photos.
* *recall@10*: served top 10 against the same score computed exactly over all N photos: for Text → Image the
  served score of ``tests/test_postings.py``'s ``_exact`` (:func:`searchcore.models.scoring.text_scores` of the semantic
  and conse indexes' stored vectors and :func:`searchcore.models.scoring.query_parts` over every photo, exemplars from
  the image index); for by class the re-weighted cosine over every photo; for Image → Image plain cosine over every
  photo (for reference; the exact neighbours of a tiled photo are its ~N/R noisy copies). Text → Image also reports
  how near the served photos come (copies of the same real photos; exact score lost) and which posting lists were
  full.
"""

from __future__ import annotations

import gc
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import common
from .bench_training import code_version, use_cache

SIZES = (429, 10_000, 100_000, 400_000)
QUICK_SIZES = (429, 10_000)
NOISE = 0.05
GENERATOR = "2"  # bumped whenever the generator changes, so cached synthetic bundles are rebuilt
GEN_BLOCK = 8192
#: ConSE.embed is called on blocks of this many photos while a synthetic bundle is built (see conse_in_blocks)
CONSE_BLOCK = 16_384
K = 10
TEXT_QUERIES = ("dog", "bird", "fruit + red", "christmas tree", "horse", "cat - dog", "2:bird + penguin", "ocean")
FIRST_QUERY = "dog"
WORD_QUERIES = ("dog", "ocean", "king - man + woman", "red")
BY_CLASS = "Siamese cat"
# tests/test_postings.py's queries: the recall of the served Text → Image ranking is measured on them
RECALL_QUERIES = ("bird", "fruit + red", "christmas tree", "guitar", "tool", "hat", "2:bird + penguin", "horse",
                  "dog", "ocean", "cat - dog", "red", "flower", "car", "fish", "vegetable", "tree", "music",
                  "0.5:boat + water")
RECALL_PHOTOS = 12  # query photos (real rows 0, 37, 74, …) for by class and Image → Image
TIE_EPS = 1e-5
#: the threshold algorithm's caps compared (searchcore.topk.CAP among them), TRADEOFF_REPS calls of each query each
CAP_TRADEOFF = (256, 512, 1024, 2048, 4096)
TRADEOFF_REPS = 3
TARGET_RATIO, TARGET_FIRST_S, TARGET_RECALL = 5.0, 1.0, 0.95
#: issue 21, measured at bc6440b (before index-first): p50 in ms per size; first Text → Image query in seconds
BEFORE_REV = "bc6440b"
BEFORE_P50_MS = {
    "text_image": {429: 1.9, 10_000: 5.7, 100_000: 48.0, 400_000: 158.0},
    "by_class_id": {429: 7.1, 10_000: 59.0, 100_000: 986.0},
    "image_image_id": {429: 0.31, 10_000: 0.51, 100_000: 0.40, 400_000: 2.6},
}
BEFORE_DOG_400K_MS = 1263.0
BEFORE_FIRST_S = {429: 0.14, 10_000: 2.7, 100_000: 22.0, 400_000: 135.0}
SEARCHES = (  # key, title, what is timed
    ("text_image", "Text → Image", "`search_images(q, 10)`, q in " + ", ".join(f"`{q}`" for q in TEXT_QUERIES)),
    ("image_image_id", "Image → Image (item id)", "`similar_images(item_id, 10)`, 5 item ids per round"),
    ("image_image_photo", "Image → Image (photo file)", "`similar_images(photo_path, 10)`: backbone + index"),
    ("by_class_id", "By class (item id)", f"`similar_images_by_class(item_id, {BY_CLASS!r}, 10)`, 3 ids per round"),
    ("by_class_photo", "By class (photo file)", f"`similar_images_by_class(photo_path, {BY_CLASS!r}, 10)`"),
    ("words", "Text → Text", "`similar_words(q, 10)`, q in " + ", ".join(f"`{q}`" for q in WORD_QUERIES)),
    ("tags_id", "Image → Tags (item id)", "`tag_image(item_id, 10)`, 3 ids per round"),
    ("tags_photo", "Image → Tags (photo file)", "`tag_image(photo_path, 10)`: backbone + tags"),
)
# what write_bundle spends its time on: functions of searchcore.build.write wrapped while a bundle is built
BUILD_STEPS = (("copy_images", "copying photos"), ("build_index", "photo indexes (hnswlib)"),
               ("_word_index", "words index (reused)"), ("write_tags", "tag vocabulary + index"),
               ("_served_embedding", "head embedding + look-alikes"), ("write_postings", "posting tables"))
# the modules whose code decides what write_bundle writes (build_code_hash)
BUILD_MODULES = ("build/write", "bundle", "postings", "models/exemplars", "models/propagation", "models/hierarchy",
                 "models/wordclass", "models/head", "models/headwords", "index", "shards", "models/tagging", "storage",
                 "models/scoring", "text", "models/words", "copies")
# what load_engine spends its time on: functions of searchcore.bundle (open_bundle's parts) and of
# searchcore.serve.engine
LOAD_STEPS = (("verify", "manifest + checksums"), ("read_items", "items.jsonl"), ("_load_npy", "features, logits"),
              ("load_index", "hnswlib indexes"), ("_load_tags", "tags"), ("_load_tables", "posting tables"))
ENGINE_STEPS = (("open_bundle", "open_bundle (all of the above)"),)


# --------------------------------------------------------------------------------------------- the generator


def real_bundle() -> Path:
    """The offline Tux Paint bundle with its trained head, in the benchmarks' cache (built on first use)."""
    from searchcore.build.offline import ensure_offline_bundle

    last = [-1.0]

    def report(fraction: float, message: str) -> None:
        if fraction - last[0] >= 0.1 or fraction >= 1.0:
            common.log(f"offline bundle {100 * fraction:3.0f}% {message}")
            last[0] = fraction

    return ensure_offline_bundle(report, collection="tuxpaint")


def scale_dir(cache: Path, size: int) -> Path:
    return cache / "bundles" / f"scale-{size}"


def bundle_key(real: Path, size: int, seed: int) -> dict[str, Any]:
    """What a cached synthetic bundle must have been built from to be reused."""
    from searchcore import bundle as B
    from searchcore.build.offline import RECIPE

    files = B.verify(real, check_sums=False)["files"]
    return {"generator": GENERATOR, "recipe": RECIPE, "code": build_code_hash(), "size": size, "seed": seed,
            "noise": NOISE,
            "real": {name: files[name]["sha256"] for name in sorted(files)
                     if name in ("features.npy", "logits.npy", "items.jsonl") or name.startswith("head/")}}


def build_code_hash() -> str:
    """A digest of the searchcore modules that write a bundle's files: a cached bundle is rebuilt when they change
    (the offline recipe number is not always bumped with them)."""
    import hashlib

    digest = hashlib.sha256()
    for name in BUILD_MODULES:
        path = common.ROOT / "searchcore" / f"{name}.py"
        digest.update(name.encode() + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()[:16]


def cached_build(root: Path, key: dict[str, Any], any_code: bool = False) -> dict[str, Any] | None:
    """The build record of a complete synthetic bundle built from ``key``; None when it must be (re)built.

    ``any_code``: accept a bundle built by other code (its key may differ in the build code's digest only)."""
    from searchcore import bundle as B
    from searchcore.errors import BundleError

    record = root / ".scale.json"
    try:
        B.verify(root, check_sums=False)
        saved = json.loads(record.read_text(encoding="utf-8"))
    except (BundleError, OSError, ValueError):
        return None
    saved_key = dict(saved.get("key") or {})
    if any_code:
        saved_key.pop("code", None)
        key = {k: v for k, v in key.items() if k != "code"}
    return saved if saved_key == key else None


def noisy_rows(real: np.ndarray, out: np.ndarray, rng: np.random.Generator) -> None:
    """Fill ``out`` (N × d) with real row i mod R plus Gaussian noise of 5 % of that row's norm, in blocks."""
    n, d = out.shape
    for start in range(0, n, GEN_BLOCK):
        rows = np.arange(start, min(start + GEN_BLOCK, n)) % len(real)
        base = np.asarray(real[rows], np.float32)
        scale = NOISE * np.linalg.norm(base, axis=1, keepdims=True) / math.sqrt(d)
        out[start : start + len(rows)] = base + rng.standard_normal(base.shape, dtype=np.float32) * scale


@contextmanager
def timed_steps(module_name: str, steps: tuple[tuple[str, str], ...]) -> Iterator[dict[str, float]]:
    """Wrap functions of a module (``steps``: attribute, label) while the block runs; yields {label: seconds}."""
    import importlib

    module = importlib.import_module(module_name)
    out: dict[str, float] = {}
    patched = []
    for attr, label in steps:
        original = getattr(module, attr, None)
        if original is None:  # not in this version of the code
            continue

        def wrapper(*args: Any, _fn: Callable[..., Any] = original, _label: str = label, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                out[_label] = out.get(_label, 0.0) + time.perf_counter() - t0

        setattr(module, attr, wrapper)
        patched.append((attr, original))
    try:
        yield out
    finally:
        for attr, original in patched:
            setattr(module, attr, original)


@contextmanager
def conse_in_blocks(block: int = CONSE_BLOCK) -> Iterator[None]:
    """While the block runs, :meth:`searchcore.models.conse.ConSE.embed` embeds ``block`` photos at a time.

    The embedding is row by row, so the result is the same array (checked equal at 100,000 photos); called on a whole
    bundle's logits at once it holds several float64 copies of them (about 31 KB per photo: 3 GiB of peak memory at
    100,000 photos, 12 GiB at 400,000), which this machine cannot spare beside the rest of a 400,000-photo build.
    """
    from searchcore.models.conse import ConSE

    original = ConSE.embed

    def embed(self: Any, logits: np.ndarray) -> np.ndarray:
        if len(logits) <= block:
            return original(self, logits)
        return np.concatenate([original(self, logits[i : i + block]) for i in range(0, len(logits), block)])

    ConSE.embed = embed
    try:
        yield
    finally:
        ConSE.embed = original


def build_synthetic(real: Path, size: int, seed: int, cache: Path) -> dict[str, Any]:
    """Build the synthetic bundle of ``size`` photos (see the module docstring) into ``scale_dir``; its record."""
    from searchcore import bundle as B
    from searchcore.build.write import write_bundle
    from searchcore.collection import Collection, Item
    from searchcore.models.backbone import Features, imagenet_class_names
    from searchcore.models.head import load_head
    from searchcore.models.words import load_word_vectors
    from searchcore.storage import write_json

    key = bundle_key(real, size, seed)
    root = scale_dir(cache, size)
    shutil.rmtree(root, ignore_errors=True)
    scratch = cache / "bundles" / f".scale-{size}-gen"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    manifest = B.verify(real, check_sums=False)
    real_items = B.read_items(real / B.ITEMS)
    r = len(real_items)
    rss0 = common.rss()
    t0 = time.perf_counter()
    # the enlarged arrays live in memory-mapped scratch files: their pages can be dropped while the build runs
    rng = np.random.default_rng(seed)
    feats = np.lib.format.open_memmap(scratch / "features.npy", "w+", np.float32,
                                      (size, int(manifest["feature_dim"])))
    logits = np.lib.format.open_memmap(scratch / "logits.npy", "w+", np.float32, (size, int(manifest["num_classes"])))
    noisy_rows(np.load(real / B.FEATURES, mmap_mode="r"), feats, rng)
    noisy_rows(np.load(real / B.LOGITS, mmap_mode="r"), logits, rng)
    items = [Item(i, it.path, it.label, it.caption, it.captions)
             for i, it in ((i, real_items[i % r]) for i in range(size))]
    collection = Collection(f"{manifest.get('name', 'tuxpaint')}-x{size}", real / B.IMAGES, items)
    generate_s = time.perf_counter() - t0

    root.mkdir(parents=True)
    shutil.copytree(real / B.HEAD, root / B.HEAD)  # load_engine serves the head found in the bundle
    (root / B.INDEXES).mkdir()
    for suffix in (".hnsw", ".json"):  # the same 100,000 words: _word_index reuses them
        shutil.copyfile(real / B.INDEXES / f"words{suffix}", root / B.INDEXES / f"words{suffix}")
    head = load_head(real / B.HEAD)
    words = load_word_vectors(manifest["words"])
    common.log(f"scale-{size}: generated in {generate_s:.1f} s; building with write_bundle")
    t1 = time.perf_counter()
    with timed_steps("searchcore.build.write", BUILD_STEPS) as steps, conse_in_blocks():
        write_bundle(root, collection, Features(feats, logits), manifest["backbone"], imagenet_class_names(), words,
                     head=head, word_vocab=int(manifest.get("word_vocab", B.WORD_VOCAB)),
                     build_info={"synthetic": f"bench.bench_scale generator {GENERATOR}: real row i mod {r} + "
                                              f"{NOISE:.0%} noise, seed {seed}"},
                     log=lambda msg: common.log(f"scale-{size}: {msg}"))
    build_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    fields = {k: v for k, v in B.verify(root, check_sums=False).items() if k not in ("format", "files")}
    fields.update({k: manifest[k] for k in ("serving", "training") if k in manifest})
    B.write_manifest(root, fields)
    manifest_s = time.perf_counter() - t2
    del feats, logits
    shutil.rmtree(scratch, ignore_errors=True)
    record = {"key": key, "size": size, "conse_block": CONSE_BLOCK, "generate_s": generate_s, "write_bundle_s": build_s,
              "manifest_s": manifest_s, "total_s": time.perf_counter() - t0, "steps": steps,
              "build_rss_growth_bytes": common.rss() - rss0, "build_peak_rss_bytes": common.peak_rss(),
              "disk_bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()),
              "code": code_version(), "date": time.strftime("%Y-%m-%d %H:%M"),
              "load_avg": [round(x, 2) for x in os.getloadavg()]}
    write_json(root / ".scale.json", record)  # last: the bundle is complete
    return record


def ensure_synthetic(real: Path, size: int, seed: int, cache: Path, rebuild: bool = False,
                     any_code: bool = False) -> dict[str, Any]:
    """The cached synthetic bundle of ``size`` photos, built in a child process when missing or stale."""
    root = scale_dir(cache, size)
    if not rebuild:
        key = bundle_key(real, size, seed)
        record = cached_build(root, key, any_code)
        if record is not None:
            stale = record["key"].get("code") != key["code"]
            common.log(f"scale-{size}: reusing {root} (built in {record['total_s']:.0f} s on {record['date']}"
                       + (", by other build code" if stale else "") + ")")
            return {**record, "reused": True, "other_build_code": stale}
    common.log(f"scale-{size}: building {root} in a child process")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(common.ROOT), os.environ.get("PYTHONPATH", ""))
                                                       if p)}
    proc = subprocess.run([sys.executable, "-m", "bench.bench_scale", "--build-one", str(size), "--seed", str(seed),
                           "--cache", str(cache)], stdout=subprocess.PIPE, text=True, env=env, cwd=common.ROOT,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"building scale-{size} failed ({proc.returncode}); see the log above")
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    common.log(f"scale-{size}: built in {record['total_s']:.0f} s")
    return {**record, "reused": False}


# --------------------------------------------------------------------------------------------- measuring


def evict(root: Path) -> None:
    """Drop a bundle's files from the page cache (only these files)."""
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def warm_page_cache(paths: list[Path], chunk: int = 1 << 24) -> None:
    """Read files once (not through the engine's memory maps, so its RSS is unchanged): their pages are cached."""
    for path in paths:
        with open(path, "rb") as handle:
            while handle.read(chunk):
                pass


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def pick_photo(real: Path) -> tuple[int, Path]:
    """A real photo file of the collection (the first whose label mentions a cat), and its real row."""
    from searchcore import bundle as B

    items = B.read_items(real / B.ITEMS)
    chosen = next((it for it in items if "cat" in it.label.split()), items[0])
    return chosen.id, real / B.IMAGES / chosen.path


def item_ids(size: int, count: int, offset: int) -> list[int]:
    """``count`` item ids spread over the bundle (different real rows, different copies)."""
    return [int((j * 7919 + offset * 104_729) % size) for j in range(1, count + 1)]


def search_cases(engine: Any, size: int, photo: Path, samples: dict[str, list[float]]
                 ) -> dict[str, Callable[[], float]]:
    """Per search, a case for :func:`common.interleaved`: its calls of one round, each timed into ``samples``."""
    def timed(key: str, calls: list[Callable[[], Any]]) -> Callable[[], float]:
        def run() -> float:
            total = 0.0
            for call in calls:
                t = time.perf_counter()
                call()
                elapsed = time.perf_counter() - t
                samples[key].append(elapsed)
                total += elapsed
            return total / len(calls)

        return run

    cases: dict[str, Callable[[], float]] = {
        "text_image": timed("text_image", [lambda q=q: engine.search_images(q, K) for q in TEXT_QUERIES]),
        "image_image_photo": timed("image_image_photo", [lambda: engine.similar_images(str(photo), K)]),
        "by_class_photo": timed("by_class_photo", [lambda: engine.similar_images_by_class(str(photo), BY_CLASS, K)]),
        "words": timed("words", [lambda q=q: engine.similar_words(q, K) for q in WORD_QUERIES]),
        "tags_photo": timed("tags_photo", [lambda: engine.tag_image(str(photo), K)]),
    }
    # item ids change from round to round (different rows, so no row stays in a CPU cache between rounds)
    for key, count, call in (("image_image_id", 5, lambda i: engine.similar_images(i, K)),
                             ("by_class_id", 3, lambda i: engine.similar_images_by_class(i, BY_CLASS, K)),
                             ("tags_id", 3, lambda i: engine.tag_image(i, K))):
        offset = [0]

        def run(key: str = key, count: int = count, call: Callable[[int], Any] = call,
                offset: list[int] = offset) -> float:
            offset[0] += 1
            chosen = item_ids(size, count, offset[0])
            return timed(key, [lambda i=i: call(i) for i in chosen])()

        cases[key] = run
    return {key: cases[key] for key, _, _ in SEARCHES}


class ExactText:
    """Text → Image's served score of every photo, computed exactly (as ``tests/test_postings.py``'s ``_exact`` and
    :func:`searchcore.quality.metrics.rankers`' "served" do): what the indexes and posting tables stand in for. The
    per-bundle work (exemplars among the collection, every photo's rows) is done once, here."""

    def __init__(self, engine: Any) -> None:
        from searchcore.models.exemplars import served_exemplars
        from searchcore.models.hierarchy import log_normaliser

        self.engine = engine
        bundle = engine.bundle
        t0 = time.perf_counter()
        self.features = np.ascontiguousarray(bundle.features)
        self.exemplars = served_exemplars(bundle.indexes["images"], self.features, bundle.items, engine.words)
        everyone = np.arange(len(bundle.items))
        self.rows = {name: bundle.indexes[name].get(everyone) for name in ("semantic", "conse")}
        self.log_norm = log_normaliser(bundle.logits)
        self.joint_rows: np.ndarray | None = None
        self.setup_s = time.perf_counter() - t0

    def scores(self, query: str) -> tuple[np.ndarray, Any]:
        """Every photo's exact score for ``query``, and the word signals' parts it was made of."""
        from searchcore.models.scoring import query_parts, text_scores
        from searchcore.models.words import parse_query

        engine, terms = self.engine, parse_query(query)
        parts = query_parts(engine.head, self.features, engine.bundle.logits, terms, self.log_norm, self.exemplars)
        return text_scores(engine.words.combine(terms), terms, engine.head, engine.words, self.rows["semantic"],
                           self.rows["conse"], parts), parts

    def vectors(self, query: str) -> dict[str, np.ndarray]:
        """The query's vector in each photo index's space (the head's reading, ConSE's mean word vector)."""
        from searchcore.models.words import parse_query

        engine, terms = self.engine, parse_query(query)
        out = {"conse": engine.words.combine(terms)}
        if engine.head is not None:
            out["semantic"] = engine.head.head_query([(t.weight, t.word) for t in terms], engine.words)
        return out

    def reads(self, query: str, joint: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The photo indexes Text → Image reads for ``query`` (the joint index, or the head's and ConSE's apart),
        each with every photo's unit row and the query's unit vector there."""
        from searchcore.models.words import parse_query

        if not joint:
            return {name: (self.rows[name], vector) for name, vector in self.vectors(query).items()}
        if self.joint_rows is None:  # a photo's joint row: [head row, ConSE row] / √2, unit as the index keeps it
            self.joint_rows = np.hstack([self.rows["semantic"], self.rows["conse"]]) / np.float32(np.sqrt(2.0))
        vector = self.engine._query(parse_query(query), None, self.engine.head).joint()  # as served
        return {"joint": (self.joint_rows, vector / np.linalg.norm(vector))}


def recall_text(engine: Any, queries: tuple[str, ...], r: int) -> dict[str, Any]:
    """Served Text → Image top 10 against the served score computed exactly over every photo (test_postings' way).

    Beside the recall of ids: *same photo*, the share of served photos that are copies (id mod ``r``) of a real
    photo whose copies make the exact top 10; the exact score the served top 10 lose (mean over the 10); the longest
    posting list a query reads; how many photos tie at the exemplar part's best score (a photo named by the word is
    its own nearest exemplar). Then the same queries with the threshold algorithm's cap lowered
    (:data:`CAP_TRADEOFF`): recall and time per cap, the trade-off :data:`searchcore.topk.CAP` is chosen on.
    """
    from searchcore import topk
    from searchcore.models.words import parse_query
    from searchcore.postings import query_rows

    bundle, head = engine.bundle, engine.head
    exactly = ExactText(engine)
    per_query: dict[str, dict[str, Any]] = {}
    tops: dict[str, np.ndarray] = {}
    for query in queries:
        terms = parse_query(query)
        exact, parts = exactly.scores(query)
        first_read = {name: index_first_read(bundle.indexes[name], rows, vector)
                      for name, (rows, vector) in exactly.reads(query, "joint" in bundle.indexes).items()}
        top = tops[query] = np.argsort(-exact, kind="stable")[:K]
        with captured("searchcore.serve.engine", "top_k") as reads:
            served = engine.search_images(query, K)
        got = np.asarray([h.id for h in served], np.int64)
        lists = [(getattr(bundle.tables, name), row) for name, rows in query_rows(bundle.tables, head, terms).items()
                 for row in rows if row is not None]
        ex_part = parts.exemplars[0]
        per_query[query] = {
            "recall": len(set(got.tolist()) & set(top.tolist())) / K,
            "tie_recall": float((exact[got] >= exact[top[-1]] - TIE_EPS).sum()) / K,
            "same_photo": float(np.isin(got % r, top % r).mean()),
            "score_lost": float(exact[top].mean() - exact[got].mean()),
            "score_diff": float(np.max(np.abs(np.asarray([1 - h.distance for h in served]) - exact[got]))),
            "lists": len(lists),
            "longest_list": max((t.size(row) for t, row in lists), default=0),
            "exemplar_ties": int((ex_part >= ex_part.max() - 1e-6).sum()) if ex_part is not None else 0,
            # how deep the engine read its lists (searchcore.topk), and whether its cap stopped it before the bound
            "depth": int(reads[-1].depth) if reads and hasattr(reads[-1], "depth") else None,
            "capped": bool(reads and hasattr(reads[-1], "exact") and not reads[-1].exact),
            "first_read": first_read,
        }
    setup_s = exactly.setup_s
    del exactly  # every photo's features: the memory is the engines' again
    tradeoff = {}
    defaults = topk.top_k.__defaults__
    try:
        for cap in CAP_TRADEOFF:
            topk.top_k.__defaults__ = (defaults[0], cap)
            recalls, times = [], []
            for query in queries:
                for _ in range(TRADEOFF_REPS):
                    t = time.perf_counter()
                    served = engine.search_images(query, K)
                    times.append(time.perf_counter() - t)
                recalls.append(len({h.id for h in served} & set(tops[query].tolist())) / K)
            tradeoff[cap] = {"recall": float(np.mean(recalls)), "p50_ms": 1000 * percentile(times, 50),
                             "p95_ms": 1000 * percentile(times, 95)}
    finally:
        topk.top_k.__defaults__ = defaults
    qs = per_query.values()
    return {"setup_s": setup_s, "queries": per_query, "tradeoff": tradeoff,
            "recall": float(np.mean([q["recall"] for q in qs])),
            "tie_recall": float(np.mean([q["tie_recall"] for q in qs])),
            "same_photo": float(np.mean([q["same_photo"] for q in qs])),
            "score_lost": float(np.mean([q["score_lost"] for q in qs])),
            "max_score_diff": max(q["score_diff"] for q in qs),
            "lists": sum(q["lists"] for q in qs), "longest_list": max(q["longest_list"] for q in qs),
            "max_exemplar_ties": max(q["exemplar_ties"] for q in qs),
            "max_depth": max((q["depth"] for q in qs if q["depth"] is not None), default=None),
            "capped": sum(q["capped"] for q in qs),
            "first_read": {name: {"recall": float(np.mean([q["first_read"][name]["recall"] for q in qs])),
                                  "none": sum(q["first_read"][name]["recall"] == 0 for q in qs),
                                  "searches": len(qs),
                                  "bound_error": max(q["first_read"][name]["bound_error"] for q in qs)}
                           for name in ("joint", "semantic", "conse") if all(name in q["first_read"] for q in qs)}}


def index_first_read(index: Any, rows: np.ndarray, vector: np.ndarray) -> dict[str, float]:
    """What Text → Image's first read of a photo index gives (hnswlib's best :data:`searchcore.topk.START`) against
    the exact best by cosine over every row: the share of the exact ids found, and how far hnswlib's last cosine
    falls below the exact one there (the threshold algorithm takes that last cosine as the most any photo it did not
    give can have, so a positive error is a bound that some photo exceeds)."""
    from searchcore.topk import START

    depth = min(START, len(rows))
    found = index.query(vector, depth)
    cosines = rows @ vector
    best = np.argpartition(-cosines, depth - 1)[:depth]
    return {"recall": len(set(found.ids[0].tolist()) & set(best.tolist())) / depth,
            "bound_error": float(cosines[best].min() - (1.0 - found.distances[0][-1]))}


@contextmanager
def captured(module_name: str, attr: str) -> Iterator[list[Any]]:
    """While the block runs, keep what ``module.attr`` returns (nothing when this version of the code has none)."""
    import importlib

    module = importlib.import_module(module_name)
    out: list[Any] = []
    original = getattr(module, attr, None)
    if original is None:
        yield out
        return

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        value = original(*args, **kwargs)
        out.append(value)
        return value

    setattr(module, attr, wrapper)
    try:
        yield out
    finally:
        setattr(module, attr, original)


def exact_top(features: np.ndarray, query: np.ndarray, weights: np.ndarray | None, k: int = K,
              block: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """The exact top ``k`` by cosine (of rows ⊙ ``weights`` when given) over every row, in blocks; (ids, cosines)."""
    q = query * weights if weights is not None else query
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    scores = np.empty(len(features), np.float32)
    for start in range(0, len(features), block):
        rows = np.asarray(features[start : start + block], np.float32)
        if weights is not None:
            rows = rows * weights
        scores[start : start + len(rows)] = (rows @ q) / np.maximum(np.linalg.norm(rows, axis=1), 1e-12)
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.argsort(-scores[top], kind="stable")]
    return top, scores


def recall_images(engine: Any, r: int) -> dict[str, Any]:
    """Served by-class and Image → Image top 10 against exact cosine over every photo, for real rows 0, 37, …"""
    bundle = engine.bundle
    weights = engine.backbone.classifier_weights()[engine.resolve_class(BY_CLASS)]
    photos = list(range(0, r, max(1, r // RECALL_PHOTOS)))[:RECALL_PHOTOS]
    out: dict[str, list[float]] = {"by_class": [], "by_class_tie": [], "image_image": [], "image_image_tie": []}
    for photo in photos:
        query = np.asarray(bundle.features[photo], np.float32)
        for name, w, search in (("by_class", weights, lambda p: engine.similar_images_by_class(p, BY_CLASS, K)),
                                ("image_image", None, lambda p: engine.similar_images(p, K))):
            top, scores = exact_top(bundle.features, query, w)
            got = np.asarray([h.id for h in search(photo)], np.int64)
            out[name].append(len(set(got.tolist()) & set(top.tolist())) / K)
            out[f"{name}_tie"].append(float((scores[got] >= scores[top[-1]] - TIE_EPS).sum()) / K)
    return {name: float(np.mean(values)) for name, values in out.items()} | {"photos": len(photos)}


def measure(sizes: list[int], roots: dict[int, Path], real: Path, reps: int, recall: bool) -> dict[str, Any]:
    import torch

    from searchcore import bundle as B
    from searchcore import load_engine
    from searchcore.models.backbones import load_backbone
    from searchcore.models.words import load_word_vectors

    torch.set_num_threads(1)  # as the app serves (SEARCH_TORCH_THREADS=1)
    manifest = B.verify(real, check_sums=False)
    r = int(manifest["count"])
    real_row, photo = pick_photo(real)
    t = time.perf_counter()
    backbone = load_backbone(manifest["backbone"])
    words = load_word_vectors(manifest["words"])
    shared_s = time.perf_counter() - t
    # warm-up: imports and the first-call costs that do not depend on a bundle, paid once on the real bundle
    warm = load_engine(real, backbone=backbone, words=words)
    for _ in range(2):
        for fn in search_cases(warm, r, photo, {k: [] for k, _, _ in SEARCHES}).values():
            fn()
    del warm
    gc.collect()

    engines: dict[int, Any] = {}
    per_size: dict[int, dict[str, Any]] = {}
    samples: dict[int, dict[str, list[float]]] = {}
    def timed_load(root: Path) -> tuple[Any, float, dict[str, float], float]:
        """load_engine after evicting the bundle's files from the page cache; (engine, seconds, steps, first query)."""
        evict(root)
        gc.collect()
        t = time.perf_counter()
        with timed_steps("searchcore.bundle", LOAD_STEPS) as parts, \
                timed_steps("searchcore.serve.engine", ENGINE_STEPS) as engine_parts:
            engine = load_engine(root, backbone=backbone, words=words)  # check_sums=True, as the app loads
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        engine.search_images(FIRST_QUERY, K)
        return engine, load_s, {**parts, **engine_parts}, time.perf_counter() - t

    stamps = getattr(B, "_stamps_path", None)  # where searchcore.bundle records the files it verified (if it does)
    for size in sizes:
        root = roots[size]
        if stamps is not None:  # the first start on this machine: every file is hashed
            stamps(root).unlink(missing_ok=True)
        engine, first_load_s, first_parts, first_query_s = timed_load(root)
        del engine
        gc.collect()
        rss0 = common.rss()
        engine, load_s, parts, first_s = timed_load(root)  # a restart: the checksums were verified before
        rss_load = common.rss() - rss0
        samples[size] = {key: [] for key, _, _ in SEARCHES}
        for fn in search_cases(engine, size, photo, {key: [] for key, _, _ in SEARCHES}).values():
            fn()  # one pass of every search: the pages each one touches become resident
        rss_pass = common.rss() - rss0
        per_size[size] = {"first_load_s": first_load_s, "first_load_steps": first_parts,
                          "first_load_first_query_s": first_query_s, "load_s": load_s, "load_steps": parts,
                          "first_query_s": first_s, "verified_before": stamps is not None,
                          "rss_after_load": rss_load, "rss_after_one_pass": rss_pass,
                          "peak_rss_after": common.peak_rss(), "count": len(engine.bundle.items),
                          "disk_bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file())}
        engines[size] = engine
        common.log(f"scale-{size}: first load {first_load_s:.2f} s (first query {first_query_s * 1000:.1f} ms), "
                   f"restart load {load_s:.2f} s (first query {first_s * 1000:.1f} ms), RSS +"
                   f"{common.fmt_bytes(rss_load)} (+{common.fmt_bytes(rss_pass)} after one pass)")
    for size in sizes:  # the timed rounds run with the arrays' files in the page cache, as on a server running a while
        warm_page_cache([roots[size] / B.FEATURES, roots[size] / B.LOGITS])

    cases: dict[str, Callable[[], float]] = {}
    for key, _, _ in SEARCHES:  # a search at every size back to back, then the next search
        for size in sizes:
            cases[f"{key}@{size}"] = search_cases(engines[size], size, photo, samples[size])[key]
    rss_before_rounds = common.rss()
    common.log(f"timing: {reps} interleaved rounds over {len(cases)} cases")
    common.interleaved(cases, reps=reps, warmup=0, log=common.log if reps <= 10 else None)
    rss_after_rounds = common.rss()
    timings = {size: {key: {"p50_ms": 1000 * percentile(v, 50), "p95_ms": 1000 * percentile(v, 95), "calls": len(v)}
                      for key, v in samples[size].items()} for size in sizes}
    for size in sizes:  # Text → Image query by query (each round runs them in TEXT_QUERIES' order)
        timings[size]["text_image_queries"] = {
            q: {"p50_ms": 1000 * percentile(v, 50), "p95_ms": 1000 * percentile(v, 95), "calls": len(v)}
            for i, q in enumerate(TEXT_QUERIES) for v in [samples[size]["text_image"][i::len(TEXT_QUERIES)]]}
    recalls: dict[int, dict[str, Any]] = {}
    if recall:
        for size in sizes:
            common.log(f"scale-{size}: recall@{K} against exact scores over all {size:,} photos")
            t = time.perf_counter()
            recalls[size] = {"text_image": recall_text(engines[size], RECALL_QUERIES, r),
                             **recall_images(engines[size], r)}
            recalls[size]["seconds"] = time.perf_counter() - t
            common.log(f"scale-{size}: Text → Image recall {recalls[size]['text_image']['recall']:.3f}, by class "
                       f"{recalls[size]['by_class']:.3f}, Image → Image {recalls[size]['image_image']:.3f}")
    return {"real_photo_row": real_row, "photo": photo.name, "shared_load_s": shared_s, "per_size": per_size,
            "timings": timings, "recall": recalls, "rss_rounds_growth": rss_after_rounds - rss_before_rounds,
            "peak_rss": common.peak_rss(), "r": r}


# --------------------------------------------------------------------------------------------- the report


def verdicts(res: dict[str, Any]) -> dict[str, Any]:
    sizes, t = res["sizes"], res["timings"]
    big, small = max(sizes), min(sizes)
    ratios = {key: t[big][key]["p50_ms"] / t[small][key]["p50_ms"] for key, _, _ in SEARCHES}
    out: dict[str, Any] = {"largest": big, "smallest": small, "ratios": ratios,
                           "ratio_met": {key: v <= TARGET_RATIO for key, v in ratios.items()},
                           "first_query_s": res["per_size"][big]["first_query_s"]}
    out["first_met"] = out["first_query_s"] < TARGET_FIRST_S
    if res["recall"]:
        worst = {name: min(res["recall"][s][name] if name != "text_image" else res["recall"][s][name]["recall"]
                           for s in sizes) for name in ("text_image", "by_class")}
        out["recall_worst"] = worst
        out["recall_met"] = {name: v >= TARGET_RECALL for name, v in worst.items()}
    return out


def ms(value: float | None) -> str:
    return "—" if value is None else f"{common.fmt(value)} ms"


def render(res: dict[str, Any]) -> str:
    from searchcore.serve.engine import INDEX_DEPTH
    from searchcore.topk import CAP

    sizes, t, v = res["sizes"], res["timings"], res["verdict"]
    full = 400_000 in sizes
    lines = [
        f"Command: `{res['command']}`" + ("" if full else f"  \n**Sizes run: {', '.join(f'{s:,}' for s in sizes)}; "
                                          "400,000 photos not measured in this run (see below).**"),
        "",
        f"Machine: {common.machine_line(res['machine'])} Load average at the end: {res['machine']['load_avg_end'][0]}.",
        "",
        f"Code: {res['code']}. Synthetic enlargements of the offline Tux Paint bundle ({res['r']} photos, trained "
        f"head): row i = real row i mod {res['r']} plus Gaussian noise of {NOISE:.0%} of the row's norm on features "
        f"and logits (seed {res['seed']}); items copy the real items' labels and captions and share their {res['r']} "
        "photo files; each built by `searchcore.build.write.write_bundle` with the real bundle's served head (image, "
        "semantic, ConSE and joint indexes, tag vocabulary, posting tables), as `bench/bench_scale.py`'s docstring "
        f"describes. All sizes were loaded in one process and timed in {res['reps']} interleaved rounds (each search "
        "at every size back to back); p50/p95 over every call of every round. One torch thread, as the app serves. "
        f"\"Before\": issue 21, measured at `{BEFORE_REV}` (every photo scored per query). Photo file: "
        f"`{res['photo']}` (real row {res['real_photo_row']}), through the backbone on each call.",
        "",
    ]
    for key, title, what in SEARCHES:
        before = BEFORE_P50_MS.get(key, {})
        rows = []
        for size in sizes:
            ratio = t[size][key]["p50_ms"] / t[min(sizes)][key]["p50_ms"]
            rows.append([f"{size:,}", ms(before.get(size)), ms(t[size][key]["p50_ms"]), ms(t[size][key]["p95_ms"]),
                         f"{ratio:.2f}×", t[size][key]["calls"]])
        lines += [f"**{title}**: {what}.", "",
                  common.table(["photos", "before p50", "p50", "p95", f"p50 ÷ p50 at {min(sizes):,}", "calls"], rows),
                  ""]
    per_query = [[f"`{q}`", *[ms(t[s]["text_image_queries"][q]["p50_ms"]) for s in sizes],
                  ms(BEFORE_DOG_400K_MS) if q == "dog" else "—"] for q in TEXT_QUERIES]
    lines += ["Text → Image query by query, p50 (before: only `dog` at 400,000 was reported):", "",
              common.table(["query", *[f"{s:,}" for s in sizes], "before, 400,000"], per_query), ""]
    ps = res["per_size"]
    verify_label = LOAD_STEPS[0][1]
    rows = [[f"{s:,}", common.fmt_bytes(ps[s]["disk_bytes"]), f"{common.fmt(ps[s]['first_load_s'])} s",
             f"{common.fmt(ps[s]['first_load_steps'].get(verify_label))} s",
             ms(1000 * ps[s]["first_load_first_query_s"]), f"{common.fmt(ps[s]['load_s'])} s",
             ms(1000 * ps[s]["first_query_s"]),
             f"{common.fmt(BEFORE_FIRST_S.get(s))} s" if s in BEFORE_FIRST_S else "—",
             common.fmt_bytes(ps[s]["rss_after_load"]), common.fmt_bytes(ps[s]["rss_after_one_pass"]),
             common.fmt_bytes(ps[s]["peak_rss_after"])] for s in sizes]
    steps = (*LOAD_STEPS, *ENGINE_STEPS)
    lines += [
        "**Loading**: `load_engine(path)` with `check_sums=True`, as the app loads, each time after this bundle's "
        "files were evicted from the page cache; the backbone and word vectors (loaded once in "
        f"{common.fmt(res['shared_load_s'])} s) are passed in. *First load*: the first on this machine, every file "
        "hashed (`searchcore.bundle` then records the files it verified); *restart*: the next load, which finds them "
        f"verified. The first query is `search_images({FIRST_QUERY!r})` right after each load. RSS (after the "
        "restart): growth of this process's resident set over the load, and after one pass of every search "
        "(features and logits are memory-mapped: rows count once a search touches them); peak: the process's "
        "high-water mark after this size was loaded (every smaller size still loaded).",
        "",
        common.table(["photos", "on disk", "first load", "of which checksums", "first query", "restart load",
                      "first query", "before: first query", "RSS after load", "RSS after one pass",
                      "process peak RSS"], rows),
        "",
        "Where the restart load's time went (the functions `load_engine` calls, timed while it ran):",
        "",
        common.table(["photos", *[label for _, label in steps], "the rest (SearchEngine)"],
                     [[f"{s:,}", *[f"{common.fmt(ps[s]['load_steps'].get(label))} s" for _, label in steps],
                       f"{common.fmt(ps[s]['load_s'] - ps[s]['load_steps'].get(ENGINE_STEPS[0][1], 0.0))} s"]
                      for s in sizes]),
        "",
        f"The timed rounds ran with features.npy and logits.npy in the page cache (read once after the loads, as on a "
        "server that has run a while): a search on an item id reads that item's rows through the memory map, and "
        "a row not yet in memory is read from disk on its first use. RSS growth over the "
        f"{res['reps']} timed rounds (all sizes): {common.fmt_bytes(res['rss_rounds_growth'])}; process peak at the "
        f"end (after the recall measurement, which scores every photo) {common.fmt_bytes(res['peak_rss'])}.",
        "",
    ]
    if res["recall"]:
        rec = res["recall"]
        rows = [[f"{s:,}", f"{rec[s]['by_class']:.3f}", f"{rec[s]['by_class_tie']:.3f}",
                 f"{rec[s]['image_image']:.3f}", f"{rec[s]['image_image_tie']:.3f}"] for s in sizes]
        text_rows = []
        for s in sizes:
            x = rec[s]["text_image"]
            text_rows.append([f"{s:,}", f"{x['recall']:.3f}", f"{x['tie_recall']:.3f}", f"{x['same_photo']:.3f}",
                              f"{x['score_lost']:.4f}", f"{x['max_score_diff']:.1e}",
                              f"{x['longest_list']:,}", f"{x['max_exemplar_ties']:,}",
                              "—" if x.get("max_depth") is None else f"{x['max_depth']:,}",
                              str(x.get("capped", "—"))])
        lines += [
            f"**Recall@{K}** of the served top {K} against the same score computed exactly over every photo. *ids*: "
            f"share of the exact top {K}'s ids served (the target's measure); *ties*: share of served photos whose "
            f"exact score is within {TIE_EPS:g} of the exact {K}th.",
            "",
            f"Text → Image, {len(RECALL_QUERIES)} queries (`tests/test_postings.py`'s; the exact score as its `_exact` "
            f"computes it). *Same photo*: share of served photos that are copies of a real photo whose copies make "
            f"the exact top {K} (each real photo has about N/{res['r']} noisy copies, whose scores differ by the noise "
            f"alone); *score lost*: the exact top {K}'s mean exact score minus the served photos' (mean over queries); "
            "*served score error*: largest difference between a served score and the exact score of the same photo; "
            "*longest list*: the most photos on a posting list the queries read (every photo with a score for the "
            "word: the tables are complete); *exemplar ties*: the most photos sharing a query's best exemplar score; "
            "*deepest read*: the deepest any query read its lists "
            "(`searchcore.topk.top_k`); *queries capped*: queries whose reading stopped at `searchcore.topk.CAP` "
            f"before its bound said the top {K} was final.",
            "",
            common.table(["photos", "ids", "ties", "same photo", "score lost", "served score error", "longest list",
                          "exemplar ties", "deepest read", "queries capped"], text_rows),
            "",
        ]
        worst_queries = {s: sorted(((q, d["recall"]) for q, d in rec[s]["text_image"]["queries"].items()
                                    if d["recall"] < 1.0), key=lambda x: x[1]) for s in sizes}
        misses = [f"{s:,}: " + ", ".join(f"`{q}` {x:.1f}" for q, x in worst_queries[s][:8]) for s in sizes
                  if worst_queries[s]]
        if misses:
            lines += ["Text → Image queries below recall 1 (ids): " + "; ".join(misses) + ".", ""]
        firsts = {s: rec[s]["text_image"].get("first_read", {}) for s in sizes}
        names = [n for n in ("joint", "semantic", "conse") if all(n in f for f in firsts.values())]
        if names:
            from searchcore.topk import START

            lines += [
                f"The photo indexes' first read: for the same queries, the best {START} of each photo index Text → "
                f"Image reads (`joint`: the head's and ConSE's rows side by side, read with the query's mix; the depth "
                f"`searchcore.topk.top_k` reads an index first) against the exact best {START} by that cosine over "
                f"every photo: *recall*, the share of the exact ids found (mean over queries); *none*, searches that "
                f"found none of them; *bound error*, the most by which the index's {START}th cosine fell below the "
                "exact one (the threshold algorithm bounds the photos an index did not give by that cosine, so a "
                "photo it missed can beat the bound by this much). Above 429 photos each real photo has about N/429 "
                "near-copies; the index lists them under one graph node and scores them exactly when it finds the "
                "node (`searchcore.copies`), since hnswlib's graph search could stay among one photo's copies.",
                "",
                common.table(["photos", *(f"{n} {h}" for n in names for h in ("recall", "none", "bound error"))],
                             [[f"{s:,}", *(v for n in names for v in (
                                 f"{firsts[s][n]['recall']:.3f}", f"{firsts[s][n]['none']}/{firsts[s][n]['searches']}",
                                 f"{firsts[s][n]['bound_error']:.4f}"))] for s in sizes]),
                "",
            ]
        caps = sorted(rec[sizes[0]]["text_image"].get("tradeoff", {}))
        if caps:
            lines += [
                f"How deep to read: the same {len(RECALL_QUERIES)} queries with `searchcore.topk.top_k`'s cap "
                f"lowered (the served cap is {CAP:,}; an hnswlib index is read at most {INDEX_DEPTH:,} deep, "
                f"`searchcore.serve.engine.INDEX_DEPTH`), {TRADEOFF_REPS} calls each after the rounds above: "
                f"recall@{K} (ids) and p50 per cap.",
                "",
                common.table(["photos", *(f"cap {c:,}" for c in caps)],
                             [[f"{s:,}", *(f"{rec[s]['text_image']['tradeoff'][c]['recall']:.3f} · "
                                           f"{ms(rec[s]['text_image']['tradeoff'][c]['p50_ms'])}" for c in caps)]
                              for s in sizes]),
                "",
            ]
        lines += [
            f"By class (`{BY_CLASS}`: exact re-weighted cosine over every photo) and Image → Image (exact cosine over "
            f"every photo) over {rec[sizes[0]]['photos']} item ids (real rows 0, 37, 74, …):",
            "",
            common.table(["photos", "by class ids", "ties", "Image → Image ids", "ties"], rows),
            "",
        ]
    b = res["builds"]
    rows = [[f"{s:,}", f"{common.fmt(b[s]['total_s'])} s", f"{common.fmt(b[s]['generate_s'])} s",
             "; ".join(f"{label} {common.fmt(b[s]['steps'].get(label))} s" for _, label in BUILD_STEPS
                       if label in b[s]["steps"]), f"{common.fmt(b[s]['manifest_s'])} s",
             common.fmt_bytes(b[s]["build_peak_rss_bytes"]),
             f"{b[s]['date']}, {b[s]['code']}" + (" (build code changed since)" if b[s].get("other_build_code")
                                                   else "")] for s in sizes]
    lines += [
        "**Builds** (each in its own process; cached and reused while the real bundle and generator are unchanged; "
        "the date says when the figures were measured). `ConSE.embed` ran on blocks of "
        f"{CONSE_BLOCK:,} photos (the same embedding; unblocked it holds about 31 KB per photo at its peak, 12 GiB at "
        "400,000 photos):",
        "",
        common.table(["photos", "whole build", "generate", "write_bundle steps", "manifest (checksums)",
                      "peak RSS", "built (code)"], rows),
        "",
    ]
    if res.get("build_note"):
        lines += [res["build_note"], ""]
    big, small = v["largest"], v["smallest"]
    lines += [f"**Targets** (issue 21), judged at {big:,} against {small:,} photos"
              + ("" if full else " (400,000 not measured: the targets at 400,000 are **not shown** by this run)")
              + ":", ""]
    for key, title, _ in SEARCHES:
        lines.append(f"- {title}: p50 {common.fmt(v['ratios'][key])}× its p50 at {small:,} — ≤ {TARGET_RATIO:g}×: "
                     f"**{'met' if v['ratio_met'][key] else 'not met'}**.")
    lines.append(f"- First query after loading {big:,} photos: {ms(1000 * v['first_query_s'])} — under "
                 f"{TARGET_FIRST_S:g} s: **{'met' if v['first_met'] else 'not met'}**.")
    if "recall_worst" in v:
        for name, title in (("text_image", "Text → Image"), ("by_class", "By class")):
            lines.append(f"- {title} recall@{K} (lowest over the sizes, ids): {v['recall_worst'][name]:.3f} — ≥ "
                         f"{TARGET_RECALL}: **{'met' if v['recall_met'][name] else 'not met'}**.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None, help="comma-separated photo counts (default 429,10000,100000,400000;"
                        " --quick 429,10000)")
    parser.add_argument("--cache", default=None, help="the benchmarks' cache folder (SEARCH_CACHE_DIR for this run)")
    parser.add_argument("--seed", type=int, default=0, help="the generator's noise seed")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the synthetic bundles even when cached")
    parser.add_argument("--reuse-built", action="store_true", help="reuse cached bundles even when the searchcore "
                        "modules that build them changed since (the section says so)")
    parser.add_argument("--no-recall", action="store_true", help="skip the recall@10 measurement")
    parser.add_argument("--build-only", action="store_true", help="build (or reuse) the bundles; measure nothing")
    parser.add_argument("--build-note", default=None, help="a sentence added under the build table (e.g. why a "
                        "size was not run)")
    parser.add_argument("--build-one", type=int, default=None, help=argparse_suppress())
    args = parser.parse_args(argv)
    cache = use_cache(args.cache)
    if args.build_one is not None:  # the child process of ensure_synthetic
        record = build_synthetic(real_bundle(), args.build_one, args.seed, cache)
        print(json.dumps(record, default=common._jsonable))
        return record
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",")} if args.sizes
                   else set(QUICK_SIZES if args.quick else SIZES))
    reps = args.reps or (5 if args.quick else 20)
    info = common.machine(with_torch=True)
    real = real_bundle()
    common.log(f"real bundle {real}")
    builds = {size: ensure_synthetic(real, size, args.seed, cache, args.rebuild, args.reuse_built)
              for size in sizes}
    if args.build_only:
        for size, b in builds.items():
            common.log(f"scale-{size}: {b['total_s']:.0f} s, steps {json.dumps(b['steps'])}")
        return {"builds": builds}
    measured = measure(sizes, {s: scale_dir(cache, s) for s in sizes}, real, reps, not args.no_recall)
    info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {"machine": info, "command": common.command("bench.bench_scale", argv), "code": code_version(),
              "sizes": sizes, "reps": reps, "seed": args.seed, "builds": builds, "build_note": args.build_note,
              **measured}
    result["verdict"] = verdicts(result)
    text = render(result)
    print(text)
    common.emit_json("bench_scale", result)
    if args.write:
        common.write_section("bench_scale", text, "12. Scale")
        common.log(f"wrote {common.DOC}")
    return result


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
