"""training.deploy_space at the huggingface_hub boundary: exact HfApi calls, the variable, the dry-run listing, --help.

The project checkout is faked in tmp_path (with tests/, bench/, assets/ and caches that must stay home) and HfApi is
a mock, so nothing is sent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS
from huggingface_hub.utils import filter_repo_objects

from training.deploy_space import DEFAULT_MESSAGE, IGNORE, REPO_ROOT, main, plan_deploy

SPACE = "someone/semantic-search"
README = "---\ntitle: Semantic search\nsdk: gradio\napp_file: app.py\n---\n\n# Semantic search\n"
SHIPPED = ["README.md", "app.py", "requirements.txt", "searchcore/__init__.py", "searchcore/engine.py",
           "training/__init__.py", "training/publish.py"]
KEPT_HOME = ["tests/test_app.py", "tests/conftest.py", "bench/bench_speed.py", "assets/pascal/manifest.json",
             "searchcore/__pycache__/engine.cpython-311.pyc", "searchcore/.engine.py.swp", ".git/HEAD",
             ".cache/semantic-search/glove.npy", "docs/benchmarks.md", "requirements-dev.txt",
             "training/.publish.py.abc.tmp", "training/__pycache__/publish.cpython-311.pyc"]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    for name in SHIPPED + KEPT_HOME:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(README if name == "README.md" else f"# {name}\n")
    return root


@pytest.fixture
def hf_api(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with mock.patch("training.deploy_space.HfApi") as cls:
        cls.return_value.create_repo.return_value = f"https://huggingface.co/spaces/{SPACE}"
        yield cls


def test_deploy_makes_the_exact_calls(checkout: Path, hf_api, capsys) -> None:
    rc = main([SPACE, "--bundle", "someone/pascal-search", "--private", "--token", "hf_given", "--root",
               str(checkout)])

    assert rc == 0
    hf_api.assert_called_once_with(token="hf_given")
    api = hf_api.return_value
    api.create_repo.assert_called_once_with(SPACE, repo_type="space", space_sdk="gradio", exist_ok=True,
                                            private=True)
    api.upload_folder.assert_called_once_with(
        folder_path=str(checkout), repo_id=SPACE, repo_type="space", commit_message=DEFAULT_MESSAGE,
        allow_patterns=SHIPPED, ignore_patterns=list(IGNORE), delete_patterns=["searchcore/*", "training/*"])
    api.add_space_variable.assert_called_once_with(SPACE, "SEARCH_BUNDLE", "someone/pascal-search")
    assert f"https://huggingface.co/spaces/{SPACE}" in capsys.readouterr().out


def test_upload_patterns_select_exactly_the_app_files(checkout: Path, hf_api) -> None:
    main([SPACE, "--root", str(checkout)])
    kwargs = hf_api.return_value.upload_folder.call_args.kwargs
    on_disk = sorted(p.relative_to(checkout).as_posix() for p in checkout.rglob("*") if p.is_file())
    # Apply huggingface_hub's own filter the way upload_folder does (its default ignores added).
    sent = filter_repo_objects(on_disk, allow_patterns=kwargs["allow_patterns"],
                               ignore_patterns=kwargs["ignore_patterns"] + DEFAULT_IGNORE_PATTERNS)
    assert list(sent) == SHIPPED


def test_no_bundle_sets_no_variable_and_token_comes_from_env(checkout: Path, hf_api, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    assert main([SPACE, "--root", str(checkout)]) == 0
    hf_api.assert_called_once_with(token="hf_from_env")
    api = hf_api.return_value
    api.create_repo.assert_called_once_with(SPACE, repo_type="space", space_sdk="gradio", exist_ok=True,
                                            private=False)
    api.add_space_variable.assert_not_called()


def test_dry_run_lists_the_upload_and_contacts_nothing(checkout: Path, hf_api, capsys) -> None:
    assert main([SPACE, "--dry-run", "--bundle", "someone/pascal-search", "--root", str(checkout)]) == 0
    hf_api.assert_not_called()
    out = capsys.readouterr().out
    listed = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert listed == SHIPPED
    assert "app.py" in listed and "searchcore/engine.py" in listed
    assert not any(name.startswith(("tests/", "bench/", "assets/", ".")) or "__pycache__" in name
                   for name in listed)
    assert "SEARCH_BUNDLE=someone/pascal-search" in out


def test_dry_run_without_bundle_says_the_variable_is_untouched(checkout: Path, hf_api, capsys) -> None:
    assert main([SPACE, "--dry-run", "--root", str(checkout)]) == 0
    assert "no --bundle" in capsys.readouterr().out
    hf_api.assert_not_called()


@pytest.mark.skipif(not (REPO_ROOT / "app.py").is_file(), reason="the real checkout has no app.py yet")
def test_plan_of_the_real_checkout_ships_the_app_and_not_the_tests() -> None:
    files = plan_deploy(SPACE).files
    assert "app.py" in files and "searchcore/engine.py" in files and "training/deploy_space.py" in files
    assert not [name for name in files if name.startswith(("tests/", "bench/", "assets/")) or "__pycache__" in name]


def test_readme_without_space_header_stays_home(checkout: Path, hf_api, capsys) -> None:
    (checkout / "README.md").write_text("# Semantic search\n\nNo YAML header here.\n")
    assert main([SPACE, "--dry-run", "--root", str(checkout)]) == 0
    captured = capsys.readouterr()
    assert "  README.md" not in captured.out
    assert "Spaces header" in captured.err


def test_local_folder_as_bundle_is_refused(checkout: Path, hf_api, capsys) -> None:
    assert main([SPACE, "--bundle", str(checkout), "--root", str(checkout)]) == 1
    assert "training.publish" in capsys.readouterr().err
    hf_api.assert_not_called()


@pytest.mark.parametrize("argv", [["not a space"], [SPACE, "--bundle", "no-slash"]])
def test_bad_ids_are_refused(checkout: Path, hf_api, argv: list[str], capsys) -> None:
    assert main([*argv, "--root", str(checkout)]) == 1
    err = capsys.readouterr().err
    assert "repo id" in err or "Space id" in err
    hf_api.assert_not_called()


def test_checkout_without_app_is_refused(tmp_path: Path, hf_api, capsys) -> None:
    assert main([SPACE, "--dry-run", "--root", str(tmp_path)]) == 1
    assert "No app.py" in capsys.readouterr().err


def test_help_runs_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-m", "training.deploy_space", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "REPO_ID" in result.stdout and "--bundle" in result.stdout and "SEARCH_BUNDLE" in result.stdout
    assert "--dry-run" in result.stdout
