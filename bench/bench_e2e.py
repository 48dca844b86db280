"""End to end: ``python app.py`` started for real, its start-up time, its API latency with 1 and 10 clients, its memory.

    python -m bench.bench_e2e            # cold start, 3 warm starts, 20 requests per client per endpoint
    python -m bench.bench_e2e --no-cold  # skip the cold start (it builds the offline bundle: minutes)
    python -m bench.bench_e2e --quick    # no cold start, 1 warm start, 5 requests per client
    python -m bench.bench_e2e --write    # also update section 5 of docs/benchmarks.md
    python -m bench.bench_e2e --baseline 9263e1f   # warm starts side by side with app.py as it was at a commit

The app runs in a subprocess on 127.0.0.1 at a free port (``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``), with
``SEARCH_CACHE_DIR`` pointing at the benchmarks' own folder (``<cache>/e2e``), ``HF_HUB_OFFLINE=1`` and no
``SEARCH_BUNDLE``, so it serves the offline Tux Paint bundle. All traffic is loopback.

* Cold start: the cache folder is emptied first, so the app converts the word vectors and builds the offline
  bundle itself (features, indexes, trained head) before it can answer.
* Warm start: the bundle is already cached (checked with ``searchcore.build.offline.ensure_offline_bundle`` under the
  same ``SEARCH_CACHE_DIR``); timed ``--warm-starts`` times.

Each start is timed from ``Popen`` to (a) the page answering (``GET /config`` returns 200) and (b) the first
search answered through ``gradio_client`` (``/search_images`` "bird"), which waits for the search engine.

``--baseline REV`` times the app as it was at commit ``REV`` beside today's: ``git archive REV`` unpacked into a
temporary folder (its own app.py and searchcore), with its own ``SEARCH_CACHE_DIR`` (``<cache>/e2e-baseline``,
its offline bundle built there first, by its own code), warm starts interleaved with today's so both meet the same
machine.

Latency is measured on one more start of the app, through :data:`LAUNCHER`: app.py run as ``python app.py`` runs
it, with a do-nothing twin of every search endpoint added to its Blocks just before its own ``launch()`` (same
components, preprocess/postprocess, queue and concurrency settings and signature; a handler that returns an empty
result at once; ``api_visibility="undocumented"``). A twin's latency is the framework's floor for that request on
the same queue, in the same process, under the same load; app.py has no such endpoint. Each endpoint is called
with ``gradio_client`` (``download_files=False``: the answer's file URLs are not fetched; image inputs are uploaded
with every request, as a client does), client-side wall time per request. With 1 client all endpoints (searches
and floors) take turns, request by request; with 10 clients (threads, one ``Client`` each) all ten hammer one
endpoint at a time, ``--requests`` requests each, each search followed by its floor. Image queries are
scikit-image's photos (not in the collection), word queries a rotation of everyday words.

Memory: the resident set size of the app's process plus its children (psutil), sampled every ``SAMPLE_S``
seconds; the peak per phase.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from . import common
from .bench_training import code_version, use_cache

APP = common.ROOT / "app.py"
PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "motorcycle_left.png", "rocket.jpg")
WORDS = ("bird", "fruit", "dog", "ocean", "street", "cat sofa", "king - man + woman")
CLASS = "284: Siamese cat, Siamese"
ENDPOINTS = ("/similar_images", "/similar_images_by_class", "/similar_words", "/tag_image", "/search_images")
FLOOR_PREFIX = "bench_floor_"
SAMPLE_S = 0.1  # the memory sampler's interval

# Runs app.py as ``python app.py`` does (runpy, ``__name__ == "__main__"``), but first wraps ``gr.Blocks.launch``
# so that, just before the app's own launch() call, every search endpoint gets a do-nothing twin on the same
# Blocks and queue: the same input and output components, the same preprocess/postprocess/queue/concurrency
# settings and the same signature (so Gradio tracks progress for it as for the search), a handler that returns an
# empty result at once, no UI trigger, and ``api_visibility="undocumented"`` (callable, not in the API page). It
# writes what the running app's queue settings are to $BENCH_E2E_SERVING (JSON). app.py itself is not changed.
LAUNCHER = r"""
import inspect, json, os, runpy, sys
import gradio as gr
from gradio.context import get_blocks_context

APP, INFO, PREFIX, NAMES = sys.argv[1], os.environ["BENCH_E2E_SERVING"], sys.argv[2], sys.argv[3].split(",")
ORIGINAL = gr.Blocks.launch


def twin(block_fn):
    def floor(*args, **kwargs):
        return []
    floor.__signature__ = inspect.signature(block_fn.fn)  # Gradio reads gr.Progress parameters from it
    floor.__name__ = PREFIX + block_fn.api_name
    return floor


def launch(self, *args, **kwargs):
    gr.Blocks.launch = ORIGINAL
    searches = {f.api_name: f for f in self.fns.values() if f.api_name in NAMES}
    with self:
        config = get_blocks_context()
        for name, f in searches.items():
            config.set_event_trigger(
                [], twin(f), f.inputs, f.outputs, preprocess=f.preprocess, postprocess=f.postprocess,
                show_progress=f.show_progress, api_name=PREFIX + name, queue=f.queue, batch=f.batch,
                concurrency_limit=f.concurrency_limit, api_visibility="undocumented", time_limit=f.time_limit,
                trigger_mode=None)
    queue = self._queue
    default_limit = queue.default_concurrency_limit
    fns = {}
    for f in self.fns.values():
        if f.api_name in NAMES or (f.api_name or "").startswith(PREFIX):
            limit = default_limit if f.concurrency_limit == "default" else f.concurrency_limit
            fns[f.api_name] = {"concurrency_limit": limit, "concurrency_id": f.concurrency_id, "queue": f.queue,
                               "preprocess": f.preprocess, "postprocess": f.postprocess,
                               "tracks_progress": f.tracks_progress, "api_visibility": f.api_visibility}
    threads = kwargs.get("max_threads", inspect.signature(ORIGINAL).parameters["max_threads"].default)
    with open(INFO, "w", encoding="utf-8") as out:
        json.dump({"default_concurrency_limit": default_limit, "max_size": queue.max_size, "max_threads": threads,
                   "launch_kwargs": sorted(kwargs), "fns": fns, "missing": sorted(set(NAMES) - set(searches))}, out)
    return ORIGINAL(self, *args, **kwargs)


gr.Blocks.launch = launch
sys.argv = [APP]
runpy.run_path(APP, run_name="__main__")
"""


# --------------------------------------------------------------------------------------------- the app process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class App:
    """``python app.py`` in its own process group, with its log in a file."""

    def __init__(self, cache: Path, log_path: Path, floors: bool = False, root: Path = common.ROOT) -> None:
        """``floors``: start it through :data:`LAUNCHER`, which adds the do-nothing twins of the searches; ``root``:
        the checkout whose app.py runs (a baseline's unpacked tree)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        self.serving_path = log_path.with_suffix(".serving.json")
        self.serving_path.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("SEARCH_BUNDLE", "GRADIO_ROOT_PATH", "GRADIO_SHARE")}
        env.update(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(self.port), SEARCH_CACHE_DIR=str(cache),
                   HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1",
                   BENCH_E2E_SERVING=str(self.serving_path))
        names = ",".join(e.lstrip("/") for e in ENDPOINTS)
        app = root / APP.name
        command = ([sys.executable, "-c", LAUNCHER, str(app), FLOOR_PREFIX, names] if floors
                   else [sys.executable, str(app)])
        with open(log_path, "wb") as log:
            self.started = time.perf_counter()
            self.process = subprocess.Popen(command, cwd=root, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def serving(self) -> dict[str, Any]:
        """The running app's queue settings, as the launcher read them (floors only; else {})."""
        import json

        return json.loads(self.serving_path.read_text(encoding="utf-8")) if self.serving_path.is_file() else {}

    def log(self, last: int = 4000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-last:] if self.log_path.is_file() else ""

    def wait_page(self, timeout: float) -> float:
        """Seconds from Popen until ``GET /config`` answers 200."""
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with code {self.process.returncode}:\n{self.log()}")
            with (contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, OSError),
                  urllib.request.urlopen(self.url + "config", timeout=10) as response):
                if response.status == 200:
                    return time.perf_counter() - self.started
            if time.perf_counter() - self.started > timeout:
                raise TimeoutError(f"app.py did not answer within {timeout:.0f} s:\n{self.log()}")
            time.sleep(0.1)

    def first_answer(self, timeout: float) -> float:
        """Seconds from Popen until a first search is answered (waits for the engine to be built or loaded)."""
        client = new_client(self.url)
        job = client.submit("bird", 5, api_name="/search_images")
        result = job.result(timeout=max(1.0, timeout - (time.perf_counter() - self.started)))
        if not result:
            raise RuntimeError(f"the first search returned nothing:\n{self.log()}")
        return time.perf_counter() - self.started

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)


class MemorySampler:
    """Samples the RSS of a process and its children every ``interval`` seconds; peak per named phase."""

    def __init__(self, pid: int, interval: float = SAMPLE_S) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.interval = interval
        self.phase = "start"
        self.peaks: dict[str, int] = {}
        self.last = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def sample(self) -> int:
        import psutil

        total = 0
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            value = self.sample()
            if value:
                self.last = value
                self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), value)
            self._stop.wait(self.interval)

    @contextlib.contextmanager
    def during(self, phase: str) -> Iterator[None]:
        self.phase = phase
        try:
            yield
        finally:
            self.phase = "between"

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join(timeout=5)
        return dict(self.peaks)


# --------------------------------------------------------------------------------------------- requests


def new_client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, analytics_enabled=False)


def photos() -> list[str]:
    import skimage

    root = Path(skimage.__file__).parent / "data"
    found = [str(root / name) for name in PHOTOS if (root / name).is_file()]
    if not found:
        raise SystemExit(f"None of scikit-image's photos {PHOTOS} is in {root}.")
    return found


def floor(endpoint: str) -> str:
    """The do-nothing twin of a search endpoint (see :data:`LAUNCHER`)."""
    return "/" + FLOOR_PREFIX + endpoint.lstrip("/")


def search_of(endpoint: str) -> str:
    return "/" + endpoint.lstrip("/").removeprefix(FLOOR_PREFIX)


def request_args(endpoint: str, i: int, images: list[str]) -> tuple[Any, ...]:
    """The i-th request's arguments for ``endpoint`` or its floor twin (rotating photos and words)."""
    from gradio_client import handle_file

    image = handle_file(images[i % len(images)])
    word = WORDS[i % len(WORDS)]
    return {
        "/similar_images": (image, 12),
        "/similar_images_by_class": (image, CLASS, 12),
        "/similar_words": (word, 10),
        "/tag_image": (image, 10),
        "/search_images": (word, 12),
    }[search_of(endpoint)]


def timed(client: Any, endpoint: str, args: tuple[Any, ...]) -> float | None:
    """Seconds for one request, or None when it failed."""
    start = time.perf_counter()
    try:
        result = client.predict(*args, api_name=endpoint)
    except Exception as exc:  # counted as a failure, not timed
        common.log(f"{endpoint} failed: {type(exc).__name__}: {str(exc)[:200]}")
        return None
    elapsed = time.perf_counter() - start
    return elapsed if result is not None else None


def one_client(url: str, requests: int, images: list[str], endpoints: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """One client; the endpoints take turns, request by request, after 2 untimed rounds."""
    client = new_client(url)
    times: dict[str, list[float]] = {e: [] for e in endpoints}
    failures = dict.fromkeys(endpoints, 0)
    for i in range(2 + requests):
        for endpoint in endpoints:
            t = timed(client, endpoint, request_args(endpoint, i, images))
            if i < 2:
                continue
            if t is None:
                failures[endpoint] += 1
            else:
                times[endpoint].append(t)
    return {e: summarise(times[e], failures[e]) for e in endpoints}


def many_clients(url: str, clients: int, requests: int, images: list[str], endpoints: tuple[str, ...],
                 log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """``clients`` threads, each with its own Client, ``requests`` requests each, one endpoint at a time."""
    pool_clients = [new_client(url) for _ in range(clients)]
    out = {}
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for endpoint in endpoints:

            def work(c: int, endpoint: str = endpoint) -> list[float | None]:
                return [timed(pool_clients[c], endpoint, request_args(endpoint, c + j, images))
                        for j in range(requests)]

            start = time.perf_counter()
            results = list(pool.map(work, range(clients)))
            wall = time.perf_counter() - start
            flat = [t for r in results for t in r]
            ok = [t for t in flat if t is not None]
            out[endpoint] = {**summarise(ok, len(flat) - len(ok)), "wall_s": wall, "rps": len(ok) / wall}
            log(f"{clients} clients, {endpoint}: p50 {out[endpoint]['p50']:.3f} s, {out[endpoint]['rps']:.1f} req/s")
    return out


def summarise(times: list[float], failures: int) -> dict[str, Any]:
    if not times:
        return {"n": 0, "failures": failures, "p50": float("nan"), "p95": float("nan"), "max": float("nan")}
    arr = np.asarray(times)
    return {"n": len(times), "failures": failures, "p50": float(np.percentile(arr, 50)),
            "p95": float(np.percentile(arr, 95)), "max": float(arr.max()), "mean": float(arr.mean())}


# --------------------------------------------------------------------------------------------- the run


def unpack_baseline(rev: str, folder: Path, cache: Path) -> tuple[Path, str]:
    """The tree of commit ``rev`` unpacked into ``folder``, with its offline bundle built in ``cache`` by its own
    code; and the commit's short id."""
    short = subprocess.run(["git", "rev-parse", "--short", rev], cwd=common.ROOT, capture_output=True, text=True,
                           check=True).stdout.strip()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=common.ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    env = {**os.environ, "SEARCH_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    env.pop("SEARCH_BUNDLE", None)
    # the module's place at the commit: searchcore/offline.py before the sub-packages, build/offline.py since
    build = ("try:\n    from searchcore.build.offline import ensure_offline_bundle as e\n"
             "except ImportError:\n    from searchcore.offline import ensure_offline_bundle as e\ne()")
    subprocess.run([sys.executable, "-c", build], cwd=folder, env=env, check=True)
    return folder, short



def start_and_time(cache: Path, log_path: Path, timeout: float, keep: bool = False, floors: bool = False,
                   root: Path = common.ROOT) -> tuple[dict[str, Any], App | None, MemorySampler | None]:
    app = App(cache, log_path, floors=floors, root=root)
    sampler = MemorySampler(app.process.pid)
    try:
        with sampler.during("start"):
            page = app.wait_page(timeout)
            answer = app.first_answer(timeout)
        idle = sampler.sample()
    except BaseException:
        sampler.stop()
        app.stop()
        raise
    out = {"page_s": page, "first_answer_s": answer, "start_peak_rss": sampler.peaks.get("start", 0),
           "idle_rss": idle}
    if keep:
        return out, app, sampler
    sampler.stop()
    app.stop()
    return out, None, None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--cache", default=None, help="the benchmarks' cache folder (the app gets <cache>/e2e)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold start")
    parser.add_argument("--cold-timeout", type=float, default=900.0, help="seconds the cold start may take")
    parser.add_argument("--warm-starts", type=int, default=None, help="warm starts timed (default 3, --quick 1)")
    parser.add_argument("--requests", type=int, default=None, help="requests per client per endpoint (default 20)")
    parser.add_argument("--clients", type=int, default=10, help="concurrent clients")
    parser.add_argument("--baseline", default=None, metavar="REV",
                        help="also time warm starts of app.py as it was at this commit, interleaved with today's")
    parser.add_argument("--starts-only", action="store_true", help="time the starts only (no latency runs)")
    args = parser.parse_args(argv)
    if not APP.is_file():
        raise SystemExit(f"{APP} does not exist yet: nothing to benchmark.")
    requests = args.requests or (5 if args.quick else 20)
    warm_starts = args.warm_starts or (1 if args.quick else 3)
    cold = not (args.no_cold or args.quick)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ["HF_HUB_OFFLINE"] = "1"
    bench_cache = use_cache(args.cache)
    cache = bench_cache / "e2e"
    logs = bench_cache / "e2e-logs"
    logs.mkdir(parents=True, exist_ok=True)
    use_cache(cache)  # SEARCH_CACHE_DIR of this process too, for ensure_offline_bundle below
    info = common.machine()
    images = photos()
    result: dict[str, Any] = {"command": common.command("bench.bench_e2e", argv), "requests": requests,
                              "clients": args.clients, "warm_starts": warm_starts, "cache": str(cache),
                              "code": code_version()}

    if cold:
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        common.log(f"cold start: empty cache {cache}; the app builds the offline bundle "
                   f"(timeout {args.cold_timeout:.0f} s)")
        try:
            result["cold"], _, _ = start_and_time(cache, logs / "cold.log", args.cold_timeout)
            common.log(f"cold start: page {result['cold']['page_s']:.1f} s, first answer "
                       f"{result['cold']['first_answer_s']:.1f} s")
        except TimeoutError:
            result["cold"] = {"timeout_s": args.cold_timeout}
            common.log(f"cold start did not answer within {args.cold_timeout:.0f} s")

    from searchcore.build.offline import ensure_offline_bundle

    started = time.perf_counter()
    root = ensure_offline_bundle()
    result["ensure_seconds"] = time.perf_counter() - started
    result["bundle"] = str(root)
    common.log(f"offline bundle ready at {root} ({result['ensure_seconds']:.1f} s)")

    baseline_root = None
    if args.baseline:
        common.log(f"baseline {args.baseline}: unpacking it and building its offline bundle (its own code, its cache)")
        baseline_root, result["baseline"] = unpack_baseline(args.baseline, bench_cache / "e2e-baseline-tree",
                                                            bench_cache / "e2e-baseline")
        result["baseline_warm"] = []
    warm, app, sampler = [], None, None
    # the endpoints in the order they are timed: each search next to its do-nothing twin, so both see the same load
    endpoints = tuple(e for search in ENDPOINTS for e in (search, floor(search)))
    try:
        for i in range(warm_starts):
            out, _, _ = start_and_time(cache, logs / f"warm{i}.log", 600.0)
            warm.append(out)
            common.log(f"warm start {i + 1}/{warm_starts}: page {out['page_s']:.1f} s, first answer "
                       f"{out['first_answer_s']:.1f} s")
            if baseline_root is not None:
                out, _, _ = start_and_time(bench_cache / "e2e-baseline", logs / f"baseline{i}.log", 600.0,
                                           root=baseline_root)
                result["baseline_warm"].append(out)
                common.log(f"baseline {result['baseline']} warm start {i + 1}/{warm_starts}: page "
                           f"{out['page_s']:.1f} s, first answer {out['first_answer_s']:.1f} s")
        if args.starts_only:
            result["warm"] = warm
            info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
            result["machine"] = info
            print(render_starts(result))
            common.emit_json("bench_e2e", {k: v for k, v in result.items() if k != "machine"})
            return result
        # the latencies: app.py again, started through LAUNCHER, which adds the searches' do-nothing twins
        result["serving_start"], app, sampler = start_and_time(cache, logs / "serving.log", 600.0, keep=True,
                                                               floors=True)
        assert app is not None and sampler is not None
        result["serving"] = app.serving()
        if result["serving"].get("missing") or not result["serving"].get("fns"):
            raise RuntimeError(f"the launcher found no endpoint for {result['serving'].get('missing')}:\n{app.log()}")
        common.log(f"app with floor endpoints up: first answer {result['serving_start']['first_answer_s']:.1f} s")
        with sampler.during("1 client"):
            common.log(f"1 client, {requests} requests per endpoint")
            result["one"] = one_client(app.url, requests, images, endpoints)
        with sampler.during(f"{args.clients} clients"):
            common.log(f"{args.clients} clients, {requests} requests each per endpoint")
            result["many"] = many_clients(app.url, args.clients, requests, images, endpoints, common.log)
        result["after_rss"] = sampler.sample()
        result["peaks"] = sampler.stop()
        result["alive"] = app.process.poll() is None
    finally:
        if sampler is not None:
            sampler.stop()
        if app is not None:
            app.stop()
    result["warm"] = warm
    info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = info
    text = render(result)
    print(text)
    common.emit_json("bench_e2e", {k: v for k, v in result.items() if k != "machine"})
    if args.write:
        common.write_section("bench_e2e", text, "5. End to end", machine_info=info)
        common.log(f"wrote {common.DOC}")
    return result


def _ms(seconds: float) -> str:
    return "—" if seconds != seconds else f"{common.fmt(seconds * 1000)} ms"  # NaN: no successful request


def _x(a: float, b: float) -> str:
    return "—" if a != a or b != b or b <= 0 else f"{common.fmt(a / b)}×"


def _queue_note(serving: dict[str, Any]) -> str:
    """What the running app's queue does with the searches, as the launcher read it from the app's Blocks."""
    fns = serving.get("fns") or {}
    searches = {name: f for name, f in fns.items() if not name.startswith(FLOOR_PREFIX)}
    if not searches:
        return ""
    limits = sorted({f["concurrency_limit"] for f in searches.values()}, key=str)
    groups = {f["concurrency_id"] for f in searches.values()}
    limit = " or ".join("no limit" if v is None else str(v) for v in limits)
    if len(groups) == len(searches):
        share = f"each search endpoint runs at most {limit} requests at once, in its own concurrency group"
    elif len(groups) == 1:
        share = f"the search endpoints together run at most {limit} requests at once (one concurrency group)"
    else:
        share = (f"the search endpoints run at most {limit} requests at once per concurrency group "
                 f"({len(groups)} groups)")
    return (f"The app's queue, as read from the running app: {share} (the queue's `default_concurrency_limit` is "
            f"{serving.get('default_concurrency_limit')}); at most {serving.get('max_size')} requests wait "
            f"(`max_size`); Gradio's thread limit for handlers (`max_threads`) is {serving.get('max_threads')}.")


def _start_rows(res: dict[str, Any]) -> list[list[str]]:
    """The start-up table's rows: the cold start, today's warm starts, and a baseline's beside them."""
    start_rows = []
    cold = res.get("cold")
    if cold and "timeout_s" in cold:
        start_rows.append(["cold (no cached bundle)", "—", f"not within {cold['timeout_s']:.0f} s", "—"])
    elif cold:
        start_rows.append(["cold (no cached bundle: the app builds it)", f"{common.fmt(cold['page_s'])} s",
                           f"{common.fmt(cold['first_answer_s'])} s ({cold['first_answer_s'] / 60:.1f} min)",
                           common.fmt_bytes(cold["start_peak_rss"])])
    runs = [(f"warm (cached bundle), `{str(res.get('code', '?')).split()[0].strip('`')}`", res["warm"])]
    if res.get("baseline_warm"):
        runs.append((f"warm, as at `{res['baseline']}` (interleaved with the row above)", res["baseline_warm"]))
    for name, warm in runs:
        page = [w["page_s"] for w in warm]
        answer = [w["first_answer_s"] for w in warm]
        rng = (lambda v: f" ({common.fmt(min(v))}–{common.fmt(max(v))})") if len(warm) > 1 else (lambda v: "")
        start_rows.append([f"{name}, median of {len(warm)}",
                           f"{common.fmt(common.median(page))} s{rng(page)}",
                           f"{common.fmt(common.median(answer))} s{rng(answer)}",
                           common.fmt_bytes(max(w["start_peak_rss"] for w in warm))])
    return start_rows


START_HEADERS = ["start", "page answering", "first search answered", "peak RSS during start"]
START_NOTE = ("**Start-up**, from `Popen` to the page answering (`GET /config` 200) and to the first search answered "
              "(`/search_images` \"bird\" through `gradio_client`, which waits for the search engine):")


def render_starts(res: dict[str, Any]) -> str:
    """The start-up table alone (``--starts-only``)."""
    return "\n".join([f"Command: `{res['command']}`", "", f"Machine: {common.machine_line(res['machine'])}", "",
                      START_NOTE, "", common.table(START_HEADERS, _start_rows(res))])


def render(res: dict[str, Any]) -> str:
    warm = res["warm"]
    peaks = res.get("peaks", {})
    start_rows = _start_rows(res)
    clients = res["clients"]
    one_rows, many_rows = [], []
    for e in ENDPOINTS:
        one, many = res["one"][e], res["many"][e]
        f1, fm = res["one"][floor(e)], res["many"][floor(e)]
        fails = one["failures"] + many["failures"] + f1["failures"] + fm["failures"]
        one_rows.append([f"`{e}`", _ms(one["p50"]), _ms(one["p95"]), _ms(f1["p50"]), _ms(f1["p95"]),
                         _x(one["p50"], f1["p50"]), _ms(one["p50"] - f1["p50"])])
        many_rows.append([f"`{e}`", _ms(many["p50"]), _ms(many["p95"]), common.fmt(many["rps"]), _ms(fm["p50"]),
                          common.fmt(fm["rps"]), _x(many["p50"], fm["p50"]), _x(many["p50"], one["p50"]), str(fails)])
    mem_rows = [[phase, common.fmt_bytes(v)] for phase, v in peaks.items() if phase != "between"]
    mem_rows.append(["after the runs", common.fmt_bytes(res.get("after_rss"))])
    quick = res["requests"] < 20 or len(warm) < 3
    cores = res["machine"].get("usable_cores")
    serving_start = res.get("serving_start") or {}
    lines = [
        f"Command: `{res['command']}`" + ("  \n**Quick run — not the documented figures.**" if quick else ""),
        "",
        f"Machine: {common.machine_line(res['machine'])} Load average at the end: {res['machine']['load_avg_end'][0]}.",
        "",
        f"Code: {res.get('code', '?')}. "
        "`python app.py` in a subprocess on 127.0.0.1 (free port), `SEARCH_CACHE_DIR` a private folder, no "
        "`SEARCH_BUNDLE`: it serves the offline Tux Paint bundle. Clients are `gradio_client` in the benchmark's "
        f"process, on the same {cores} cores as the app, so under load the clients' own work is in the figures too.",
        "",
        START_NOTE,
        "",
        common.table(START_HEADERS, start_rows),
        "",
        "**Latency** per request, client side, on one more start of the same app in which every search endpoint "
        "has a **floor**: a do-nothing twin on the same Gradio queue in the same process (`bench/bench_e2e.py`'s "
        "`LAUNCHER` runs app.py as `python app.py` does and adds the twins just before its `launch()`: the same "
        "input and output components, the same preprocess, postprocess, queue and concurrency settings and the "
        "same signature as the search, a handler that returns an empty result at once, and no button or API-page "
        "entry; app.py itself has no such endpoint). A floor's latency is what Gradio and the client cost for that "
        "request, upload included; *× floor* and *− floor* show what the search adds, returning its results "
        "(photos' URLs and captions, or a table of words) included. "
        f"Each search and its floor are timed side by side: {res['requests']} timed requests each with 1 client "
        "(all endpoints taking turns, after 2 untimed rounds); then "
        f"{clients} concurrent clients × {res['requests']} requests each = {clients * res['requests']} per endpoint, "
        "one endpoint at a time, each search followed by its floor. Image endpoints upload a photo with every "
        "request (scikit-image's, not in the collection); answers' files are not downloaded "
        "(`download_files=False`). " + _queue_note(res.get("serving") or {}),
        "",
        "1 client:",
        "",
        common.table(["endpoint", "p50", "p95", "floor p50", "floor p95", "× floor (p50)", "− floor (p50)"],
                     one_rows),
        "",
        f"{clients} clients:",
        "",
        common.table(["endpoint", "p50", "p95", "requests/s", "floor p50", "floor requests/s", "× floor (p50)",
                      "p50 ÷ 1 client's", "failed (search + floor, both runs)"], many_rows),
        "",
        f"p95 of {res['requests']} requests (1 client) is close to their maximum; read it as \"the slow end\", not as "
        "a precise percentile.",
        "",
        f"**Memory**: the app's resident set (its process and children, sampled every {SAMPLE_S} s), peak per phase "
        "of the run with the floors (its start "
        + (f"answered its first search after {common.fmt(serving_start['first_answer_s'])} s" if serving_start
           else "is not in the start-up table")
        + "; the twins hold no data of their own):",
        "",
        common.table(["phase", "peak RSS"], mem_rows),
    ]
    if res.get("alive") is False:
        lines += ["", "**The app had exited by the end of the runs.**"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
