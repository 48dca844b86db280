"""Tests for the training CLIs: --help of each, and training.build_assets end to end on a folder of generated photos
with a tiny random timm model and synthetic word vectors in the cache format. Publishing runs its real --dry-run
path, which contacts nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from searchcore import bundle as B

REPO = Path(__file__).resolve().parents[1]
TINY_BACKBONE = "test_resnet@random"
LABELS = ("cat", "dog", "bottle")


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> tuple[Path, Path]:
    """(a folder of class folders with 2 photos each, a synthetic word-vector folder in the cache format)."""
    base = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    photos = base / "photos"
    for n, label in enumerate(LABELS):
        (photos / label).mkdir(parents=True)
        for i in range(2):
            arr = np.clip(60 * n + 30 * i + rng.integers(0, 80, (32, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(photos / label / f"{label}_{i}.png")
    words = base / "words"
    words.mkdir()
    filler = ["q" + "".join(p) for p in itertools.product("abcdef", repeat=3)][:40]
    vocab = ["the", ",", "of", *LABELS, "tabby", "siamese", "beer", "wine", "jar", "cup", "sofa", "table", *filler]
    np.save(words / "vectors.npy", rng.standard_normal((len(vocab), 12)).astype(np.float32))
    (words / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return photos, words


def build_args(photos: Path, words: Path, out: Path, *extra: str) -> list[str]:
    return ["--collection", str(photos), "--out", str(out), "--backbone", TINY_BACKBONE, "--words", str(words),
            "--word-vocab", "20", *extra]


# ---- --help ----------------------------------------------------------------------------------------------------------
HELP_OPTIONS = {
    "build_assets": ["--collection", "--out", "--backbone", "clip:", "--words", "--offline", "--push-to-hub", "--ray",
                     "--ray-workers", "--shard-size", "--float16"],
    "train_devise": ["--bundle", "--loss", "--epochs", "--holdout-classes", "--push-to-hub", "--json"],
    "evaluate": ["--bundle", "--clip", "--json"],
}


def test_every_cli_has_help():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    # started together: each spends seconds importing torch
    procs = {name: subprocess.Popen([sys.executable, "-m", f"training.{name}", "--help"], cwd=REPO, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in HELP_OPTIONS}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (name, err)
        assert f"python -m training.{name}" in out, name
        for option in HELP_OPTIONS[name]:
            assert option in out, (name, option)


def test_the_clis_and_the_bundle_reader_import_without_torch():
    """--help and opening a bundle stay light: torch is imported only once there is model work to do."""
    code = ("import sys, training.build_assets, training.evaluate, searchcore.bundle, searchcore.models.tagging, "
            "searchcore.models.clip; print(sorted(m for m in ('torch', 'timm', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


# ---- build_assets ----------------------------------------------------------------------------------------------------
def test_build_assets_makes_a_verified_bundle_and_prints_a_summary(sources, tmp_path, capsys):
    from training import build_assets

    photos, words = sources
    out = tmp_path / "bundle"
    args = build_args(photos, words, out)
    assert build_assets.main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["bundle"] == str(out)
    assert summary["photos"] == 6 and summary["skipped"] == []
    assert summary["extract_seconds"] >= 0 and "hub" not in summary
    manifest = B.verify(out)
    assert manifest["count"] == 6
    assert manifest["backbone"] == TINY_BACKBONE
    assert manifest["words"] == str(words) and manifest["word_dim"] == 12
    assert manifest["word_vocab"] == 20 and manifest["tag_vocab"]["count"] > 0
    assert manifest["labels"] == sorted(LABELS)
    assert manifest["head"] is False
    bundle = B.open_bundle(out)
    assert len(bundle.indexes["tags"]) == len(bundle.tags.phrases) and len(bundle.indexes["words"]) == 20
    # the command that rebuilds this bundle: the module and the arguments main() was given (not pytest's argv)
    assert manifest["build"]["command"] == "python -m training.build_assets " + shlex.join(args)


def test_build_assets_reports_an_unreadable_photo(sources, tmp_path, capsys):
    import shutil

    from training import build_assets

    photos = Path(shutil.copytree(sources[0], tmp_path / "photos"))
    (photos / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    assert build_assets.main(build_args(photos, sources[1], tmp_path / "bundle")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["photos"] == 6
    assert [s["path"] for s in summary["skipped"]] == ["dog/broken.jpg"] and summary["skipped"][0]["why"]
    assert B.verify(tmp_path / "bundle")["count"] == 6


def test_build_assets_on_a_folder_without_photos_fails_with_a_message(sources, tmp_path, capsys):
    from training import build_assets

    empty = tmp_path / "empty"
    (empty / "cat").mkdir(parents=True)
    (empty / "cat" / "notes.txt").write_text("no photos here")
    out = tmp_path / "bundle"
    assert build_assets.main(build_args(empty, sources[1], out)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error:" in captured.err and str(empty) in captured.err
    assert not (out / B.MANIFEST).exists()


def test_build_assets_on_a_missing_folder_fails_with_a_message(sources, tmp_path, capsys):
    from training import build_assets

    missing = tmp_path / "no-such-folder"
    assert build_assets.main(build_args(missing, sources[1], tmp_path / "bundle")) == 2
    assert "error:" in capsys.readouterr().err


def test_build_assets_push_to_hub_dry_run_publishes_the_dataset_only(sources, tmp_path, capsys):
    """Through the real publish --dry-run path: the exact files a push would send, and no Hub client at all."""
    from training import build_assets
    from training.publish import dataset_files

    out, preview = tmp_path / "bundle", tmp_path / "preview"
    with mock.patch("training.publish.HfApi", side_effect=AssertionError("the dry run contacted the Hub")):
        assert build_assets.main(build_args(*sources, out, "--push-to-hub", "someone/tiny-photos",
                                            "--dry-run", str(preview))) == 0
    hub = json.loads(capsys.readouterr().out)["hub"]
    assert hub["repo_id"] == "someone/tiny-photos" and hub["dry_run"] is True
    assert hub["model"] is None  # build_assets publishes no head (push_head=False): there is none yet
    files = dataset_files(out)
    assert "manifest.json" in files and "items.jsonl" in files  # published only once the bundle is complete
    assert hub["dataset"] == {"repo_type": "dataset", "path": str(preview / "dataset"), "files": files}
    copied = sorted(p.relative_to(preview / "dataset").as_posix() for p in (preview / "dataset").rglob("*")
                    if p.is_file())
    assert copied == files
    assert not (preview / "model").exists()
    B.verify(preview / "dataset")  # what would be uploaded is itself a complete, verifiable bundle


# ---- a failure ends in a message, not a traceback ----------------------------------------------------------------
HUB_REPO = "someone/glove-vectors"  # in no cache: with the Hub offline it cannot be fetched


def visible_lines(stderr: str) -> list[str]:
    """stderr as a terminal shows it: tqdm redraws its line after each carriage return, and a failed run's bar is
    wiped, so only what follows the last one on each line stays."""
    return [shown for line in stderr.split("\n") if (shown := line.split("\r")[-1].rstrip())]


@pytest.fixture(scope="module")
def hub_bundle(sources, tmp_path_factory) -> Path:
    """A finished tiny bundle whose manifest names its word vectors by a Hub id (as a bundle built online does)."""
    from training import build_assets

    out = tmp_path_factory.mktemp("hub-bundle") / "bundle"
    assert build_assets.main(build_args(*sources, out)) == 0
    manifest = json.loads((out / B.MANIFEST).read_text(encoding="utf-8"))
    manifest["words"] = HUB_REPO
    (out / B.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return out


def test_every_cli_without_the_hub_ends_in_a_message_and_a_nonzero_exit(sources, hub_bundle, tmp_path):
    """The real commands in subprocesses, with huggingface_hub offline and empty caches: each says what could not be
    fetched and what to do, in one or two lines, exits non-zero, and prints no traceback unless --debug."""
    photos, _ = sources
    out = str(tmp_path / "out")
    commands = {
        # (arguments, exit code, what the first line names, what the second line says)
        "default backbone": (["training.build_assets", "--collection", str(photos), "--out", out],
                             2, "'timm/vgg16.tv_in1k'", "--offline"),
        "default vectors": (["training.build_assets", "--collection", str(photos), "--out", out, "--backbone",
                             TINY_BACKBONE], 2, "'sentence-transformers/average_word_embeddings_glove.6B.300d'",
                            "--offline"),
        "train": (["training.train_devise", "--bundle", str(hub_bundle), "--epochs", "1"], 2, f"'{HUB_REPO}'",
                  "--offline"),
        "evaluate": (["training.evaluate", "--bundle", str(hub_bundle)], 2, f"'{HUB_REPO}'", "--offline"),
        "publish": (["training.publish", str(hub_bundle), "someone/tiny-photos"], 1, "Hugging Face Hub", "--dry-run"),
        "deploy": (["training.deploy_space", "someone/semantic-search"], 1, "Hugging Face Hub", "--dry-run"),
        "debug": (["training.build_assets", "--collection", str(photos), "--out", out, "--debug"],
                  2, "'timm/vgg16.tv_in1k'", "--offline"),
    }
    cache = tmp_path / "caches"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(cache / "hf"), "HF_HUB_CACHE": str(cache / "hub"),
           "TORCH_HOME": str(cache / "torch"), "SEARCH_CACHE_DIR": str(cache / "search"), "HF_TOKEN": "hf_unused"}
    procs = {name: subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
             for name, (args, *_) in commands.items()}
    for name, proc in procs.items():
        err = proc.communicate(timeout=300)[1].decode(errors="replace")  # bytes: text mode would turn \r into \n
        _, code, names, advice = commands[name]
        assert proc.returncode == code, (name, err)
        lines = visible_lines(err)
        if name == "debug":
            assert "Traceback" in err, err  # --debug shows where it failed, then the same message
            lines = lines[-2:]
        else:
            assert "Traceback" not in err, (name, err)
        assert len(lines) == 2, (name, err)
        assert lines[0].startswith("error: ") and names in lines[0], (name, lines)
        assert advice in lines[1], (name, lines)


def closed_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: a connection to it is refused at once."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_every_hub_cli_fails_fast_when_the_hub_refuses_connections(sources, hub_bundle, tmp_path):
    """The real commands in subprocesses, online (HF_HUB_OFFLINE unset) but with HF_ENDPOINT at a closed port on
    loopback: each exits non-zero in seconds (huggingface_hub's retries took 55 s), in two lines, no traceback, no
    retry warnings. Nothing but loopback is contacted: the endpoint is 127.0.0.1 and proxies are switched off."""
    from concurrent.futures import ThreadPoolExecutor

    photos, _ = sources
    endpoint = f"http://127.0.0.1:{closed_loopback_port()}"
    commands = {
        # (arguments, exit code, what the first line names, what the second line says)
        "build (Hub default)": (["training.build_assets", "--collection", str(photos), "--out", str(tmp_path / "b")],
                                2, "'timm/vgg16.tv_in1k'", "--offline"),
        "build --push-to-hub": (["training.build_assets", *build_args(*sources, tmp_path / "p"), "--push-to-hub",
                                 "someone/tiny-photos"], 2, endpoint, "--dry-run"),
        "train --push-to-hub": (["training.train_devise", "--bundle", str(hub_bundle), "--epochs", "1",
                                 "--push-to-hub", "someone/tiny-photos"], 2, endpoint, "--dry-run"),
        "publish": (["training.publish", str(hub_bundle), "someone/tiny-photos"], 1, endpoint, "--dry-run"),
        "deploy": (["training.deploy_space", "someone/semantic-search"], 1, endpoint, "--dry-run"),
    }
    cache = tmp_path / "caches"
    env = {key: value for key, value in os.environ.items()
           if key != "HF_HUB_OFFLINE" and not key.lower().endswith("_proxy")}
    env.update(HF_ENDPOINT=endpoint, NO_PROXY="*", HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(cache / "hf"),
               HF_HUB_CACHE=str(cache / "hub"), TORCH_HOME=str(cache / "torch"), SEARCH_CACHE_DIR=str(cache / "search"),
               HF_TOKEN="hf_unused")

    def timed(args: list[str]) -> tuple[float, subprocess.CompletedProcess]:
        started = time.monotonic()
        # bytes: text mode would turn tqdm's \r into \n
        done = subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, timeout=120)
        return time.monotonic() - started, done

    with ThreadPoolExecutor(len(commands)) as pool:  # together: each spends seconds importing torch
        results = dict(zip(commands, pool.map(timed, (args for args, *_ in commands.values()))))
    for name, (seconds, done) in results.items():
        _, code, names, advice = commands[name]
        err = done.stderr.decode(errors="replace")
        assert done.returncode == code, (name, err)
        assert "Traceback" not in err and "Retrying" not in err, (name, err)
        lines = visible_lines(err)
        assert len(lines) == 2, (name, err)
        assert lines[0].startswith("error: ") and names in lines[0] and "Connection refused" in lines[0], (name, lines)
        assert advice in lines[1], (name, lines)
        # the retries alone took 23 s per file; starting Python and torch, four at once on two cores, takes the rest
        assert seconds < 30, (name, seconds)
    print({name: round(seconds, 1) for name, (seconds, _) in results.items()})
