"""The map of a collection: its photos laid out in 2-D by their places in the word space, stored in the bundle.

One job: fit the 2-D layout of a sample of the collection's word-space rows (``semantic.npy``: the head's embedding,
ConSE's without a head, CLIP's image embedding in a CLIP bundle), name its regions with the nearest tag phrases,
place any other row into it without fitting again, and save and load it (``layout.npz``, written atomically).

* :func:`sample`: at most :data:`MAX_POINTS` photos, seeded and stratified by label (each label keeps its share).
* :func:`fit`: t-SNE (scikit-learn's Barnes-Hut ``TSNE``, PCA start, fixed seed: the same rows give the same map),
  scaled into [-1, 1]. scikit-learn was chosen over openTSNE and umap-learn by ``bench/bench_layout.py --choose``
  (docs/benchmarks.md, section 13): the smallest install of the three (umap-learn adds numba and llvmlite; openTSNE
  needs scikit-learn anyway), neighbourhoods as well kept as openTSNE's (umap-learn's less), and a fit of 5,000 rows
  that costs about what the build's semantic index of 400,000 rows does (openTSNE fits faster; the build is where
  that time goes, never a query); the placement below needs no library, so a library's ``transform`` brings nothing.
* :func:`place`: a row not in the sample (a collection photo left out, a visitor's photo) lands at the mean of its
  :data:`NEIGHBOURS` nearest sampled photos' positions (cosine in the word space), weighted by closeness: the map
  is never recomputed, and a sampled photo placed again lands on itself.
* :func:`regions`: k-means on the 2-D points; each cluster is named by the tag phrases nearest its members' mean
  word-space row, a phrase used by a larger cluster skipped.

:func:`searchcore.build.write.rebuild_semantic` computes it whenever ``semantic.npy`` is written (a build, a training,
an ``--update``); :func:`searchcore.bundle.open_bundle` loads it (a few thousand rows: no per-photo work).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from . import storage

MAX_POINTS = 5_000  # the most photos drawn: more would not be read on a page, and t-SNE grows faster than linearly
NEIGHBOURS = 8  # sampled photos a placed row's position is averaged from
MAX_CLUSTERS = 16  # regions named on the map
WORDS = 3  # tag phrases kept per region (the page shows the first ones)
PERPLEXITY = 30.0  # t-SNE's default: the neighbourhood size it keeps; lowered for a handful of photos
SEED = 0
FORMAT = 1


class Nearest(Protocol):
    """What :func:`regions` reads the tag phrases with: the bundle's tags index (hnswlib or exact)."""

    def query(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def __len__(self) -> int: ...


class Layout(NamedTuple):
    """A collection's map: which photos, where, and the words of its regions."""

    ids: np.ndarray  # (n,) int64: the collection ids of the photos laid out, ascending
    xy: np.ndarray  # (n, 2) float32 in [-1, 1]
    cluster: np.ndarray  # (n,) int32: each photo's region
    centres: np.ndarray  # (c, 2) float32: where each region's words are written (its members' median)
    words: tuple[tuple[str, ...], ...]  # per region, its nearest tag phrases, nearest first
    method: str  # how it was fitted, for the manifest and the page

    def record(self) -> dict[str, object]:
        """What the manifest says of it."""
        return {"points": len(self.ids), "regions": len(self.words), "method": self.method}


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def sample(labels: Sequence[str], limit: int = MAX_POINTS, seed: int = SEED) -> np.ndarray:
    """The ids (ascending) of at most ``limit`` photos, each label keeping its share (at least one photo while
    there are fewer labels than ``limit``); every photo when there are no more than ``limit``."""
    count = len(labels)
    if count <= limit:
        return np.arange(count, dtype=np.int64)
    names, codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    sizes = np.bincount(codes, minlength=len(names))
    share = sizes * (limit / count)
    quota = np.floor(share).astype(np.int64)
    if len(names) <= limit:
        quota = np.maximum(quota, 1)
    # the places left go to the labels whose share was rounded down the most (ties: the larger label)
    left = limit - int(quota.sum())
    if left > 0:
        order = np.lexsort((-sizes, -(share - np.floor(share))))
        quota[order[:left]] += 1
    elif left < 0:  # the minimum of one photo took more than the remainders gave: trim the largest labels
        for label in np.argsort(-quota, kind="stable")[:-left]:
            quota[label] -= 1
    rng = np.random.default_rng(seed)
    perm = rng.permutation(count)
    by_label = perm[np.argsort(codes[perm], kind="stable")]  # each label's photos, in a random order
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.arange(count) - np.repeat(starts, sizes)
    keep = rank < quota[codes[by_label]]
    return np.sort(by_label[keep]).astype(np.int64)


def fit(rows: np.ndarray, seed: int = SEED) -> np.ndarray:
    """2-D positions of unit ``rows`` (n, d): t-SNE's, centred and scaled into [-1, 1]. Deterministic."""
    rows = _unit(rows)
    n = len(rows)
    if n < 5:  # too few for t-SNE's neighbourhoods: the two main directions of the rows
        xy = np.zeros((n, 2), np.float32)
        if n > 1:
            centred = rows - rows.mean(axis=0)
            u, s, _ = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
            take = min(2, u.shape[1])
            xy[:, :take] = u[:, :take] * s[:take]
    else:
        from sklearn.manifold import TSNE

        # unit rows: Euclidean distances order pairs as cosine does, and scikit-learn's neighbour trees serve them
        perplexity = min(PERPLEXITY, (n - 1) / 3.0)
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=1)
        xy = tsne.fit_transform(rows.astype(np.float64)).astype(np.float32)
    xy = xy - (xy.max(axis=0) + xy.min(axis=0)) / 2 if n else xy
    scale = float(np.abs(xy).max()) if n else 0.0
    return (xy / scale if scale > 0 else xy).astype(np.float32)


def kmeans(points: np.ndarray, k: int, seed: int = SEED, rounds: int = 50) -> np.ndarray:
    """Cluster labels of ``points`` (n, 2) into ``k`` clusters: k-means++ starts, then Lloyd's rounds. A few
    thousand 2-D points: numpy does it in milliseconds, and the labels depend only on the points and the seed."""
    points = np.asarray(points, np.float64)
    n = len(points)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    centres = [points[rng.integers(n)]]
    nearest = ((points - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        pick = rng.choice(n, p=nearest / total) if total > 0 else rng.integers(n)
        centres.append(points[pick])
        nearest = np.minimum(nearest, ((points - points[pick]) ** 2).sum(axis=1))
    centre = np.array(centres)
    labels = np.zeros(n, np.int64)
    for _ in range(rounds):
        labels = ((points[:, None, :] - centre[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        moved = np.array([points[labels == c].mean(axis=0) if (labels == c).any() else centre[c] for c in range(k)])
        if np.allclose(moved, centre):
            break
        centre = moved
    # number the clusters by size, largest first (ties by their first member): the same points give the same names
    sizes = np.bincount(labels, minlength=k)
    first = np.array([np.flatnonzero(labels == c)[0] if sizes[c] else n for c in range(k)])
    order = np.lexsort((first, -sizes))
    renumber = np.empty(k, np.int64)
    renumber[order] = np.arange(k)
    used = renumber[labels]
    return np.unique(used, return_inverse=True)[1].astype(np.int32)  # empty clusters dropped


def regions(xy: np.ndarray, rows: np.ndarray, tags: Nearest, phrases: Sequence[str], seed: int = SEED,
            per: int = WORDS) -> tuple[np.ndarray, np.ndarray, tuple[tuple[str, ...], ...]]:
    """(cluster of each point, each cluster's centre, each cluster's ``per`` nearest tag phrases).

    A phrase is written once: two regions of birds read "bird" and then what sets the second apart.
    """
    n = len(xy)
    if n == 0:
        return np.zeros(0, np.int32), np.zeros((0, 2), np.float32), ()
    count = int(np.clip(round(np.sqrt(n / 2)), 1, MAX_CLUSTERS))
    cluster = kmeans(xy, count, seed)
    rows = _unit(rows)
    k = len(set(cluster.tolist()))
    centres = np.array([np.median(xy[cluster == c], axis=0) for c in range(k)], np.float32).reshape(k, 2)
    means = _unit(np.array([rows[cluster == c].mean(axis=0) for c in range(k)]))
    depth = min(len(tags), per * (k + 2)) if len(tags) else 0
    found = np.asarray(tags.query(means, depth)[0]) if depth else np.zeros((k, 0), np.int64)
    # in rounds: every region takes its nearest phrase not yet taken, largest region first, then its second …, so a
    # region's first word is its own best unless a larger region's first word is the same
    taken: set[str] = set()
    words: list[list[str]] = [[] for _ in range(k)]
    left = [[phrases[int(i)] for i in row] for row in found.tolist()]
    for _ in range(per):
        for c in range(k):
            while left[c] and left[c][0] in taken:
                left[c].pop(0)
            if left[c]:
                words[c].append(left[c].pop(0))
                taken.add(words[c][-1])
    return cluster, centres, tuple(tuple(w) for w in words)


def compute(rows: np.ndarray, labels: Sequence[str], tags: Nearest, phrases: Sequence[str], *,
            limit: int = MAX_POINTS, seed: int = SEED) -> Layout:
    """The layout of a collection whose word-space rows are ``rows`` (one per photo, in id order)."""
    ids = sample(labels, limit, seed)
    chosen = _unit(np.asarray(rows[ids], np.float32))
    from importlib.metadata import version

    xy = fit(chosen, seed)
    method = (f"t-SNE (scikit-learn {version('scikit-learn')}, perplexity {min(PERPLEXITY, (len(ids) - 1) / 3):g}, "
              f"seed {seed})" if len(ids) >= 5 else "principal directions (fewer than 5 photos)")
    cluster, centres, words = regions(xy, chosen, tags, phrases, seed)
    return Layout(ids, xy, cluster, centres, words, method)


def place(layout: Layout, anchors: np.ndarray, rows: np.ndarray, k: int = NEIGHBOURS,
          block: int = 4096) -> np.ndarray:
    """2-D positions of ``rows`` (m, d) in the stored layout, without fitting again: each the mean of its ``k``
    nearest sampled photos' positions (``anchors``: the sampled photos' rows, in ``layout.ids`` order), weighted by
    1 / cosine distance, so a row equal to a sampled photo's lands on that photo. Exact, ``block`` rows at a time."""
    rows = np.asarray(rows, np.float32)
    if rows.ndim == 1:
        rows = rows[None, :]
    out = np.zeros((len(rows), 2), np.float32)
    if len(layout.ids) == 0 or len(rows) == 0:
        return out
    anchors = _unit(anchors)
    k = max(1, min(k, len(anchors)))
    for start in range(0, len(rows), block):
        sims = _unit(rows[start:start + block]) @ anchors.T
        near = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < len(anchors) else \
            np.broadcast_to(np.arange(len(anchors)), sims.shape)
        dist = np.maximum(1.0 - np.take_along_axis(sims, near, axis=1), 1e-6)
        weight = 1.0 / dist
        weight /= weight.sum(axis=1, keepdims=True)
        out[start:start + block] = np.einsum("mk,mkc->mc", weight, layout.xy[near])
    return out


# ---- layout.npz ------------------------------------------------------------------------------------------------------
def save(path: str | os.PathLike, layout: Layout) -> None:
    """Write ``layout.npz`` atomically (uncompressed: a few thousand rows)."""
    width = max((len(w) for w in layout.words), default=0)
    words = np.array([list(w) + [""] * (width - len(w)) for w in layout.words], dtype=str).reshape(len(layout.words),
                                                                                                    width)
    with storage.atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, format=np.array(FORMAT), ids=layout.ids.astype(np.int64), xy=layout.xy.astype(np.float32),
                 cluster=layout.cluster.astype(np.int32), centres=layout.centres.astype(np.float32), words=words,
                 method=np.array(layout.method))


def load(path: str | os.PathLike, count: int) -> Layout:
    """Read ``layout.npz`` of a collection of ``count`` photos; ValueError (with what is wrong) if it does not fit."""
    with np.load(Path(path), allow_pickle=False) as data:
        if int(data["format"]) != FORMAT:
            raise ValueError(f"layout format {int(data['format'])}, this version reads {FORMAT}")
        ids, xy, cluster = data["ids"].astype(np.int64), data["xy"].astype(np.float32), data["cluster"]
        centres, words, method = data["centres"].astype(np.float32), data["words"], str(data["method"])
    n = len(ids)
    if xy.shape != (n, 2) or cluster.shape != (n,) or centres.ndim != 2 or centres.shape[1:] != (2,):
        raise ValueError(f"its arrays disagree: {n} ids, xy {xy.shape}, clusters {cluster.shape}, "
                         f"centres {centres.shape}")
    if n and (ids.min() < 0 or ids.max() >= count or (np.diff(ids) <= 0).any()):
        raise ValueError(f"its photo ids are not ascending ids of the collection's {count} photos")
    if len(words) != len(centres) or (n and (cluster.min() < 0 or cluster.max() >= len(centres))):
        raise ValueError(f"its {len(centres)} regions disagree with their words ({len(words)}) or the points")
    named = tuple(tuple(str(w) for w in row if str(w)) for row in words)
    return Layout(ids, xy, cluster.astype(np.int32), centres, named, method)

