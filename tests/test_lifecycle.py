"""The engine's lifecycle without Gradio: the loader's progress, its retry after a failed build, which bundle is served,
and the offline bundle rebuilt when the recipe that built it changes (:mod:`searchcore.serve.lifecycle`,
:mod:`searchcore.build.offline`). Fast fakes stand in for the engine and the build: what is tested is the policy."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from searchcore.serve.lifecycle import EngineLoader, Served, bundle_name, outermost

REPO = Path(__file__).resolve().parents[1]


def _served(tag: str) -> Served:
    return Served(engine=tag, why="a test", folders=(), name=tag)  # type: ignore[arg-type]


class FlakyBuild:
    """A build that fails its first ``failures`` calls, then succeeds; each call can be held until released."""

    def __init__(self, failures: int = 0, hold: bool = False) -> None:
        self.failures, self.calls = failures, 0
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.started = threading.Event()

    def __call__(self, report: Any) -> Served:
        self.calls += 1
        report(0.3, f"reading (try {self.calls})")
        self.started.set()
        assert self.release.wait(10), "the test never released the build"
        if self.calls <= self.failures:
            raise OSError(f"the bundle's files are missing (try {self.calls})")
        report(1.0, "ready")
        return _served(f"engine {self.calls}")


def test_a_failed_build_is_tried_again_by_the_next_request_without_a_restart() -> None:
    build = FlakyBuild(failures=1)
    loader = EngineLoader(build)
    with pytest.raises(OSError, match="try 1"):
        loader.wait(every=0.01)
    assert loader.ready() is None and build.calls == 1
    served = loader.wait(every=0.01)  # the next request: a new attempt, which succeeds
    assert served.engine == "engine 2" and build.calls == 2
    assert loader.ready() is served
    assert loader.wait(every=0.01) is served and build.calls == 2  # a built engine is never built again


def test_every_request_waits_for_the_one_build_and_hears_its_progress() -> None:
    build = FlakyBuild(hold=True)
    loader = EngineLoader(build)
    assert loader.ready() is None  # nothing started yet
    heard: list[tuple[float, str]] = []
    answers: list[Served] = []

    def request() -> None:
        answers.append(loader.wait(lambda fraction, desc: heard.append((fraction, desc)), every=0.01))

    waiting = [threading.Thread(target=request) for _ in range(3)]
    for thread in waiting:
        thread.start()
    assert build.started.wait(5)
    while len(heard) < 3:  # each waiter reports at least once while the build is held
        threading.Event().wait(0.01)
    assert loader.ready() is None  # started, not done
    build.release.set()
    for thread in waiting:
        thread.join(5)
    assert build.calls == 1 and len(answers) == 3 and len({id(a) for a in answers}) == 1
    assert (0.3, "Preparing the search engine: reading (try 1)") in heard
    assert loader.ready() is answers[0]


def test_a_build_that_fails_again_raises_again() -> None:
    loader = EngineLoader(FlakyBuild(failures=5))
    for attempt in (1, 2):
        with pytest.raises(OSError, match=f"try {attempt}"):
            loader.wait(every=0.01)


def test_the_page_names_a_local_bundle_by_its_folder_and_a_hub_bundle_by_its_id(tmp_path: Path) -> None:
    folder = tmp_path / "secret" / "my-bundle"
    folder.mkdir(parents=True)
    assert bundle_name(str(folder)) == "my-bundle"
    assert bundle_name("./not/here/yet") == "yet"  # a path, even one that does not exist, is never shown whole
    assert bundle_name("user/photos") == "user/photos"


def test_importing_the_lifecycle_imports_neither_gradio_nor_torch() -> None:
    code = ("import sys, searchcore.serve.lifecycle; "
            "print(sorted(m for m in ('gradio', 'torch', 'timm', 'hnswlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_the_app_builds_no_page_and_loads_no_engine() -> None:
    code = ("import sys, app; print(app.MAX_K, len(app._pages), app._loader.ready(), "
            "sorted(m for m in ('torch', 'timm', 'hnswlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["50", "0", "None", "[]"]


# ---- the offline bundle and its recipe ------------------------------------------------------------------------------
@pytest.fixture()
def fake_offline_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """``ensure_offline_bundle`` with a build that writes only a manifest (and counts its calls), in a temp cache."""
    from searchcore.build import offline, pipeline
    from searchcore.errors import BundleError

    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path))
    calls: dict[str, Any] = {"build": 0, "train": 0, "fail": False}

    def build_bundle(collection: str, root: Path, backbone: str, words: str, **_: Any) -> None:
        calls["build"] += 1
        if calls["fail"]:
            raise OSError("the build was interrupted")
        root.mkdir(parents=True, exist_ok=True)
        (root / "manifest.json").write_text(json.dumps({"backbone": backbone, "words": words}))

    def train_bundle(root: Path, config: Any, **_: Any) -> None:
        calls["train"] += 1

    def verify(root: Path, check_sums: bool = True) -> dict[str, Any]:
        if not (root / "manifest.json").is_file():
            raise BundleError("has no manifest.json.", root)
        return json.loads((root / "manifest.json").read_text())

    # ensure_offline_bundle imports the build only when it builds (a restart with the bundle cached needs no torch)
    monkeypatch.setattr(pipeline, "build_bundle", build_bundle)
    monkeypatch.setattr(pipeline, "train_bundle", train_bundle)
    monkeypatch.setattr(offline.B, "verify", verify)
    return calls


def test_the_offline_bundle_is_built_once_then_reused(fake_offline_build: dict[str, Any]) -> None:
    from searchcore.build import offline

    root = offline.ensure_offline_bundle(collection="tuxpaint")
    assert fake_offline_build == {"build": 1, "train": 1, "fail": False}
    assert (root / ".recipe").read_text().strip() == offline.RECIPE
    assert offline.ensure_offline_bundle(collection="tuxpaint") == root
    assert fake_offline_build["build"] == 1


def test_a_bundle_built_by_another_recipe_is_rebuilt(fake_offline_build: dict[str, Any],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from searchcore.build import offline

    root = offline.ensure_offline_bundle(collection="tuxpaint")
    monkeypatch.setattr(offline, "RECIPE", offline.RECIPE + "-next")  # today's code builds differently
    assert not offline.is_current(root)
    assert offline.ensure_offline_bundle(collection="tuxpaint") == root
    assert fake_offline_build["build"] == 2 and fake_offline_build["train"] == 2
    assert (root / ".recipe").read_text().strip() == offline.RECIPE and offline.is_current(root)


def test_an_interrupted_rebuild_leaves_no_bundle_that_passes_for_current(fake_offline_build: dict[str, Any],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from searchcore.build import offline

    root = offline.ensure_offline_bundle(collection="tuxpaint")
    monkeypatch.setattr(offline, "RECIPE", offline.RECIPE + "-next")
    fake_offline_build["fail"] = True
    with pytest.raises(OSError, match="interrupted"):
        offline.ensure_offline_bundle(collection="tuxpaint")
    monkeypatch.setattr(offline, "RECIPE", offline.RECIPE.removesuffix("-next"))  # even under the old recipe
    assert not offline.is_current(root)  # the old recipe's mark went before the rebuild began


def test_the_samples_bundle_is_not_trained(fake_offline_build: dict[str, Any]) -> None:
    from searchcore.build import offline

    offline.ensure_offline_bundle(collection="samples")
    assert fake_offline_build["build"] == 1 and fake_offline_build["train"] == 0


def test_the_folders_allowed_to_gradio_are_the_outermost_ones() -> None:
    """Gradio checks every file it serves against each allowed folder: a local bundle's photo folders, all inside
    its images/ folder, are left out; a folder that merely shares a prefix is not inside."""
    folders = ["/b/images/birds", "/b/images", "/b/images/food/fruit", "/b/images2", "/hub/blobs", "/photos/mine",
               "/b/images"]
    assert outermost(folders) == ("/b/images", "/b/images2", "/hub/blobs", "/photos/mine")
