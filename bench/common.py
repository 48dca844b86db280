"""Shared helpers for the benchmarks: describe the machine, time with repetitions, write docs/benchmarks.md.

The machines these run on are small and shared, so single timings lie. Two habits keep the numbers honest:

* every figure is a median over several repetitions, and the spread (min–max) is kept beside it;
* variants that are compared are run *interleaved* (:func:`interleaved`: A B C, A B C, …) rather than one after
  another, so a noisy neighbour slows all of them alike and the ratios between them stay meaningful.

docs/benchmarks.md is shared by several scripts. Each owns one section, delimited by ``<!-- KEY:start -->`` and
``<!-- KEY:end -->`` markers; :func:`write_section` replaces only the text between its own markers (or appends a new
``## title`` section at the end of the file), so sections can be added and rerun independently.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"

_INTRO = """\
# Benchmarks

Speed, memory and quality of semantic-search's building blocks, measured by the scripts in `bench/` (scripts, not
tests). Each section below is written by one script with `--write` and states the machine and the exact command
that produced it; rerun that command to refresh the section. Figures are medians over several repetitions; variants
that are compared were run interleaved in the same process, so their ratios are more trustworthy than their
absolute values on a shared machine.

To add a section: give it a `## N. Title` heading followed by its own `<!-- KEY:start -->` / `<!-- KEY:end -->`
markers, and write between them with `bench.common.write_section(KEY, text, title)`.
"""

_SECTIONS = (
    ("machine", "Machine"),
    ("bench_words", "1. Word search"),
    ("bench_backbone", "2. Image features"),
    ("bench_loading", "3. Loading"),
    ("bench_training", "4. Training"),
    ("bench_e2e", "5. End to end"),
    ("bench_quality", "6. Quality"),
)


# --------------------------------------------------------------------------------------------- the machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags(wanted: Sequence[str] = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")
              ) -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in wanted if f in have]
    except OSError:
        pass
    return []


def machine(with_torch: bool = False) -> dict[str, Any]:
    """What the numbers were measured on; ``with_torch`` imports torch to report its version and thread count."""
    import numpy as np

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "flags": cpu_flags(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "date": time.strftime("%Y-%m-%d"),
    }
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info

        blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if blas:
            lib = blas[0]
            info["blas"] = f"{lib.get('internal_api')} {lib.get('version')}, {lib.get('num_threads')} threads"
    except ImportError:
        pass
    if with_torch or "torch" in sys.modules:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One markdown line: cores, CPU model and flags, RAM, library versions, torch threads, load average."""
    parts = [f"{info['usable_cores']} of {info['cores']} cores" if info["usable_cores"] != info["cores"]
             else f"{info['cores']} cores", f"CPU `{info['cpu']}`"]
    if info.get("flags"):
        parts.append("flags " + " ".join(info["flags"]))
    if info.get("memory_gib"):
        parts.append(f"{info['memory_gib']} GiB RAM")
    parts.append(f"Python {info['python']}, numpy {info['numpy']}")
    if info.get("blas"):
        parts.append(f"BLAS {info['blas']}")
    if info.get("torch"):
        parts.append(f"torch {info['torch']} ({info['torch_threads']} threads, CPU capability "
                     f"{info['torch_cpu_capability']})")
    if info.get("load_avg"):
        parts.append(f"load average at start {info['load_avg'][0]}")
    return "; ".join(parts) + f"; {info['date']}."


def command(module: str, argv: Sequence[str] | None = None) -> str:
    """The exact command line that reproduces this run, e.g. ``python -m bench.bench_words --write``."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", "-m", module, *args])


# --------------------------------------------------------------------------------------------- timing


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> tuple[float, float]:
    return float(min(values)), float(max(values))


def time_call(fn: Callable[[], Any], reps: int = 5, warmup: int = 1) -> list[float]:
    """Seconds per call of ``fn`` for ``reps`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def interleaved(cases: dict[str, Callable[[], float | None]], reps: int, warmup: int = 0,
                log: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Run every case once per round, ``reps`` rounds (A B C, A B C, …); return each case's measurements.

    A case returns its own measurement (e.g. seconds per query over a batch of queries) or ``None`` to be timed
    as a whole. Interleaving spreads a noisy neighbour's slowdown over all cases alike.
    """
    results: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(warmup + reps):
        for name, fn in cases.items():
            start = time.perf_counter()
            value = fn()
            elapsed = time.perf_counter() - start
            if round_ >= warmup:
                results[name].append(elapsed if value is None else float(value))
        if log is not None:
            log(f"round {round_ + 1}/{warmup + reps} done")
    return results


def rss() -> int:
    """Resident set size of this process, bytes."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def peak_rss() -> int:
    """Peak resident set size of this process so far, bytes (Linux reports ru_maxrss in KiB)."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run_child(code: str, timeout: float = 600, env: dict[str, str | None] | None = None) -> Any:
    """Run ``code`` in a fresh interpreter (repo root on the path) and return the JSON value it prints last.

    ``env`` adds variables to this process's environment; a value of ``None`` removes that variable.
    """
    full_env = {**os.environ, **{k: v for k, v in (env or {}).items() if v is not None}}
    for name in [k for k, v in (env or {}).items() if v is None]:
        full_env.pop(name, None)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full_env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------- output


def fmt(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant figures, thousands separated; ``None`` as an em dash."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:,.{digits}g}" if magnitude >= 1 else f"{value:.{digits}g}"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def emit_json(bench: str, payload: dict[str, Any]) -> None:
    """Print the machine-readable result as one JSON line (the last line of the script's output)."""
    print(json.dumps({"bench": bench, **payload}, default=_jsonable, separators=(",", ":")))


def _jsonable(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _skeleton() -> str:
    parts = [_INTRO]
    for key, title in _SECTIONS:
        parts.append(f"## {title}\n\n<!-- {key}:start -->\n_Not run yet._\n<!-- {key}:end -->\n")
    return "\n".join(parts)


def write_section(key: str, body: str, title: str, path: Path = DOC, machine_info: dict[str, Any] | None = None,
                  after: str | None = None) -> Path:
    """Replace the text between ``<!-- key:start -->`` and ``<!-- key:end -->`` in ``path`` with ``body``.

    The file is created with its header and the known section headings if missing; a section whose markers are
    absent is appended at the end under ``## title``, or, with ``after``, placed right after that block's end
    marker (a second block under the same heading). With ``machine_info`` the Machine section is refreshed too.
    """
    text = path.read_text(encoding="utf-8") if path.is_file() else _skeleton()
    text = _replace(text, key, body, title, after)
    if machine_info is not None:
        text = _replace(text, "machine", _machine_section(machine_info), "Machine")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _replace(text: str, key: str, body: str, title: str, after: str | None = None) -> str:
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    i, j = text.find(start), text.find(end)
    if i >= 0 and j > i:
        return text[:i] + block + text[j + len(end):]
    anchor = text.find(f"<!-- {after}:end -->") if after else -1
    if anchor >= 0:
        cut = anchor + len(f"<!-- {after}:end -->")
        return text[:cut] + "\n\n" + block + text[cut:]
    return text.rstrip("\n") + f"\n\n## {title}\n\n{block}\n"


def _machine_section(info: dict[str, Any]) -> str:
    return (
        "The sections below were measured on this machine unless their own machine line says otherwise "
        "(refreshed by the last script run with `--write`):\n\n"
        f"{machine_line({k: v for k, v in info.items() if k != 'load_avg'})}\n\n"
        "It is a small virtual machine shared with other work, whose load moves absolute figures from run to run; "
        "no script measures by how much across runs (section 2's threads block measures one busy neighbour's "
        "effect within a run). Each section therefore gives the 1-minute load average as it started (most also as "
        "it ended) and the range of its repeated timings, and compares variants by ratios measured within one run."
    )


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run for a smoke check")
    parser.add_argument("--write", action="store_true", help="update this benchmark's section of docs/benchmarks.md")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per measurement (median reported)")
    return parser


def log(message: str) -> None:
    """Progress to stderr, so stdout keeps only the table and the JSON line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
