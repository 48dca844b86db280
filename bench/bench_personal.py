"""Your photos: upload → searchable against the backbone's bare extraction, memory, and ``build_assets --update``.

    python -m bench.bench_personal            # 50 and 200 photos, 6 rounds each; 32 collections; update (~8 min)
    python -m bench.bench_personal --quick    # 20 and 50 photos, 2 rounds, 4 collections, no update
    python -m bench.bench_personal --write    # also write section 9 of docs/benchmarks.md

Photos: Tux Paint's real-photo stamps (the offline demo's collection). Served as the app serves: the offline
bundle's engine, one torch thread (``SEARCH_TORCH_THREADS``' default).

* **Upload → searchable** (interleaved, per round): the floor is ``Backbone.extract`` over the photo files (decode,
  preprocess, network, with its own decode/network overlap); the upload is what ``/add_photos`` does after Gradio
  has the files: :func:`searchcore.serve.uploads.read_uploads` (bytes in memory), ``SearchEngine.add_images`` (decode
  and network in batches, per-photo error capture, the copies written to the collection's folder, ConSE, nearest
  served photo, the head's embedding) and a first search. Unlabelled photos: no head is trained. The same photos in
  a zip of class folders, with the head trained and measured (the seconds a labelled upload adds), are timed apart.
* **Memory:** the arrays one 200-photo collection holds, and this process's resident memory (the engine loaded)
  as the store fills up to its maximum of live 200-photo collections, each a full copy (files on disk too); the peak.
* **--update** (:mod:`searchcore.build.update`): a bundle of N photos gets 10 new ones, against building the N + 10
  anew.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from . import common

STAMPS = Path(os.environ.get("TUXPAINT_STAMPS", "/usr/share/tuxpaint/stamps"))


def photos(n: int) -> list[Path]:
    """``n`` Tux Paint photos, spread over the categories (sorted, so every run takes the same ones)."""
    from PIL import Image

    from searchcore.collection import tuxpaint_collection
    from searchcore.images import MIN_SIDE

    collection = tuxpaint_collection(STAMPS)
    items = sorted(collection.items, key=lambda it: (it.id % 7, it.path))  # a spread, not one category
    readable = []
    for item in items:
        with Image.open(collection.path(item)) as image:  # the one stamp too small to read is left out
            if min(image.size) >= MIN_SIDE:
                readable.append(collection.path(item))
        if len(readable) == n:
            return readable
    raise SystemExit(f"needs {n} Tux Paint photos under {STAMPS} (apt-get install tuxpaint-stamps-default)")


def class_zip(paths: list[Path]) -> Path:
    """The photos in a zip of class folders (their Tux Paint category), as a visitor would upload them."""
    out = Path(tempfile.mkdtemp(prefix="bench_personal_")) / "photos.zip"
    with zipfile.ZipFile(out, "w") as archive:
        for path in paths:
            archive.write(path, f"{path.parent.name}/{path.name}")
    return out


def upload_vs_floor(engine: Any, store: Any, sizes: list[int], reps: int) -> dict[str, Any]:
    from searchcore.serve.uploads import read_uploads

    out: dict[str, Any] = {}
    for n in sizes:
        files = photos(n)
        counter = iter(range(10**6))

        def floor(files: list[Path] = files) -> None:
            engine.backbone.extract(files)

        def upload(files: list[Path] = files, counter: Any = counter) -> float:
            key = f"u{next(counter)}"
            start = time.perf_counter()
            with store.using(key, create=True) as mine:
                reading = read_uploads([(p, p.name) for p in files], mine.room[1])
                added = engine.add_images(mine, reading.candidates, train=False)
                assert added.added == len(files), added.skipped
                engine.search_images("bird", 5, collection=mine)
            seconds = time.perf_counter() - start
            store.drop(key)  # not timed: deleting the copies is no part of becoming searchable
            return seconds

        common.log(f"{n} photos: floor vs upload, {reps} rounds")
        times = common.interleaved({"floor": floor, "upload": upload}, reps, warmup=1, log=common.log)
        ratios = [u / f for f, u in zip(times["floor"], times["upload"], strict=True)]
        out[str(n)] = {"floor_s": common.median(times["floor"]), "floor_range": common.spread(times["floor"]),
                       "upload_s": common.median(times["upload"]), "upload_range": common.spread(times["upload"]),
                       "overhead": common.median(ratios) - 1.0, "overhead_range": [r - 1 for r in
                                                                                   common.spread(ratios)]}
    return out


def labelled(engine: Any, store: Any, n: int, reps: int) -> dict[str, Any]:
    from searchcore.serve.uploads import read_uploads

    archive = class_zip(photos(n))
    runs = []
    try:
        for rep in range(reps):
            with store.using(f"l{rep}", create=True) as mine:
                start = time.perf_counter()
                reading = read_uploads([(archive, archive.name)], mine.room[1])
                added = engine.add_images(mine, reading.candidates)
                engine.search_images("bird", 5, collection=mine)
                runs.append((time.perf_counter() - start, added.summary))
            store.drop(f"l{rep}")
    finally:
        shutil.rmtree(archive.parent, ignore_errors=True)
    summary = runs[-1][1]
    head = summary["head"]
    return {"photos": n, "seconds": common.median([r[0] for r in runs]), "labels": len(summary["labels"]),
            "trained_labels": len(head.get("labels", [])), "head_seconds": head.get("seconds"),
            "p10": head.get("text_image_p10"), "test_photos": head.get("test_photos")}


def memory(engine: Any, n: int, collections: int) -> dict[str, Any]:
    """Fill a store with ``collections`` collections of ``n`` photos (the first indexed, the rest copies)."""
    import numpy as np

    from searchcore.serve.personal import Limits, PersonalItem
    from searchcore.serve.uploads import read_uploads

    store = engine.collection_store(Limits(max_photos=n, max_collections=collections))
    before = common.rss()
    try:
        files = photos(n)
        with store.using("c0", create=True) as first:
            engine.add_images(first, read_uploads([(p, p.name) for p in files], first.room[1]).candidates)
        arrays = sum(a.nbytes for a in (first.features, first.logits, first.conse, first.semantic, first.nearest))
        after_one = common.rss()
        for c in range(1, collections):
            with store.using(f"c{c}", create=True) as mine:
                items = [PersonalItem(it.name, it.label, mine.store(it.name, it.path.read_bytes()))
                         for it in first.items]
                mine.append(items, first.features.copy(), first.logits.copy(), first.conse.copy(),
                            first.nearest.copy(), first.nbytes)
                mine.semantic = np.array(first.semantic)
        full = common.rss()
        disk = sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file())
        assert len(store) == collections
    finally:
        store.close()
    return {"photos": n, "collections": collections, "arrays_bytes": arrays, "rss_engine": before,
            "rss_one": after_one, "rss_full": full, "per_collection_rss": (full - after_one) / max(collections - 1, 1),
            "peak_rss": common.peak_rss(), "disk_bytes": disk}


def update_vs_rebuild(n: int, new: int) -> dict[str, Any]:
    """build_assets --update adding ``new`` photos to an ``n``-photo bundle, against a full build of all of them."""
    from searchcore.build.offline import OFFLINE_BACKBONE, OFFLINE_WORDS
    from searchcore.build.pipeline import build_bundle
    from searchcore.build.update import update_bundle
    from searchcore.collection import folder_collection

    work = Path(tempfile.mkdtemp(prefix="bench_update_"))
    try:
        files = photos(n + new)
        source = work / "photos"
        for path in files[:n]:
            (source / path.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, source / path.parent.name / path.name)
        common.log(f"building a bundle of {n} photos")
        build_bundle(folder_collection(source), work / "bundle", OFFLINE_BACKBONE, OFFLINE_WORDS)
        for path in files[n:]:
            (source / path.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, source / path.parent.name / path.name)
        common.log(f"updating it with {new} new photos")
        start = time.perf_counter()
        counts = update_bundle(work / "bundle", folder_collection(source))
        update_s = time.perf_counter() - start
        common.log(f"building all {n + new} anew")
        start = time.perf_counter()
        build_bundle(folder_collection(source), work / "rebuilt", OFFLINE_BACKBONE, OFFLINE_WORDS)
        rebuild_s = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"photos": n, "new": new, "added": counts["added"], "update_s": update_s, "rebuild_s": rebuild_s}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=None, help="the bundle to serve (default: the offline demo bundle)")
    args = parser.parse_args(argv)
    import torch

    from searchcore import load_engine
    from searchcore.build.offline import ensure_offline_bundle
    from searchcore.serve.personal import Limits

    torch.set_num_threads(1)  # as the app serves (SEARCH_TORCH_THREADS=1)
    info = common.machine(with_torch=True)
    sizes = [20, 50] if args.quick else [50, 200]
    reps = args.reps or (2 if args.quick else 6)
    engine = load_engine(args.bundle or ensure_offline_bundle())
    store = engine.collection_store(Limits(max_photos=max(sizes), max_collections=4))
    try:
        speed = upload_vs_floor(engine, store, sizes, reps)
        common.log("a labelled upload: zip of class folders, head trained")
        with_head = labelled(engine, store, max(sizes), 2 if not args.quick else 1)
    finally:
        store.close()
    common.log("memory")
    limits = Limits.from_env()
    mem = memory(engine, max(sizes), 4 if args.quick else limits.max_collections)
    update = None if args.quick else update_vs_rebuild(419, 10)  # the case: 10 new photos make 429
    info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {"machine": info, "command": common.command("bench.bench_personal", argv), "reps": reps,
              "speed": speed, "labelled": with_head, "memory": mem, "update": update}
    text = render(result)
    print(text)
    common.emit_json("bench_personal", result)
    if args.write:
        common.write_section("bench_personal", text, "9. Your photos", machine_info=info)
        common.log(f"wrote {common.DOC}")
    return result


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [f"Command: `{res['command']}`. Machine: {common.machine_line(m)} Load average at the end "
             f"{m['load_avg_end'][0]}. One torch thread, as served.", "",
             "**Upload → searchable** (unlabelled photos; medians of "
             f"{res['reps']} interleaved rounds, min–max in brackets). Floor: `Backbone.extract` over the same files. "
             "Upload: read the files, `SearchEngine.add_images` (decode and network in batches, copies written, ConSE, "
             "nearest served photo, head embedding) and a first search.", ""]
    rows = []
    for n, s in res["speed"].items():
        lo, hi = s["overhead_range"]
        verdict = "within" if s["overhead"] <= 0.20 else "**over**"
        rows.append([n, f"{common.fmt(s['floor_s'])} s ({common.fmt(s['floor_range'][0])}–"
                        f"{common.fmt(s['floor_range'][1])})",
                     f"{common.fmt(s['upload_s'])} s ({common.fmt(s['upload_range'][0])}–"
                     f"{common.fmt(s['upload_range'][1])})",
                     f"{100 * s['overhead']:+.1f} % ({100 * lo:+.1f} to {100 * hi:+.1f})",
                     f"{verdict} the 20 % target"])
    lines.append(common.table(["photos", "floor: extraction", "upload → searchable", "overhead", ""], rows))
    lab = res["labelled"]
    p10 = lab.get("p10") or {}
    lines += ["", f"**A labelled upload** ({lab['photos']} photos in a zip of {lab['labels']} class folders, the head "
              f"trained on the {lab['trained_labels']} labels with two or more photos): {common.fmt(lab['seconds'])} s "
              f"to searchable, of which head training {common.fmt(lab['head_seconds'])} s. Its Text → Image "
              f"precision@10 on {lab['test_photos']} held-back photos: ConSE {common.fmt(p10.get('conse'))}, head "
              f"{common.fmt(p10.get('head'))}, served {common.fmt(p10.get('served'))}."]
    mem = res["memory"]
    total = mem["arrays_bytes"] * mem["collections"]
    lines += ["", f"**Memory.** One collection of {mem['photos']} photos holds {common.fmt_bytes(mem['arrays_bytes'])} "
              "of vectors (features, logits, two word-space embeddings) in memory, its photo files on disk: "
              f"{mem['collections']} such collections (the default maximum of live ones), "
              f"{common.fmt_bytes(total)} of vectors and {common.fmt_bytes(mem['disk_bytes'])} of files in the "
              "server's temporary folder. This process's resident memory: "
              f"{common.fmt_bytes(mem['rss_engine'])} with the engine loaded (after the timings above), "
              f"{common.fmt_bytes(mem['rss_one'])} after the first collection, {common.fmt_bytes(mem['rss_full'])} "
              f"with all {mem['collections']}: it barely moves, because the vectors fit in pages the backbone's "
              f"batches had freed. Peak: {common.fmt_bytes(mem['peak_rss'])}, reached while extracting, not by the "
              "collections."]
    up = res.get("update")
    if up:
        lines += ["", f"**`build_assets --update`**: a bundle of {up['photos']} Tux Paint photos gets {up['new']} new "
                  f"ones in {common.fmt(up['update_s'])} s (only they are extracted; the indexes are rebuilt), against "
                  f"{common.fmt(up['rebuild_s'])} s to build all {up['photos'] + up['new']} anew "
                  f"({100 * up['update_s'] / up['rebuild_s']:.0f} % of its time, "
                  f"{common.fmt(up['rebuild_s'] / up['update_s'])}× faster). Both also pay the fixed cost of "
                  "writing a bundle (tag vocabulary and indexes); the update keeps the word index."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
