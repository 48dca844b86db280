"""Deploy the demo to a Hugging Face Space: create the Gradio Space, upload the app's code, point it at a bundle.

Only what the Space runs is uploaded: ``app.py``, ``requirements.txt``, ``README.md`` (when it carries the Spaces
front matter) and the ``searchcore/`` and ``training/`` packages. Tests, benchmarks, assets, caches and anything
hidden stay home. With ``--bundle`` the Space variable ``SEARCH_BUNDLE`` is set to that Hub dataset repo id (publish
one with ``python -m training.publish``); the app loads it at start-up.

Run it::

    HF_TOKEN=hf_... python -m training.deploy_space user/semantic-search --bundle user/pascal-search
    python -m training.deploy_space user/semantic-search --dry-run     # lists the upload, contacts nothing
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from pathlib import Path
from typing import NamedTuple

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import filter_repo_objects

from searchcore.errors import BadArgumentError, SearchError

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_FILES = ("app.py", "requirements.txt", "README.md")
REQUIRED_FILES = ("app.py", "requirements.txt")
APP_DIRS = ("searchcore", "training")
# Inside the packages: hidden files, Python caches and leftovers of interrupted writes never belong on the Space.
IGNORE = (".*", "*/.*", "__pycache__/", "*/__pycache__/*", "*.pyc", "*.pyo", "*.tmp", "*.part")
BUNDLE_VARIABLE = "SEARCH_BUNDLE"
DEFAULT_MESSAGE = "Deploy semantic-search"
_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")
# The Space reads its SDK and entry point from README.md's YAML header; a README without one would break it.
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?\n)?---\s*(\n|\Z)", re.DOTALL)


class DeployPlan(NamedTuple):
    repo_id: str
    root: Path
    files: list[str]  # relative posix paths under root, sorted
    variables: dict[str, str]
    notes: list[str]


def _has_space_header(readme: Path) -> bool:
    match = _FRONT_MATTER.match(readme.read_text(encoding="utf-8", errors="replace"))
    return bool(match and re.search(r"^sdk\s*:", match.group(1) or "", re.MULTILINE))


def space_files(root: Path = REPO_ROOT) -> tuple[list[str], list[str]]:
    """The files the Space gets (relative posix paths) and notes on anything left out that a person should know."""
    root = Path(root)
    for name in REQUIRED_FILES:
        if not (root / name).is_file():
            raise BadArgumentError(f"No {name} in {root}: run from the project checkout or pass --root.")
    notes: list[str] = []
    files = [name for name in APP_FILES if (root / name).is_file()]
    if "README.md" in files and not _has_space_header(root / "README.md"):
        files.remove("README.md")
        notes.append("README.md has no Spaces header (---\\nsdk: gradio\\napp_file: app.py\\n---), so it is left "
                     "out and the Space keeps the README it was created with.")
    for folder in APP_DIRS:
        files += [p.relative_to(root).as_posix() for p in (root / folder).rglob("*") if p.is_file()]
    return sorted(filter_repo_objects(files, ignore_patterns=list(IGNORE))), notes


def _check_bundle(bundle: str) -> None:
    if Path(bundle).expanduser().is_dir():
        raise BadArgumentError(f"{bundle!r} is a local folder, which the Space cannot read. Publish it first "
                               f"(python -m training.publish {bundle} user/name) and pass --bundle user/name.")
    if not _REPO_ID.fullmatch(bundle):
        raise BadArgumentError(f"--bundle {bundle!r} is not a Hub dataset repo id; pass one like 'user/pascal-search'.")


def plan_deploy(repo_id: str, *, bundle: str | None = None, root: Path = REPO_ROOT) -> DeployPlan:
    """What a deploy would do: the files to upload and the Space variables to set (nothing is contacted)."""
    if not _REPO_ID.fullmatch(repo_id or ""):
        raise BadArgumentError(f"{repo_id!r} is not a Space id; pass one like 'user/semantic-search'.")
    variables = {}
    if bundle:
        _check_bundle(bundle)
        variables[BUNDLE_VARIABLE] = bundle
    files, notes = space_files(root)
    return DeployPlan(repo_id, Path(root), files, variables, notes)


def deploy_space(plan: DeployPlan, *, private: bool = False, token: str | None = None,
                 commit_message: str = DEFAULT_MESSAGE) -> str:
    """Carry out ``plan``: create the Space if needed, upload its files, set its variables; return the Space URL."""
    api = HfApi(token=token or os.environ.get("HF_TOKEN") or None)
    url = api.create_repo(plan.repo_id, repo_type="space", space_sdk="gradio", exist_ok=True, private=private)
    api.upload_folder(
        folder_path=str(plan.root), repo_id=plan.repo_id, repo_type="space", commit_message=commit_message,
        # The exact planned files (escaped, as the patterns are globs), so the upload is what --dry-run lists.
        allow_patterns=[glob.escape(name) for name in plan.files], ignore_patterns=list(IGNORE),
        # Modules deleted here are deleted on the Space too, so it never imports a stale one.
        delete_patterns=[f"{folder}/*" for folder in APP_DIRS],
    )
    for key, value in plan.variables.items():
        api.add_space_variable(plan.repo_id, key, value)
    return str(url)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.deploy_space",
        description="Create (or update) a Gradio Space with this demo: upload app.py, requirements.txt,\n"
                    "README.md, searchcore/ and training/ (never tests/, bench/, assets/ or caches), and\n"
                    f"with --bundle point the Space at a published bundle through its {BUNDLE_VARIABLE} variable.",
        epilog="Examples:\n"
               "  python -m training.deploy_space user/semantic-search --dry-run\n"
               "  HF_TOKEN=hf_... python -m training.deploy_space user/semantic-search --bundle user/pascal-search\n"
               "The token comes from --token, else HF_TOKEN, else huggingface-cli login.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo_id", metavar="REPO_ID", help="the Space, e.g. user/semantic-search")
    parser.add_argument("--bundle", metavar="HUB_ID",
                        help=f"Hub dataset repo id of a bundle (from training.publish); sets {BUNDLE_VARIABLE}. "
                             "Without it the variable is left as it is and the app uses its default bundle.")
    parser.add_argument("--private", action="store_true", help="create the Space as private")
    parser.add_argument("--dry-run", action="store_true", help="list the files and the variable; contact nothing")
    parser.add_argument("--token", help="Hugging Face token with write access (default: $HF_TOKEN)")
    parser.add_argument("--message", default=DEFAULT_MESSAGE, help="commit message")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the project checkout (default: this one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        plan = plan_deploy(args.repo_id, bundle=args.bundle, root=args.root)
        for note in plan.notes:
            print(f"note: {note}", file=sys.stderr)
        if args.dry_run:
            print(f"dry run: would create the Gradio Space {plan.repo_id} (private={args.private}) and upload "
                  f"{len(plan.files)} files from {plan.root}:")
            for name in plan.files:
                print(f"  {name}")
            for key, value in plan.variables.items():
                print(f"would set the Space variable {key}={value}")
            if not plan.variables:
                print(f"no --bundle: {BUNDLE_VARIABLE} is left as it is")
            return 0
        url = deploy_space(plan, private=args.private, token=args.token, commit_message=args.message)
    except (SearchError, HfHubHTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"deployed {len(plan.files)} files to {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
