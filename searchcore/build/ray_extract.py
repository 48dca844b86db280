"""Feature extraction as a Ray Data pipeline, for collections too big for one machine's backbone.

    photo list ─▶ decode + preprocess (CPU tasks) ─▶ backbone (actor pool, one model per actor) ─▶ driver

The driver writes the very chunks that :func:`searchcore.build.extract.extract_collection` writes (same plan, same
slices, same file format, through the same functions), each as soon as all its rows are back, so a stopped run
resumes, under Ray or without it, at the chunks still missing; and a bundle built either way is the same.
Unreadable photos are kept as rows with ``ok`` False and the same message, so they are skipped and listed as today.

Without an address a local Ray is started with every CPU of this machine, on loopback only (no dashboard, no usage
report, no cloud probe: :data:`LOCAL_ENV`); with one (``ray start --head`` on one machine, ``ray start --address
HEAD:6379`` on the others) the driver joins that cluster. Every node must be able to read the photos at the same
paths (a shared filesystem) and have this project's requirements installed; the ``searchcore`` package itself is
shipped to the workers by Ray. ``ray`` is imported only inside these functions.

:func:`ray_session` holds one connection across a whole build (extraction, then the index shards, which
:func:`ray_map` builds as Ray tasks); a session or extraction inside another joins it rather than starting a Ray.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..collection import Collection
from ..errors import AssetSourceError, ImageError
from ..models.backbone import Backbone
from .extract import (
    CHUNK_SIZE,
    Extraction,
    Progress,
    assemble,
    chunk_path,
    chunk_starts,
    prepare,
    write_chunk,
)

if TYPE_CHECKING:
    import ray.data


@dataclass(frozen=True)
class RayConfig:
    """Where and how wide to run. ``address`` None starts a local Ray; ``workers`` None picks one actor per GPU,
    or, without GPUs, one per CPU but one (the driver, which gathers and saves the chunks, keeps a CPU)."""

    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None  # None: 1 when the cluster has GPUs, else 0

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address or "local", "workers": self.workers, "cpus_per_worker": self.cpus_per_worker,
                "gpus_per_worker": self.gpus_per_worker}


#: A dead end on loopback for plain-HTTP requests (the discard port; nothing answers there, or nothing useful).
DEAD_PROXY = "http://127.0.0.1:9"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: The environment of the processes a local Ray starts (each only where the user has not set it), so that it makes
#: no connection outside loopback:
#: - RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: Ray's single-machine mode, its default on macOS and Windows: the node's
#:   address is 127.0.0.1 and every Ray process binds loopback. On Linux Ray otherwise takes the machine's outward
#:   address (routing a socket towards 8.8.8.8 to find it) and binds all interfaces; it even replaces an explicit
#:   ``_node_ip_address="127.0.0.1"`` by that address. Ray reads this when it is imported (see :func:`connect`).
#: - RAY_USAGE_STATS_ENABLED=0: no usage report to usage-stats.ray.io (on by default for ray.init).
#: - http_proxy: Ray's dashboard process, which starts even without the dashboard (include_dashboard=False runs its
#:   usage module), asks the cloud metadata services which cloud it runs on (169.254.169.254 twice, and a DNS
#:   look-up of metadata.google.internal) whatever the usage setting, and no setting turns that off (Ray 2.60). Those
#:   are plain-HTTP requests through ``requests``, which sends them to the proxy named here, a dead end on loopback, so
#:   they fail at once and resolve no name; no_proxy keeps Ray's own traffic (gRPC and HTTP on 127.0.0.1) direct. A
#:   user's own proxy settings are left alone. Nothing in a build speaks plain HTTP (the Hub is HTTPS).
LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "http_proxy": DEAD_PROXY,
             "HTTP_PROXY": DEAD_PROXY}
# the variables that route plain HTTP (an https_proxy alone leaves it direct, so the dead end is still set)
_PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


def local_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to set (name → value) before a local Ray is imported and started, given the current ones."""
    changes = {name: value for name, value in LOCAL_ENV.items() if name not in environ}
    if any(name in environ for name in _PROXY_VARIABLES):  # the user routes HTTP themselves: not ours to redirect
        changes = {name: value for name, value in changes.items() if name not in _PROXY_VARIABLES}
    if "http_proxy" in changes:  # Ray's own traffic to 127.0.0.1 (gRPC reads these too) must not meet the dead end
        for name in ("no_proxy", "NO_PROXY"):
            kept = [host for host in environ.get(name, "").split(",") if host.strip()]
            changes[name] = ",".join([*kept, *(host for host in LOOPBACK if host not in kept)])
    return changes


def init_options(address: str | None, num_cpus: int | None = None) -> dict[str, Any]:
    """ray.init's keyword arguments: join ``address``, or start a local Ray with ``num_cpus`` (default every CPU)
    and no dashboard (its web server; Ray binds anything else it serves to the node's address, loopback here)."""
    # the workers import searchcore: ship it, so a cluster needs only the requirements installed, not this checkout
    options: dict[str, Any] = {"runtime_env": {"py_modules": [str(Path(__file__).resolve().parents[1])]},
                               "logging_level": logging.WARNING, "include_dashboard": False}
    if address:
        return {**options, "address": address}
    return {**options, "num_cpus": num_cpus or os.cpu_count() or 1, "dashboard_host": LOOPBACK[0]}


@contextmanager
def _environment(changes: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``changes`` for the ``with`` block: the processes started in it inherit them, and this
    process gets its own environment back (a later Ray that joins a cluster must not inherit the dead-end proxy)."""
    saved = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address`` or start a local Ray (``num_cpus``, default every CPU of this machine);
    returns whether this call started it.

    A local Ray makes no connection outside loopback (:data:`LOCAL_ENV`); a cluster is joined as its address says.
    An already initialised Ray (a test's, a notebook's) is used as it is. Ray reads its single-machine switch when it
    is imported, so a program that imported ray before gets Ray's default node address, and a warning.
    """
    changes = {} if address else local_env(os.environ)
    with _environment(changes):
        try:
            import ray
        except ImportError as exc:
            raise AssetSourceError("Extraction on Ray needs Ray Data: pip install -r requirements-dev.txt "
                                   "(or pip install 'ray[data]').") from exc
        if ray.is_initialized():
            return False
        ray.init(**init_options(address, num_cpus))
    if not address and ray.util.get_node_ip_address() not in LOOPBACK:
        logging.getLogger(__name__).warning(
            "the local Ray serves on %s, not on loopback: ray was imported before searchcore started it; set "
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing ray to keep it on 127.0.0.1.",
            ray.util.get_node_ip_address())
    return True


@contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[bool]:
    """Ray connected for the ``with`` block (see :func:`connect`); yields whether it started Ray, and if it did,
    shuts it down on the way out. A Ray already initialised (an outer session's, a test's) is used and left up."""
    started = connect(address, num_cpus)
    if started:  # our own Ray: the caller's progress callback reports, Ray Data's per-dataset lines are noise
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        yield started
    finally:
        if started:
            import ray

            ray.shutdown()


def _apply(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def ray_map(fn: Callable[[Any], Any], items: Iterable[Any], *, num_cpus: float = 1.0) -> list[Any]:
    """``list(map(fn, items))`` with each call a Ray task on the connected cluster (results in the order given).

    ``fn`` (e.g. a ``functools.partial`` of a module-level function) and each item and result must pickle; this
    is the ``map_fn`` that :func:`searchcore.build.pipeline.build_bundle` gives the shard builder on Ray.
    """
    import ray

    task = ray.remote(num_cpus=num_cpus)(_apply)
    shipped = ray.put(fn)  # once, not once per task
    return ray.get([task.remote(shipped, item) for item in items])


def _decode(batch: dict[str, np.ndarray], data_config: dict[str, Any]) -> dict[str, np.ndarray]:
    """Ray Data task: paths → preprocessed pixels, with ``ok``/``error`` per row instead of raising.

    The transform is rebuilt from the backbone's data config (a plain dict, cheap to ship), once per batch.
    """
    import timm.data

    from ..images import load_image

    transform = timm.data.create_transform(**data_config, is_training=False)
    count = len(batch["path"])
    pixels = np.zeros((count, *tuple(data_config["input_size"])), np.float32)
    ok = np.zeros(count, bool)
    errors = [""] * count
    for i, path in enumerate(batch["path"]):
        try:
            pixels[i] = transform(load_image(str(path))).numpy()
            ok[i] = True
        except ImageError as exc:
            errors[i] = str(exc)  # the same message the single-process build records
    return {"index": batch["index"], "pixels": pixels, "ok": ok, "error": np.asarray(errors, dtype=object)}


class _Embed:
    """Ray Data actor: loads the backbone once, then turns batches of pixels into features and logits."""

    def __init__(self, spec: str, use_gpu: bool) -> None:
        from ..models.backbones import load_backbone

        self.backbone = load_backbone(spec)
        if use_gpu:
            self.backbone.model.to("cuda")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        ok = batch["ok"].astype(bool)
        n = len(ok)
        features = np.zeros((n, self.backbone.feature_dim), np.float32)
        logits = np.zeros((n, self.backbone.num_classes), np.float32)
        if ok.any():
            out = self.backbone.forward(torch.from_numpy(np.ascontiguousarray(batch["pixels"][ok])))
            features[ok], logits[ok] = out.features, out.logits
        return {"index": batch["index"], "features": features, "logits": logits, "ok": ok, "error": batch["error"]}


def _plan_workers(config: RayConfig) -> tuple[int, float]:
    """(actors, GPUs per actor) for this cluster."""
    import ray

    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0))
    per_gpu = config.gpus_per_worker if config.gpus_per_worker is not None else (1.0 if gpus else 0.0)
    if config.workers:
        return config.workers, per_gpu
    if per_gpu:
        return max(1, int(gpus // per_gpu)), per_gpu
    return max(1, int(resources.get("CPU", 1)) - 1), per_gpu


def _dataset(backbone: Backbone, collection: Collection, todo: list[int], workers: int, config: RayConfig,
             gpus: float) -> ray.data.Dataset:
    import ray.data

    rows = [{"index": i, "path": str(collection.path(collection.items[i]))} for i in todo]
    # Without GPUs Ray fuses decoding into the actors (same resources): each actor decodes its own batches, which
    # saves shipping pixels; with GPUs decoding stays in CPU tasks that feed the GPU actors.
    # about one backbone batch per block, and at least a block per actor: fewer blocks would leave actors idle
    # (a block goes to one actor), while consecutive rows in a block make chunks finish, and be saved, early
    blocks = max(1, min(len(rows), max(workers, -(-len(rows) // backbone.batch_size))))
    ds = ray.data.from_items(rows, override_num_blocks=blocks)
    ds = ds.map_batches(_decode, fn_kwargs={"data_config": dict(backbone.data_config)},
                        batch_size=backbone.batch_size, batch_format="numpy")
    return ds.map_batches(_Embed, fn_constructor_kwargs={"spec": backbone.spec, "use_gpu": gpus > 0},
                          batch_size=backbone.batch_size, batch_format="numpy",
                          compute=ray.data.ActorPoolStrategy(size=workers),
                          num_cpus=config.cpus_per_worker, num_gpus=gpus)


def extract_collection_ray(
    backbone: Backbone,
    collection: Collection,
    work_dir: str | Path,
    config: RayConfig | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
    progress: Progress | None = None,
    stop_after_chunks: int | None = None,
) -> Extraction:
    """What :func:`searchcore.build.extract.extract_collection` returns, computed on a Ray cluster.

    ``backbone`` is the driver's copy: its spec, preprocessing and sizes; each actor loads its own from the spec
    (so ``random`` weights are seeded and a weights path must exist on every node). ``stop_after_chunks`` raises
    :class:`InterruptedError` once that many new chunks are saved, for tests and benchmarks.
    """
    config = config or RayConfig()
    folder = prepare(backbone, collection, work_dir, chunk_size)
    n = len(collection)
    starts = chunk_starts(collection, chunk_size)
    missing = [s for s in starts if not chunk_path(folder, s).is_file()]
    done = n - sum(len(collection.items[s : s + chunk_size]) for s in missing)
    if progress is not None:
        progress(done, n)
    if missing:
        if stop_after_chunks is not None and stop_after_chunks <= 0:
            raise InterruptedError("stopped after 0 chunks, as asked")
        with ray_session(config.address):  # joins the caller's session (build_bundle's) when there is one
            from ray.data import DataContext

            DataContext.get_current().enable_progress_bars = False  # the caller's progress callback reports
            workers, gpus = _plan_workers(config)
            todo = [i for s in missing for i in range(s, min(s + chunk_size, n))]
            ds = _dataset(backbone, collection, todo, workers, config, gpus)
            _collect(ds, folder, missing, chunk_size, n, backbone, done, progress, stop_after_chunks)
    return assemble(collection, folder, starts)


def _collect(ds: ray.data.Dataset, folder: Path, missing: list[int], chunk_size: int, n: int, backbone: Backbone,
             done: int, progress: Progress | None, stop_after_chunks: int | None) -> None:
    """Gather rows into their chunks and save each chunk the moment its last row arrives."""
    pending: dict[int, dict[str, Any]] = {}
    for start in missing:
        size = min(chunk_size, n - start)
        pending[start] = {"features": np.zeros((size, backbone.feature_dim), np.float32),
                          "logits": np.zeros((size, backbone.num_classes), np.float32),
                          "ok": np.zeros(size, bool), "errors": [""] * size, "left": size}
    saved = 0
    # a generator, closed on the way out: an interrupted run stops its executor and frees its actors at once,
    # not when the exception's traceback (which holds this frame) is finally dropped
    batches = iter(ds.iter_batches(batch_size=None, batch_format="numpy"))
    try:
        for batch in batches:
            for row, index in enumerate(batch["index"].tolist()):
                start = index - index % chunk_size
                chunk, at = pending[start], index - start
                chunk["features"][at], chunk["logits"][at] = batch["features"][row], batch["logits"][row]
                chunk["ok"][at], chunk["errors"][at] = bool(batch["ok"][row]), str(batch["error"][row])
                chunk["left"] -= 1
                if chunk["left"] == 0:
                    write_chunk(chunk_path(folder, start), chunk["features"], chunk["logits"], chunk["ok"],
                                chunk["errors"])
                    del pending[start]
                    saved += 1
                    if stop_after_chunks is not None and saved >= stop_after_chunks and pending:
                        raise InterruptedError(f"stopped after {saved} chunks, as asked")
            done += len(batch["index"])
            if progress is not None:
                progress(done, n)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
