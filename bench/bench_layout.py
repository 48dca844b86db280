"""Map layout: the collection's map (searchcore.layout) on 400,000 rows, beside the build's other steps on them.

    python -m bench.bench_layout [--rows 400000] [--choose] [--write]

Rows: the offline bundle's semantic rows (its trained head's word-space embeddings, 50-d) tiled to ``--rows`` rows,
each plus Gaussian noise of 5% of a unit row's norm (seed 0), then scaled to unit length; row i has real row
i mod n's label (as bench/bench_scale.py enlarges the bundle). On those rows, each once (minutes each: one run, the
load average beside it):

* the map as a build makes it: ``searchcore.layout.compute`` (a stratified sample of 5,000, t-SNE, the regions named
  from the offline bundle's own tags index);
* the build's semantic index over the same rows: ``searchcore.index.VectorIndex.build`` (hnswlib, as
  ``rebuild_semantic`` builds it; a bundle builds three such photo indexes, and the images one is 1280-d);
* placing every row into the map: ``searchcore.layout.place`` (the build does not: it draws the sample only; a
  visitor's photos are placed this way, a few at a time).

``--choose`` compares the projection libraries on the 5,000 sampled rows, each that imports: scikit-learn's
``TSNE`` (the one used), openTSNE's ``TSNE`` and umap-learn's ``UMAP`` (umap-learn's first fit in a process also
compiles its numba code: timed apart), with each library's installed size (its distribution's files and those of
the dependencies it adds to requirements.txt's, from importlib.metadata) and how well each map keeps neighbours:
the share of each photo's 10 nearest photos on the map that carry its label, against the same share in the 50-d
space. The libraries not in requirements.txt were installed for this run only (``pip install --target DIR``, then
``PYTHONPATH=DIR``).
"""

from __future__ import annotations

import os
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from bench import common

# what each candidate adds to what requirements.txt already installs (scipy, numpy, threadpoolctl and tqdm are there)
CANDIDATES = {
    "scikit-learn": ("scikit-learn", "joblib", "narwhals"),
    "openTSNE": ("openTSNE", "scikit-learn", "joblib", "narwhals"),
    "umap-learn": ("umap-learn", "pynndescent", "numba", "llvmlite", "scikit-learn", "joblib", "narwhals"),
}


def enlarge(rows: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit rows: row i is ``rows[i mod len(rows)]`` plus noise of 5% of a unit row's norm; and the sources."""
    rng = np.random.default_rng(seed)
    source = np.arange(n) % len(rows)
    out = np.empty((n, rows.shape[1]), np.float32)
    for start in range(0, n, 65_536):  # in blocks: a 400,000-row float64 noise matrix is not needed at once
        part = source[start:start + 65_536]
        noise = rng.standard_normal((len(part), rows.shape[1])).astype(np.float32) * (0.05 / np.sqrt(rows.shape[1]))
        block = rows[part] + noise
        out[start:start + len(part)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out, source


def installed_mib(names: tuple[str, ...]) -> float | None:
    total = 0
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return None
        for file in dist.files or ():
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                total += path.stat().st_size
    return total / 2**20


def agreement(xy: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """The share of each point's ``k`` nearest points (Euclidean) that carry its label."""
    sq = (xy * xy).sum(axis=1)
    d = sq[:, None] + sq[None, :] - 2 * xy @ xy.T
    np.fill_diagonal(d, np.inf)
    near = np.argpartition(d, k, axis=1)[:, :k]
    return float((labels[near] == labels[:, None]).mean())


def choose(rows: np.ndarray, labels: np.ndarray) -> list[dict[str, Any]]:
    out = []
    base = {"library": "(the 50-d rows)", "agreement": agreement(rows.astype(np.float64), labels)}
    fits: dict[str, Any] = {}

    def sk() -> np.ndarray:
        from searchcore.layout import fit

        return fit(rows)

    def otsne() -> np.ndarray:
        from openTSNE import TSNE

        return np.asarray(TSNE(n_components=2, random_state=0, n_jobs=1).fit(rows.astype(np.float64)))

    def umap_fit() -> np.ndarray:
        import umap

        return umap.UMAP(random_state=0).fit_transform(rows)

    fits = {"scikit-learn": sk, "openTSNE": otsne, "umap-learn": umap_fit}
    for name, fn in fits.items():
        row: dict[str, Any] = {"library": name, "mib": installed_mib(CANDIDATES[name])}
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            out.append({**row, "version": None})
            continue
        row["version"] = version
        if name == "umap-learn":  # its first fit compiles numba code: timed apart, on 300 rows
            started = time.perf_counter()
            import umap

            umap.UMAP(random_state=0).fit(rows[:300])
            row["compile_s"] = time.perf_counter() - started
        common.log(f"fitting {name} on {len(rows)} rows")
        started = time.perf_counter()
        xy = fn()
        row["fit_s"] = time.perf_counter() - started
        row["agreement"] = agreement(np.asarray(xy, np.float64), labels)
        out.append(row)
    return [base, *out]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000, help="rows laid out (default 400,000)")
    parser.add_argument("--bundle", default=None, help="the bundle whose semantic rows are enlarged (default: offline)")
    parser.add_argument("--choose", action="store_true", help="also compare scikit-learn, openTSNE and umap-learn")
    args = parser.parse_args(argv)
    from searchcore import layout as L
    from searchcore.build.offline import ensure_offline_bundle
    from searchcore.bundle import open_bundle
    from searchcore.index import VectorIndex

    info = common.machine()
    n = 20_000 if args.quick else args.rows
    bundle = open_bundle(args.bundle or ensure_offline_bundle())
    real = np.asarray(bundle.rows["semantic"], np.float32)
    rows, source = enlarge(real, n)
    labels = np.array([bundle.items[i].label for i in range(len(real))])[source]
    steps: dict[str, float] = {}

    common.log(f"the map of {n:,} rows")
    started = time.perf_counter()
    layout = L.compute(rows, labels.tolist(), bundle.indexes["tags"], bundle.tags.phrases)
    steps["map"] = time.perf_counter() - started
    common.log(f"the semantic index of {n:,} rows")
    started = time.perf_counter()
    VectorIndex.build(rows, what="bench")
    steps["index"] = time.perf_counter() - started
    common.log(f"placing {n:,} rows into the map")
    started = time.perf_counter()
    placed = L.place(layout, rows[layout.ids], rows)
    steps["place"] = time.perf_counter() - started
    # placed rows land where their source's sampled copies are: the share whose nearest sampled photo (on the map)
    # carries their label, a check that the placement is the map's, not a timing of nothing
    sample_xy = layout.xy
    check = np.random.default_rng(1).choice(n, 2_000, replace=False)
    d = ((placed[check][:, None, :] - sample_xy[None, :, :]) ** 2).sum(-1)
    placed_agree = float((labels[layout.ids][d.argmin(axis=1)] == labels[check]).mean())
    chosen = choose(rows[layout.ids], labels[layout.ids]) if args.choose else []
    info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {"machine": info, "command": common.command("bench.bench_layout", argv), "rows": n,
              "labels": len(set(labels.tolist())), "real": len(real), "sample": len(layout.ids),
              "regions": len(layout.words), "method": layout.method, "steps": steps,
              "placed_agreement": placed_agree, "choose": chosen}
    text = render(result)
    print(text)
    common.emit_json("bench_layout", result)
    if args.write:
        common.write_section("bench_layout", text, "13. Map layout")
        common.log(f"wrote {common.DOC}")
    return result


def render(res: dict[str, Any]) -> str:
    m, s = res["machine"], res["steps"]
    lines = [f"Command: `{res['command']}`", "",
             f"Machine: {common.machine_line(m)} Load average at the end: {m['load_avg_end'][0]}.", "",
             f"Rows: the offline bundle's {res['real']} semantic rows (50-d, its trained head's) tiled to "
             f"{res['rows']:,} with 5% Gaussian noise (seed 0), {res['labels']} labels, as the script's docstring "
             f"says. Map: {res['sample']:,} sampled photos, {res['regions']} named regions, {res['method']}. Each "
             "step once (one run, on this machine's two shared cores).", "",
             common.table(["step", "seconds", "÷ the semantic index"], [
                 ["the map (`layout.compute`: sample, t-SNE, regions)", f"{s['map']:.1f}",
                  f"{s['map'] / s['index']:.2f}×"],
                 [f"the semantic index (`VectorIndex.build`, {res['rows']:,} × 50)", f"{s['index']:.1f}", "1.00×"],
                 [f"placing all {res['rows']:,} rows (`layout.place`; the build does not)", f"{s['place']:.1f}",
                  f"{s['place'] / s['index']:.2f}×"],
             ]), "",
             f"Placed rows whose nearest sampled photo on the map carries their label: "
             f"{res['placed_agreement']:.1%} (2,000 rows)."]
    if res["choose"]:
        rows = []
        for r in res["choose"]:
            if r["library"].startswith("("):
                rows.append([r["library"], "—", "—", "—", f"{r['agreement']:.3f}"])
            elif r.get("version") is None:
                rows.append([r["library"], "not installed", "—", "—", "—"])
            else:
                fit = f"{r['fit_s']:.1f}" + (f" (+{r['compile_s']:.1f} compiling)" if "compile_s" in r else "")
                rows.append([f"{r['library']} {r['version']}", f"{r['mib']:.0f} MiB" if r["mib"] else "—", fit,
                             "no: `layout.place`", f"{r['agreement']:.3f}"])
        lines += ["", f"**Choosing the library** (`--choose`): a 2-D map of the {res['sample']:,} sampled rows; size "
                  "installed with the dependencies it adds; neighbours: the share of each photo's 10 nearest on the "
                  "map (in the 50-d space for the first row) that carry its label. The libraries not in "
                  "requirements.txt were installed for this run only (`pip install --target DIR`, `PYTHONPATH=DIR`).",
                  "",
                  common.table(["library", "installed", "fit (s)", "its transform used", "neighbours"], rows)]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
