"""Publish a bundle to the Hugging Face Hub: the trained head as a model repo, the whole bundle as a dataset repo.

Both repos get the same id, so ``load_engine("user/name")`` finds the bundle (a dataset repo) and the head can be
loaded on its own with ``DeViSEHead.from_pretrained("user/name")`` (a model repo). The bundle is verified against
its manifest before anything is sent. Each repo then mirrors what is published exactly: files an earlier, bigger
publication left there are deleted in the same commit. New repos get the Hub's default visibility (yours or your
organisation's) unless ``--private`` is given. The token comes from ``--token``/``token=`` or the ``HF_TOKEN``
variable (and otherwise from ``hf auth login``).

Run it::

    HF_TOKEN=hf_... python -m training.publish assets/pascal user/pascal-search
    python -m training.publish assets/pascal user/pascal-search --dry-run /tmp/preview   # copies, contacts nothing

In Python (``training.build_assets --push-to-hub`` and ``training.train_devise --push-to-hub`` call this after
building or training)::

    from training.publish import publish_bundle
    summary = publish_bundle(Path("assets/pascal"), "user/pascal-search")
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi
from huggingface_hub.utils import filter_repo_objects

from searchcore.bundle import HEAD, MANIFEST, rebuild_hint, verify
from searchcore.errors import BadArgumentError, BundleError

from .cli import PUBLISH_HINT, add_debug_flag, run

# The head's model repo: what PyTorchModelHubMixin needs to rebuild it, plus its model card and training curve.
HEAD_REQUIRED = ("config.json", "model.safetensors", "README.md")
HEAD_OPTIONAL = ("training.png",)
# Never worth publishing: hidden files (.git, editor swap files, the atomic writer's ".NAME.xxx.tmp"), partial
# downloads and Python caches. Patterns follow huggingface_hub's own matching, so the dry run lists exactly what
# upload_folder sends.
DATASET_IGNORE = (".*", "*/.*", "*.tmp", "*.part", "__pycache__/", "*/__pycache__/*", "*.pyc")
# Every remote file matches: upload_folder then deletes whatever this publication does not send (the files it sends
# are overwritten, not deleted, and huggingface_hub always keeps .gitattributes), so the repo mirrors the bundle.
MIRROR = ("*",)
DEFAULT_MESSAGE = "Upload semantic-search bundle"
_REPO_ID = re.compile(r"(?:[\w.-]+/)?[\w.-]+")
TRAIN_HINT = "Train one with: python -m training.train_devise --bundle {root}"


def _check_repo_id(repo_id: str) -> None:
    if not _REPO_ID.fullmatch(repo_id or "") or ".." in repo_id:
        raise BadArgumentError(f"{repo_id!r} is not a Hub repo id; pass one like 'user/pascal-search'.")


def check_hub(token: str | None = None) -> None:
    """Ask the Hub whose token this is: one quick request that fails when the Hub cannot be reached or the token is not
    valid. ``--push-to-hub`` asks before building or training, so that such a failure costs seconds, not a run."""
    HfApi(token=token or os.environ.get("HF_TOKEN") or None).whoami()


def precheck(*, debug: bool = False, code: int = 2) -> int:
    """:func:`check_hub` for a command that publishes after long work: 0, or ``code`` after a one- or two-line
    message with the publishing advice (the command's own hint is about its models, not about publishing)."""

    def body() -> int:
        check_hub()
        return 0

    return run(body, debug=debug, hub_hint=PUBLISH_HINT, code=code)


def head_files(bundle_dir: Path) -> list[str]:
    """The head's files to publish (names inside ``head/``), or ``[]`` when the bundle has no head.

    A head folder that is there but incomplete is refused, naming the missing file: publishing half a model
    would give a repo ``from_pretrained`` cannot load.
    """
    head = bundle_dir / HEAD
    present = [name for name in HEAD_REQUIRED if (head / name).is_file()]
    if not present:
        return []
    for name in HEAD_REQUIRED:
        if name not in present:
            raise BundleError("is missing, so the head cannot be published.", head / name,
                              TRAIN_HINT.format(root=bundle_dir))
    return [*HEAD_REQUIRED, *(name for name in HEAD_OPTIONAL if (head / name).is_file())]


def dataset_files(bundle_dir: Path) -> list[str]:
    """Every file of the bundle that the dataset upload sends (relative posix paths, sorted)."""
    paths = sorted(p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*") if p.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=list(DATASET_IGNORE)))


def _copy(src_root: Path, names: list[str], dest: Path) -> None:
    # The dry-run folders are ours: replace them so they show this plan only, not an earlier one.
    if dest.exists():
        shutil.rmtree(dest)
    for name in names:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src_root / name, target)


def publish_bundle(bundle_dir: Path, repo_id: str, *, token: str | None = None, private: bool = False,
                   push_head: bool | None = None, dry_run_dir: Path | None = None,
                   commit_message: str = DEFAULT_MESSAGE) -> dict[str, Any]:
    """Send ``bundle_dir/head`` to the model repo ``repo_id`` and the whole bundle to the dataset repo ``repo_id``.

    ``push_head``: ``None`` pushes the head when the bundle has one (and says so in the summary's ``notes`` when it
    has not), ``True`` requires it (:class:`BundleError` naming the missing file), ``False`` pushes the dataset only.
    With ``dry_run_dir`` nothing is contacted: the files that would be uploaded are copied into
    ``dry_run_dir/model`` and ``dry_run_dir/dataset`` (both replaced). Returns a summary: for each repo its type,
    URL (or dry-run path) and file list, plus notes.

    Each repo ends up holding exactly the listed files: remote files this publication does not send are deleted.
    ``private=True`` creates missing repos as private; otherwise nothing is said about visibility, so a new repo
    gets the Hub's default for its owner (an organisation may default to private). An existing repo keeps its
    visibility either way.
    """
    bundle_dir = Path(bundle_dir)
    _check_repo_id(repo_id)
    if not (bundle_dir / MANIFEST).is_file():
        raise BundleError("is missing: this folder is not a finished bundle, so it cannot be published.",
                          bundle_dir / MANIFEST, rebuild_hint(bundle_dir))
    verify(bundle_dir)  # refuses truncated or altered files before anyone downloads them from the Hub

    notes: list[str] = []
    model_files: list[str] = []
    if push_head is not False:
        model_files = head_files(bundle_dir)
        if not model_files:
            if push_head:
                raise BundleError("is missing: the bundle has no trained head to publish.",
                                  bundle_dir / HEAD / "config.json", TRAIN_HINT.format(root=bundle_dir))
            notes.append(f"{bundle_dir} has no trained head (head/config.json): only the dataset repo is published. "
                         + TRAIN_HINT.format(root=bundle_dir))
    data_files = dataset_files(bundle_dir)
    summary: dict[str, Any] = {"repo_id": repo_id, "dry_run": dry_run_dir is not None, "model": None,
                               "dataset": None, "notes": notes}

    if dry_run_dir is not None:
        dry_run_dir = Path(dry_run_dir)
        if model_files:
            _copy(bundle_dir / HEAD, model_files, dry_run_dir / "model")
            summary["model"] = {"repo_type": "model", "path": str(dry_run_dir / "model"), "files": model_files}
        elif (dry_run_dir / "model").exists():
            shutil.rmtree(dry_run_dir / "model")  # an earlier plan's head, which this plan does not publish
        _copy(bundle_dir, data_files, dry_run_dir / "dataset")
        summary["dataset"] = {"repo_type": "dataset", "path": str(dry_run_dir / "dataset"), "files": data_files}
        notes.append(f"dry run: nothing was sent to the Hub; the files are in {dry_run_dir}. Publishing makes each "
                     "Hub repo hold exactly these files: any other file already there is deleted.")
        return summary

    api = HfApi(token=token or os.environ.get("HF_TOKEN") or None)
    # private=False would override an organisation that makes its repos private by default: say only what was asked.
    visibility = {"private": True} if private else {}
    if model_files:
        url = api.create_repo(repo_id, repo_type="model", exist_ok=True, **visibility)
        api.upload_folder(folder_path=str(bundle_dir / HEAD), repo_id=repo_id, repo_type="model",
                          commit_message=commit_message, allow_patterns=list(model_files),
                          delete_patterns=list(MIRROR))
        summary["model"] = {"repo_type": "model", "url": str(url), "files": model_files}
    url = api.create_repo(repo_id, repo_type="dataset", exist_ok=True, **visibility)
    api.upload_folder(folder_path=str(bundle_dir), repo_id=repo_id, repo_type="dataset",
                      commit_message=commit_message, ignore_patterns=list(DATASET_IGNORE),
                      delete_patterns=list(MIRROR))
    summary["dataset"] = {"repo_type": "dataset", "url": str(url), "files": data_files}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.publish",
        description="Publish a bundle: its trained head to the model repo REPO_ID and the whole bundle to the "
                    "dataset repo REPO_ID on the Hugging Face Hub. The bundle is verified first.",
        epilog="Each Hub repo ends up holding exactly the published files (others there are deleted). "
               "The token comes from --token, else HF_TOKEN, else hf auth login.")
    parser.add_argument("bundle", type=Path, help="the bundle folder, e.g. assets/pascal")
    parser.add_argument("repo_id", help="the Hub repo id for both repos, e.g. user/pascal-search")
    parser.add_argument("--private", action="store_true",
                        help="create missing repos as private (default: the Hub's default for you or your "
                             "organisation; an existing repo keeps its visibility)")
    head = parser.add_mutually_exclusive_group()
    head.add_argument("--head", dest="push_head", action="store_true", default=None,
                      help="require a trained head (fail if the bundle has none)")
    head.add_argument("--no-head", dest="push_head", action="store_false", help="publish the dataset repo only")
    parser.add_argument("--dry-run", type=Path, metavar="DIR",
                        help="contact nothing; copy what would be uploaded into DIR/model and DIR/dataset")
    parser.add_argument("--token", help="Hugging Face token (default: $HF_TOKEN)")
    parser.add_argument("--message", default=DEFAULT_MESSAGE, help="commit message")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    return run(lambda: _publish(args), debug=args.debug, hub_hint=PUBLISH_HINT, code=1)


def _publish(args: argparse.Namespace) -> int:
    summary = publish_bundle(args.bundle, args.repo_id, token=args.token, private=args.private,
                             push_head=args.push_head, dry_run_dir=args.dry_run, commit_message=args.message)
    if args.json:
        print(json.dumps(summary))
        return 0
    for kind in ("model", "dataset"):
        repo = summary[kind]
        if repo:
            print(f"{kind}: {repo.get('url') or repo.get('path')} ({len(repo['files'])} files)")
    for note in summary["notes"]:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
