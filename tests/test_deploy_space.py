"""training.deploy_space at the huggingface_hub boundary: exact HfApi calls, the variable, the private-bundle token,
the files the README links to, the dry-run listing, --help.

The project checkout is faked in tmp_path (with tests/, bench/, assets/ and caches that must stay home) and HfApi is
a mock, so nothing is sent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from huggingface_hub.errors import RepositoryNotFoundError
from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS
from huggingface_hub.utils import filter_repo_objects

from training.deploy_space import DEFAULT_MESSAGE, IGNORE, REPO_ROOT, linked_files, main, plan_deploy

SPACE = "someone/semantic-search"
BUNDLE = "someone/pascal-search"
README = """---
title: Semantic search
sdk: gradio
app_file: app.py
---

# Semantic search

![The Text → Image tab](docs/screenshot.png)

<img src="docs/first-start.png" alt="The first start" width="640">

Measured: see [the benchmarks](docs/benchmarks.md#speed "figures") and [Gradio](https://www.gradio.app).

```html
<iframe src="docs/not-a-link.html"></iframe>   <!-- an example in a code block, not a link -->
```
"""
BENCHMARKS = "# Benchmarks\n\n![speed](figures/speed.png)\n\nBack to the [README](../README.md).\n"
SHIPPED = ["README.md", "app.py", "docs/benchmarks.md", "docs/figures/speed.png", "docs/first-start.png",
           "docs/screenshot.png", "packages.txt", "requirements.txt", "searchcore/__init__.py",
           "searchcore/serve/engine.py", "training/__init__.py", "training/publish.py"]
KEPT_HOME = ["tests/test_app.py", "tests/conftest.py", "bench/bench_speed.py", "assets/pascal/manifest.json",
             "searchcore/__pycache__/engine.cpython-311.pyc", "searchcore/.engine.py.swp", ".git/HEAD",
             ".cache/semantic-search/glove.npy", "docs/unlinked.png", "docs/notes.md", "requirements-dev.txt",
             "training/.publish.py.abc.tmp", "training/__pycache__/publish.cpython-311.pyc"]
MIRRORED = ["searchcore/*", "training/*", "docs/*"]


def not_found() -> RepositoryNotFoundError:
    return RepositoryNotFoundError("404 Client Error: Repository Not Found",
                                   response=mock.Mock(headers={}, status_code=404))


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    for name in SHIPPED + KEPT_HOME:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text({"README.md": README, "docs/benchmarks.md": BENCHMARKS}.get(name, f"# {name}\n"))
    return root


@pytest.fixture
def hf_api(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("SEARCH_SHARE_TOKEN", raising=False)
    with mock.patch("training.deploy_space.HfApi") as cls, \
         mock.patch("training.deploy_space.get_token", return_value=None):  # no saved login on this machine
        api = cls.return_value
        api.create_repo.return_value = f"https://huggingface.co/spaces/{SPACE}"
        api.dataset_info.return_value = mock.Mock(private=False)
        api.get_space_secrets.side_effect = not_found()  # a Space that does not exist yet
        yield cls


def calls(hf_api) -> list[str]:
    """The HfApi methods called, in order."""
    return [name for name, _, _ in hf_api.return_value.mock_calls if "." not in name]


def test_deploy_makes_the_exact_calls(checkout: Path, hf_api, capsys) -> None:
    rc = main([SPACE, "--bundle", BUNDLE, "--private", "--token", "hf_given", "--root", str(checkout)])

    assert rc == 0
    hf_api.assert_called_once_with(token="hf_given")
    api = hf_api.return_value
    api.dataset_info.assert_called_once_with(BUNDLE)
    api.create_repo.assert_called_once_with(SPACE, repo_type="space", space_sdk="gradio", exist_ok=True,
                                            private=True)
    api.upload_folder.assert_called_once_with(
        folder_path=str(checkout), repo_id=SPACE, repo_type="space", commit_message=DEFAULT_MESSAGE,
        allow_patterns=SHIPPED, ignore_patterns=list(IGNORE), delete_patterns=MIRRORED)
    api.add_space_variable.assert_called_once_with(SPACE, "SEARCH_BUNDLE", BUNDLE)
    api.add_space_secret.assert_not_called()  # a public bundle needs no token
    api.get_space_secrets.assert_not_called()
    # the bundle is checked before anything changes; the variable is set before the upload starts the build
    assert calls(hf_api) == ["dataset_info", "create_repo", "add_space_variable", "upload_folder"]
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
    # no private=False: a new Space gets the Hub's default visibility for its owner (an organisation's, say)
    api.create_repo.assert_called_once_with(SPACE, repo_type="space", space_sdk="gradio", exist_ok=True)
    api.add_space_variable.assert_not_called()
    api.dataset_info.assert_not_called()
    api.add_space_secret.assert_not_called()


def test_dry_run_lists_the_upload_and_contacts_nothing(checkout: Path, hf_api, capsys) -> None:
    assert main([SPACE, "--dry-run", "--bundle", BUNDLE, "--root", str(checkout)]) == 0
    hf_api.assert_not_called()
    out = capsys.readouterr().out
    listed = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert listed == SHIPPED
    assert "app.py" in listed and "searchcore/serve/engine.py" in listed
    assert not any(name.startswith(("tests/", "bench/", "assets/", ".")) or "__pycache__" in name
                   for name in listed)
    assert f"SEARCH_BUNDLE={BUNDLE}" in out
    assert f"check that {BUNDLE} is readable" in out and "--share-token" in out


def test_dry_run_without_bundle_says_the_variable_is_untouched(checkout: Path, hf_api, capsys) -> None:
    assert main([SPACE, "--dry-run", "--root", str(checkout)]) == 0
    assert "no --bundle" in capsys.readouterr().out
    hf_api.assert_not_called()


def test_plan_of_the_real_checkout_ships_the_app_and_not_the_tests() -> None:
    files = plan_deploy(SPACE).files
    assert "app.py" in files and "searchcore/serve/engine.py" in files and "training/deploy_space.py" in files
    assert {"searchcore/serve/lifecycle.py", "searchcore/serve/page.py"} <= set(files)  # what app.py imports
    assert not [name for name in files if name.startswith(("tests/", "bench/", "assets/")) or "__pycache__" in name]


def test_the_real_dry_run_uploads_packages_txt_so_a_space_has_the_tux_paint_photos() -> None:
    """A Space installs the Debian packages listed in packages.txt (one per line, nothing else on the line): the
    Tux Paint stamps, so a Space with no bundle of its own serves the same offline collection as a local run."""
    packages = (REPO_ROOT / "packages.txt").read_text(encoding="utf-8").split()
    assert packages == ["tuxpaint-stamps-default"]
    result = subprocess.run([sys.executable, "-m", "training.deploy_space", SPACE, "--dry-run"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "\n  packages.txt\n" in result.stdout and "\n  requirements.txt\n" in result.stdout, result.stdout


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


# ---- what the README shows travels with it ------------------------------------------------------------------------
def test_readme_images_and_linked_pages_are_uploaded_and_unlinked_docs_stay_home(checkout: Path) -> None:
    files = plan_deploy(SPACE, root=checkout).files
    assert {"docs/screenshot.png", "docs/first-start.png", "docs/benchmarks.md", "docs/figures/speed.png"} <= set(files)
    assert "docs/unlinked.png" not in files and "docs/notes.md" not in files
    assert "docs/not-a-link.html" not in files  # inside a code block


def test_broken_readme_link_is_reported(checkout: Path) -> None:
    (checkout / "docs" / "screenshot.png").unlink()
    plan = plan_deploy(SPACE, root=checkout)
    assert "docs/screenshot.png" not in plan.files
    assert any("broken on the Space" in note and "README.md → docs/screenshot.png" in note for note in plan.notes)


def test_linked_files_follow_markdown_pages_once(checkout: Path) -> None:
    # benchmarks.md links back to the README: followed once, no loop, the README itself is not listed twice
    assert linked_files(checkout, "README.md") == (
        ["docs/screenshot.png", "docs/first-start.png", "docs/benchmarks.md", "docs/figures/speed.png"], [])


def test_packages_txt_is_uploaded_only_when_there_is_one(checkout: Path) -> None:
    assert "packages.txt" in plan_deploy(SPACE, root=checkout).files
    (checkout / "packages.txt").unlink()
    assert "packages.txt" not in plan_deploy(SPACE, root=checkout).files


def test_every_local_link_of_the_real_readme_reaches_the_space() -> None:
    plan = plan_deploy(SPACE)
    assert not [note for note in plan.notes if "broken" in note]
    linked, missing = linked_files(REPO_ROOT, "README.md")
    assert missing == [] and set(linked) <= set(plan.files)


# ---- a private bundle needs a token on the Space ------------------------------------------------------------------
def test_private_bundle_without_consent_is_refused_before_anything_changes(checkout: Path, hf_api, capsys) -> None:
    hf_api.return_value.dataset_info.return_value = mock.Mock(private=True)
    assert main([SPACE, "--bundle", BUNDLE, "--token", "hf_given", "--root", str(checkout)]) == 1
    err = capsys.readouterr().err
    assert f"{BUNDLE!r} is a private dataset repo" in err
    assert "--share-token" in err and "SEARCH_SHARE_TOKEN=1" in err and "HF_TOKEN" in err
    assert f"https://huggingface.co/spaces/{SPACE}/settings" in err and "make the bundle public" in err
    assert calls(hf_api) == ["dataset_info", "get_space_secrets"]  # nothing created, uploaded or set
    hf_api.return_value.get_space_secrets.assert_called_once_with(SPACE)


def test_private_bundle_with_share_token_stores_the_token_as_a_secret(checkout: Path, hf_api, capsys) -> None:
    hf_api.return_value.dataset_info.return_value = mock.Mock(private=True)
    assert main([SPACE, "--bundle", BUNDLE, "--share-token", "--token", "hf_given", "--root", str(checkout)]) == 0
    api = hf_api.return_value
    api.add_space_secret.assert_called_once_with(SPACE, "HF_TOKEN", "hf_given",
                                                 description="read access to the bundle in SEARCH_BUNDLE")
    api.add_space_variable.assert_called_once_with(SPACE, "SEARCH_BUNDLE", BUNDLE)
    # the token is in place before the upload starts the Space's build
    assert calls(hf_api) == ["dataset_info", "create_repo", "add_space_secret", "add_space_variable", "upload_folder"]
    api.get_space_secrets.assert_not_called()
    assert "Space secret HF_TOKEN" in capsys.readouterr().err


def test_consent_from_the_environment_shares_the_env_token(checkout: Path, hf_api, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    monkeypatch.setenv("SEARCH_SHARE_TOKEN", "1")
    hf_api.return_value.dataset_info.return_value = mock.Mock(private=True)
    assert main([SPACE, "--bundle", BUNDLE, "--root", str(checkout)]) == 0
    hf_api.return_value.add_space_secret.assert_called_once_with(
        SPACE, "HF_TOKEN", "hf_from_env", description="read access to the bundle in SEARCH_BUNDLE")


def test_share_token_uses_the_saved_login_when_no_token_is_given(checkout: Path, hf_api) -> None:
    hf_api.return_value.dataset_info.return_value = mock.Mock(private=True)
    with mock.patch("training.deploy_space.get_token", return_value="hf_saved_login"):
        assert main([SPACE, "--bundle", BUNDLE, "--share-token", "--root", str(checkout)]) == 0
    hf_api.assert_called_once_with(token=None)  # huggingface_hub uses the saved login for the calls themselves
    assert hf_api.return_value.add_space_secret.call_args.args == (SPACE, "HF_TOKEN", "hf_saved_login")


def test_share_token_with_no_token_anywhere_is_refused(checkout: Path, hf_api, capsys) -> None:
    hf_api.return_value.dataset_info.return_value = mock.Mock(private=True)
    assert main([SPACE, "--bundle", BUNDLE, "--share-token", "--root", str(checkout)]) == 1
    assert "hf auth login" in capsys.readouterr().err
    hf_api.return_value.create_repo.assert_not_called()


def test_private_bundle_and_a_space_that_has_a_token_secret_deploys(checkout: Path, hf_api, capsys) -> None:
    api = hf_api.return_value
    api.dataset_info.return_value = mock.Mock(private=True)
    api.get_space_secrets.side_effect = None
    api.get_space_secrets.return_value = {"HF_TOKEN": mock.Mock(key="HF_TOKEN")}
    assert main([SPACE, "--bundle", BUNDLE, "--root", str(checkout)]) == 0
    api.add_space_secret.assert_not_called()  # the secret the owner set (say, a read-only token) is kept
    api.add_space_variable.assert_called_once_with(SPACE, "SEARCH_BUNDLE", BUNDLE)
    assert "already has the secret HF_TOKEN" in capsys.readouterr().err


def test_public_bundle_never_gets_a_token_even_with_consent(checkout: Path, hf_api) -> None:
    assert main([SPACE, "--bundle", BUNDLE, "--share-token", "--token", "hf_given", "--root", str(checkout)]) == 0
    hf_api.return_value.add_space_secret.assert_not_called()


def test_bundle_the_token_cannot_see_is_refused(checkout: Path, hf_api, capsys) -> None:
    hf_api.return_value.dataset_info.side_effect = not_found()
    assert main([SPACE, "--bundle", BUNDLE, "--root", str(checkout)]) == 1
    err = capsys.readouterr().err
    assert f"{BUNDLE!r} is not a dataset repo this token can read" in err
    assert "python -m training.publish" in err and "hf auth login" in err
    assert calls(hf_api) == ["dataset_info"]


def test_help_says_how_to_log_in_and_share_the_token() -> None:
    result = subprocess.run([sys.executable, "-m", "training.deploy_space", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "hf auth login" in result.stdout and "huggingface-cli" not in result.stdout
    assert "--share-token" in result.stdout and "SEARCH_SHARE_TOKEN" in result.stdout
