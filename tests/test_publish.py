"""training.publish at the huggingface_hub boundary: the exact HfApi calls, the token, the dry run, the refusals.

The bundle is built by hand (a manifest over tiny files, no backbone) and HfApi is a mock, so nothing is sent. One
test runs huggingface_hub's real ``upload_folder`` with only its network calls stubbed, to show that a smaller
bundle published again leaves no stale file in the repo.
"""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from huggingface_hub.utils import filter_repo_objects

from searchcore import storage
from searchcore.bundle import write_items, write_manifest
from searchcore.collection import Item
from searchcore.errors import BadArgumentError, BundleError
from training.publish import DATASET_IGNORE, MIRROR, main, publish_bundle

REPO = "someone/tiny-search"
HEAD_NAMES = ["config.json", "model.safetensors", "README.md", "training.png"]


def make_bundle(root: Path, head: tuple[str, ...] = tuple(HEAD_NAMES)) -> Path:
    items = [Item(0, "cat/a.jpg", "cat", "A cat."), Item(1, "dog/b.jpg", "dog", "A dog.")]
    write_items(root / "items.jsonl", items)
    storage.save_npy(root / "features.npy", np.ones((2, 4), np.float32))
    storage.save_npy(root / "logits.npy", np.zeros((2, 3), np.float32))
    for item in items:
        storage.write_bytes(root / "images" / item.path, b"\xff\xd8 not really a jpeg")
    storage.write_json(root / "indexes" / "images.json", {"dim": 4})
    storage.write_bytes(root / "indexes" / "images.hnsw", b"index")
    contents = {"config.json": b'{"in_dim": 4}', "model.safetensors": b"weights", "README.md": b"# Head\n",
                "training.png": b"\x89PNG", "notes.txt": b"scratch, not part of the model"}
    for name in (*head, "notes.txt") if head else ():
        storage.write_bytes(root / "head" / name, contents[name])
    write_manifest(root, {"name": "tiny", "count": 2, "feature_dim": 4, "num_classes": 3, "word_dim": 5})
    # Clutter that must never reach the Hub.
    (root / ".manifest.json.x1y2.tmp").write_bytes(b"leftover of a crashed write")
    (root / "images" / "cat" / "c.jpg.part").write_bytes(b"half")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root


DATASET_FILES = sorted(["manifest.json", "items.jsonl", "features.npy", "logits.npy", "images/cat/a.jpg",
                        "images/dog/b.jpg", "indexes/images.json", "indexes/images.hnsw",
                        *(f"head/{n}" for n in HEAD_NAMES), "head/notes.txt"])


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "bundle")


@pytest.fixture
def hf_api(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with mock.patch("training.publish.HfApi") as cls:
        api = cls.return_value
        api.create_repo.side_effect = lambda repo_id, repo_type, **_: (
            f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}")
        yield cls


def test_pushes_head_to_model_repo_and_bundle_to_dataset_repo(bundle: Path, hf_api, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    summary = publish_bundle(bundle, REPO, private=True, commit_message="v1")

    hf_api.assert_called_once_with(token="hf_from_env")
    api = hf_api.return_value
    assert api.create_repo.call_args_list == [
        mock.call(REPO, repo_type="model", exist_ok=True, private=True),
        mock.call(REPO, repo_type="dataset", exist_ok=True, private=True),
    ]
    assert api.upload_folder.call_args_list == [
        mock.call(folder_path=str(bundle / "head"), repo_id=REPO, repo_type="model", commit_message="v1",
                  allow_patterns=HEAD_NAMES, delete_patterns=["*"]),
        mock.call(folder_path=str(bundle), repo_id=REPO, repo_type="dataset", commit_message="v1",
                  ignore_patterns=list(DATASET_IGNORE), delete_patterns=["*"]),
    ]
    assert summary["model"] == {"repo_type": "model", "url": f"https://huggingface.co/{REPO}", "files": HEAD_NAMES}
    assert summary["dataset"]["url"] == f"https://huggingface.co/datasets/{REPO}"
    assert summary["dataset"]["files"] == DATASET_FILES
    assert summary["dry_run"] is False and summary["notes"] == []


def test_visibility_is_left_to_the_hub_unless_private_is_asked(bundle: Path, hf_api) -> None:
    # No private=False: an organisation whose repos are private by default keeps them private.
    publish_bundle(bundle, REPO)
    assert hf_api.return_value.create_repo.call_args_list == [
        mock.call(REPO, repo_type="model", exist_ok=True),
        mock.call(REPO, repo_type="dataset", exist_ok=True),
    ]


def test_cli_private_flag_creates_private_repos(bundle: Path, hf_api, capsys) -> None:
    assert main([str(bundle), REPO, "--private"]) == 0
    assert [c.kwargs.get("private") for c in hf_api.return_value.create_repo.call_args_list] == [True, True]
    out = capsys.readouterr().out
    assert f"model: https://huggingface.co/{REPO} (4 files)" in out
    assert f"dataset: https://huggingface.co/datasets/{REPO} ({len(DATASET_FILES)} files)" in out


def test_republishing_a_smaller_bundle_deletes_what_it_no_longer_has(tmp_path: Path, monkeypatch) -> None:
    """huggingface_hub's real upload_folder, with only the network stubbed: the commit deletes every stale file."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    monkeypatch.delenv("HF_TOKEN", raising=False)
    bundle = make_bundle(tmp_path / "bundle", head=("config.json", "model.safetensors", "README.md"))
    # What an earlier, bigger publication left on the Hub: a photo, an index and a training curve since dropped.
    remote = {"model": [".gitattributes", "config.json", "model.safetensors", "README.md", "training.png"],
              "dataset": [".gitattributes", *DATASET_FILES, "images/bird/c.jpg", "indexes/old.hnsw",
                          "head/training.png"]}
    api = HfApi(token="hf_test")
    commits: dict[str, list] = {}

    def create_commit(*, repo_type, operations, **_):
        commits[repo_type] = operations

    with mock.patch.object(api, "create_repo", return_value="https://huggingface.co/x"), \
         mock.patch.object(api, "list_repo_files", side_effect=lambda repo_id, repo_type, **_: remote[repo_type]), \
         mock.patch.object(api, "_validate_yaml"), \
         mock.patch.object(api, "create_commit", side_effect=create_commit), \
         mock.patch("huggingface_hub.hf_api.is_xet_available", return_value=False), \
         mock.patch("training.publish.HfApi", return_value=api):
        summary = publish_bundle(bundle, REPO)

    def ops(kind: str, cls: type) -> list[str]:
        return sorted(op.path_in_repo for op in commits[kind] if isinstance(op, cls))

    assert ops("model", CommitOperationDelete) == ["training.png"]
    assert ops("model", CommitOperationAdd) == sorted(summary["model"]["files"])
    assert ops("dataset", CommitOperationDelete) == ["head/training.png", "images/bird/c.jpg", "indexes/old.hnsw"]
    assert ops("dataset", CommitOperationAdd) == summary["dataset"]["files"]
    # After each commit the repo holds exactly the published files (and the Hub's own .gitattributes).
    for kind in ("model", "dataset"):
        after = set(remote[kind]) - set(ops(kind, CommitOperationDelete)) | set(ops(kind, CommitOperationAdd))
        assert after == {".gitattributes", *summary[kind]["files"]}
    assert MIRROR == ("*",)


def test_listed_dataset_files_are_what_upload_folder_would_send(bundle: Path, hf_api) -> None:
    publish_bundle(bundle, REPO)
    kwargs = hf_api.return_value.upload_folder.call_args_list[1].kwargs
    on_disk = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    # huggingface_hub's own filter, with the patterns the module passed, keeps exactly the listed files.
    assert list(filter_repo_objects(on_disk, ignore_patterns=kwargs["ignore_patterns"])) == DATASET_FILES


def test_explicit_token_wins_over_env(bundle: Path, hf_api, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    publish_bundle(bundle, REPO, token="hf_given")
    hf_api.assert_called_once_with(token="hf_given")


def test_no_token_lets_huggingface_hub_use_its_login(bundle: Path, hf_api) -> None:
    publish_bundle(bundle, REPO)
    hf_api.assert_called_once_with(token=None)


def test_dry_run_copies_exactly_the_uploads_and_contacts_nothing(bundle: Path, hf_api, tmp_path: Path) -> None:
    out = tmp_path / "preview"
    (out / "model").mkdir(parents=True)
    (out / "model" / "stale.bin").write_bytes(b"from an earlier dry run")

    summary = publish_bundle(bundle, REPO, dry_run_dir=out)

    hf_api.assert_not_called()
    copied = {kind: sorted(p.relative_to(out / kind).as_posix() for p in (out / kind).rglob("*") if p.is_file())
              for kind in ("model", "dataset")}
    assert copied["model"] == sorted(HEAD_NAMES)
    assert copied["dataset"] == DATASET_FILES
    assert (out / "model" / "model.safetensors").read_bytes() == (bundle / "head" / "model.safetensors").read_bytes()
    assert (out / "dataset" / "manifest.json").read_bytes() == (bundle / "manifest.json").read_bytes()
    assert summary["dry_run"] is True
    assert summary["model"] == {"repo_type": "model", "path": str(out / "model"), "files": HEAD_NAMES}
    assert summary["dataset"] == {"repo_type": "dataset", "path": str(out / "dataset"), "files": DATASET_FILES}


def test_headless_bundle_publishes_the_dataset_only_and_says_so(tmp_path: Path, hf_api) -> None:
    bundle = make_bundle(tmp_path / "bundle", head=())
    summary = publish_bundle(bundle, REPO)

    api = hf_api.return_value
    api.create_repo.assert_called_once_with(REPO, repo_type="dataset", exist_ok=True)
    assert [c.kwargs["repo_type"] for c in api.upload_folder.call_args_list] == ["dataset"]
    assert summary["model"] is None
    assert any("no trained head" in note and "only the dataset" in note for note in summary["notes"])


def test_required_head_that_is_missing_is_refused_naming_the_file(tmp_path: Path, hf_api) -> None:
    bundle = make_bundle(tmp_path / "bundle", head=())
    with pytest.raises(BundleError, match=r"head/config\.json") as info:
        publish_bundle(bundle, REPO, push_head=True)
    assert info.value.path == bundle / "head" / "config.json"
    hf_api.return_value.create_repo.assert_not_called()


def test_incomplete_head_is_refused_naming_the_missing_file(tmp_path: Path, hf_api) -> None:
    bundle = make_bundle(tmp_path / "bundle", head=("config.json", "model.safetensors"))
    with pytest.raises(BundleError, match=r"head/README\.md"):
        publish_bundle(bundle, REPO)
    hf_api.return_value.create_repo.assert_not_called()


def test_no_head_flag_skips_the_model_repo(bundle: Path, hf_api) -> None:
    summary = publish_bundle(bundle, REPO, push_head=False)
    hf_api.return_value.create_repo.assert_called_once_with(REPO, repo_type="dataset", exist_ok=True)
    assert summary["model"] is None and summary["notes"] == []


def test_bundle_without_manifest_is_refused(bundle: Path, hf_api, tmp_path: Path) -> None:
    (bundle / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"manifest\.json") as info:
        publish_bundle(bundle, REPO, dry_run_dir=tmp_path / "preview")
    assert info.value.path == bundle / "manifest.json"
    hf_api.assert_not_called()
    assert not (tmp_path / "preview").exists()


def test_bundle_that_disagrees_with_its_manifest_is_refused(bundle: Path, hf_api) -> None:
    (bundle / "items.jsonl").write_text('{"id": 0, "path": "x.jpg", "label": "x", "caption": ""}\n')
    with pytest.raises(BundleError, match=r"items\.jsonl"):
        publish_bundle(bundle, REPO)
    hf_api.return_value.create_repo.assert_not_called()


def test_bad_repo_id_is_refused(bundle: Path, hf_api) -> None:
    with pytest.raises(BadArgumentError, match="repo id"):
        publish_bundle(bundle, "not a/repo id")


def test_cli_dry_run_copies_the_uploads_and_prints_the_summary(bundle: Path, tmp_path: Path, capsys) -> None:
    # The real --dry-run path, nothing stubbed: it must not even build an HfApi client (the Hub is unreachable here).
    out = tmp_path / "p"
    with mock.patch("training.publish.HfApi", side_effect=AssertionError("the dry run contacted the Hub")):
        assert main([str(bundle), REPO, "--dry-run", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dry_run"] is True
    assert summary["model"] == {"repo_type": "model", "path": str(out / "model"), "files": HEAD_NAMES}
    assert summary["dataset"] == {"repo_type": "dataset", "path": str(out / "dataset"), "files": DATASET_FILES}
    copied = sorted(p.relative_to(out / "dataset").as_posix() for p in (out / "dataset").rglob("*") if p.is_file())
    assert copied == DATASET_FILES
    assert any("deleted" in note for note in summary["notes"])  # says that publishing mirrors, not adds

    assert main([str(bundle), REPO, "--dry-run", str(out), "--no-head"]) == 0
    printed = capsys.readouterr().out
    assert f"dataset: {out / 'dataset'} ({len(DATASET_FILES)} files)" in printed and "model:" not in printed
    assert not (out / "model").exists()  # the first run's head preview is gone: it is not part of this plan


def test_cli_reports_a_refused_bundle(tmp_path: Path, hf_api, capsys) -> None:
    assert main([str(tmp_path), REPO]) == 1
    assert "manifest.json" in capsys.readouterr().err
