"""Run ``python app.py`` for real, in a subprocess, for the app and browser tests (a pytest plugin).

Test modules load it with ``pytest_plugins = ["_app_server"]``. It gives them the session fixture ``app_server``:
the app started on a free loopback port, serving the offline bundle from the test cache (the ``offline_bundle``
fixture builds it first, so the app's own start is warm), with ``SEARCH_MAX_PIXELS`` lowered so a modest upload
can play the huge image. The process is always terminated; when a test that used it fails, the report shows the
app's log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_PIXELS = 1_000_000  # the app's upload limit in these tests: a 2000×2000 image is "huge"
START_TIMEOUT = 600.0  # seconds; a loaded shared machine can be slow, a healthy warm start takes well under a minute


@dataclass
class AppServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self, last: int = 15_000) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.is_file() else ""
        return text[-last:]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_env(cache: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SEARCH_BUNDLE", "GRADIO_ROOT_PATH", "GRADIO_SHARE")}
    env.update(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), SEARCH_CACHE_DIR=str(cache),
               SEARCH_MAX_PIXELS=str(MAX_PIXELS), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
               PYTHONUNBUFFERED="1", **extra)
    return env


def wait_until_answering(server: AppServer, timeout: float = START_TIMEOUT) -> float:
    """Poll the app's config until it answers; return the seconds it took. Fails early if the process dies."""
    started = time.monotonic()
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"app.py exited with code {server.process.returncode} before answering:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.url + "config", timeout=10) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"app.py did not answer within {timeout:.0f} s:\n{server.log()}")
        time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the app's process group (Gradio may start helpers), then SIGKILL what is left."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


def start_app(cache: Path, log_path: Path, **extra_env: str) -> AppServer:
    port = free_port()
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=app_env(cache, port, **extra_env),
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return AppServer(f"http://127.0.0.1:{port}/", process, log_path)


@pytest.fixture(scope="session")
def app_server(offline_bundle: Path, test_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """``python app.py`` answering on a free port, with a warm bundle. Shared by the app and browser tests."""
    server = start_app(test_cache, tmp_path_factory.mktemp("app") / "app.log")
    try:
        seconds = wait_until_answering(server)
        print(f"app.py answered after {seconds:.1f} s")
        yield server
    finally:
        stop(server.process)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("app_server")
    if report.failed and isinstance(server, AppServer):
        report.sections.append(("app.py log (last part)", server.log()))
