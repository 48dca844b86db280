"""Deploy the demo to a Hugging Face Space: create the Gradio Space, upload the app's code, point it at a bundle.

Only what the Space runs or shows is uploaded: ``app.py``, ``requirements.txt``, ``packages.txt`` (Debian packages,
when there is one), ``README.md`` (when it carries the Spaces front matter) with the local files it links to (its
images, ``docs/benchmarks.md`` and what that links to), and the ``searchcore/`` and ``training/`` packages. Tests,
benchmarks, assets, caches and anything hidden stay home.

With ``--bundle`` the Space variable ``SEARCH_BUNDLE`` is set to that Hub dataset repo id (publish one with
``python -m training.publish``); the app loads it at start-up. The bundle is looked up first: a repo the token
cannot see is refused, and a private one needs a token on the Space, or the Space would quietly serve the offline
demo instead. With the user's consent (``--share-token``, or ``SEARCH_SHARE_TOKEN=1``) the token this command uses is
stored as the Space secret ``HF_TOKEN``; a Space that already has that secret is trusted to read the bundle;
otherwise the deploy is refused with a message saying what to do.

Run it::

    HF_TOKEN=hf_... python -m training.deploy_space user/semantic-search --bundle user/pascal-search
    python -m training.deploy_space user/semantic-search --dry-run     # lists the upload, contacts nothing
"""

from __future__ import annotations

import argparse
import glob
import os
import posixpath
import re
import sys
from pathlib import Path
from typing import NamedTuple

from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import RepositoryNotFoundError
from huggingface_hub.utils import filter_repo_objects

from searchcore.errors import AssetSourceError, BadArgumentError

from .cli import PUBLISH_HINT, add_debug_flag, run

REPO_ROOT = Path(__file__).resolve().parent.parent
# packages.txt: the Debian packages a Space installs (one per line), when the project has any.
APP_FILES = ("app.py", "requirements.txt", "packages.txt", "README.md")
REQUIRED_FILES = ("app.py", "requirements.txt")
APP_DIRS = ("searchcore", "training")
# Folders mirrored on the Space: a file deleted (or no longer linked from the README) here is deleted there too.
MIRRORED_DIRS = (*APP_DIRS, "docs")
# Inside the packages: hidden files, Python caches and leftovers of interrupted writes never belong on the Space.
IGNORE = (".*", "*/.*", "__pycache__/", "*/__pycache__/*", "*.pyc", "*.pyo", "*.tmp", "*.part")
BUNDLE_VARIABLE = "SEARCH_BUNDLE"
# huggingface_hub on the Space reads HF_TOKEN from the environment, and a Space exposes its secrets as variables.
TOKEN_SECRET = "HF_TOKEN"
SHARE_TOKEN_VARIABLE = "SEARCH_SHARE_TOKEN"
DEFAULT_MESSAGE = "Deploy semantic-search"
_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")
# The Space reads its SDK and entry point from README.md's YAML header; a README without one would break it.
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?\n)?---\s*(\n|\Z)", re.DOTALL)
# Local files a Markdown page shows or links to: [text](path), ![alt](path), <img src="path">, <a href="path">, and
# reference definitions ([name]: path). Code blocks are dropped first: their examples are not links.
_FENCED = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.DOTALL | re.MULTILINE)
_LINKS = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)"
                    r"|\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']"
                    r"|^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)


class DeployPlan(NamedTuple):
    repo_id: str
    root: Path
    files: list[str]  # relative posix paths under root, sorted
    variables: dict[str, str]
    notes: list[str]


class BundleAccess(NamedTuple):
    """What the Space needs to read its bundle: secrets to set (name → value) and notes for the user."""

    secrets: dict[str, str]
    notes: list[str]


def _has_space_header(readme: Path) -> bool:
    match = _FRONT_MATTER.match(readme.read_text(encoding="utf-8", errors="replace"))
    return bool(match and re.search(r"^sdk\s*:", match.group(1) or "", re.MULTILINE))


def linked_files(root: Path, page: str) -> tuple[list[str], list[str]]:
    """The local files that the Markdown file ``page`` (relative to ``root``) shows or links to, followed through
    the Markdown pages it links to; and the links that point at no file in ``root`` (broken on the Space)."""
    found: list[str] = []
    missing: list[str] = []
    pending, seen = [page], {page}
    while pending:
        current = pending.pop(0)
        text = _FENCED.sub("", (root / current).read_text(encoding="utf-8", errors="replace"))
        for match in _LINKS.finditer(text):
            target = next(group for group in match.groups() if group)
            if re.match(r"[a-zA-Z][\w+.-]*:|#|//", target):  # a URL, an anchor on the same page or mailto:
                continue
            path = posixpath.normpath(posixpath.join(posixpath.dirname(current), target.split("#")[0].split("?")[0]))
            if path in seen:
                continue
            seen.add(path)
            if path.startswith("../") or path == ".." or not (root / path).is_file():
                missing.append(f"{current} → {target}")
                continue
            found.append(path)
            if path.endswith(".md"):
                pending.append(path)
    return found, missing


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
    if "README.md" in files:
        # The Space shows the README as its page: its images and linked pages must be there too.
        linked, missing = linked_files(root, "README.md")
        files += linked
        if missing:
            notes.append("these links point at no file in the checkout, so they are broken on the Space: "
                         + "; ".join(missing))
    for folder in APP_DIRS:
        files += [p.relative_to(root).as_posix() for p in (root / folder).rglob("*") if p.is_file()]
    return sorted(set(filter_repo_objects(files, ignore_patterns=list(IGNORE)))), notes


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


def share_token_consent() -> bool:
    """Whether ``$SEARCH_SHARE_TOKEN`` says yes (the flag's equivalent for scripts and CI)."""
    return os.environ.get(SHARE_TOKEN_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def _private_bundle_advice(space: str, bundle: str) -> str:
    return (f"The bundle {bundle!r} is a private dataset repo, so the Space needs a token that can read it; without "
            f"one it would serve the offline demo instead. Either rerun with --share-token (or "
            f"{SHARE_TOKEN_VARIABLE}=1) to store the token this command uses as the Space secret {TOKEN_SECRET}, or "
            f"add a token yourself as the secret {TOKEN_SECRET} in the Space's settings "
            f"(https://huggingface.co/spaces/{space}/settings; deploy once without --bundle to create the Space) and "
            f"rerun, or make the bundle public. Whoever can change the Space's code can use that token: a "
            f"fine-grained token that can only read {bundle} is the safest.")


def bundle_access(api: HfApi, space: str, bundle: str, *, share_token: bool, token: str | None) -> BundleAccess:
    """Ask the Hub whether the Space can read ``bundle``, before anything is changed on the Space.

    A repo the token cannot see raises :class:`AssetSourceError`. A public one needs nothing. A private one gets
    ``token`` (else the logged-in token) as the Space secret ``HF_TOKEN`` when ``share_token``; without that consent
    a Space that already has an ``HF_TOKEN`` secret is trusted with a note, and otherwise :class:`BadArgumentError`
    says what to do.
    """
    try:
        private = bool(api.dataset_info(bundle).private)
    except RepositoryNotFoundError as exc:  # also a gated repo, and a private one the token cannot see
        raise AssetSourceError(
            f"The bundle {bundle!r} is not a dataset repo this token can read on the Hugging Face Hub "
            f"({type(exc).__name__}). Publish it first (python -m training.publish BUNDLE_DIR {bundle}), check the "
            "id, or log in as its owner (hf auth login, or HF_TOKEN)."
        ) from exc
    if not private:
        return BundleAccess({}, [])
    if share_token:
        value = token or get_token()
        if not value:
            raise BadArgumentError("--share-token: there is no token to share. Log in with hf auth login, or set "
                                   "HF_TOKEN, or pass --token.")
        return BundleAccess({TOKEN_SECRET: value}, [f"{bundle} is private: your token is stored as the Space secret "
                                                    f"{TOKEN_SECRET} so that the Space can read it."])
    try:
        has_secret = TOKEN_SECRET in api.get_space_secrets(space)
    except RepositoryNotFoundError:  # the Space does not exist yet, so it has no secrets
        has_secret = False
    if has_secret:
        return BundleAccess({}, [f"{bundle} is private; the Space already has the secret {TOKEN_SECRET}, which must "
                                 "be a token that can read it (else the Space serves the offline demo and says why "
                                 "at the top of its page)."])
    raise BadArgumentError(_private_bundle_advice(space, bundle))


def deploy_space(plan: DeployPlan, *, private: bool = False, token: str | None = None, share_token: bool = False,
                 commit_message: str = DEFAULT_MESSAGE) -> tuple[str, list[str]]:
    """Carry out ``plan``: check the bundle's access, create the Space if needed, set its secrets and variables,
    upload its files. Returns the Space URL and notes for the user.

    ``private=True`` creates a missing Space as private; otherwise the Hub's default for its owner applies.
    """
    token = token or os.environ.get("HF_TOKEN") or None
    api = HfApi(token=token)
    access = BundleAccess({}, [])
    if BUNDLE_VARIABLE in plan.variables:  # checked before anything changes, so a refusal leaves the Space as it was
        access = bundle_access(api, plan.repo_id, plan.variables[BUNDLE_VARIABLE], share_token=share_token,
                               token=token)
    # private=False would override an organisation that makes its repos private by default: say only what was asked.
    url = api.create_repo(plan.repo_id, repo_type="space", space_sdk="gradio", exist_ok=True,
                          **({"private": True} if private else {}))
    # Secrets and variables first: the build that the upload starts then runs with the bundle and its token.
    for key, value in access.secrets.items():
        api.add_space_secret(plan.repo_id, key, value, description="read access to the bundle in SEARCH_BUNDLE")
    for key, value in plan.variables.items():
        api.add_space_variable(plan.repo_id, key, value)
    api.upload_folder(
        folder_path=str(plan.root), repo_id=plan.repo_id, repo_type="space", commit_message=commit_message,
        # The exact planned files (escaped, as the patterns are globs), so the upload is what --dry-run lists.
        allow_patterns=[glob.escape(name) for name in plan.files], ignore_patterns=list(IGNORE),
        # Files deleted here are deleted on the Space too, so it never imports a stale module or shows a stale page.
        delete_patterns=[f"{folder}/*" for folder in MIRRORED_DIRS],
    )
    return str(url), access.notes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.deploy_space",
        description="Create (or update) a Gradio Space with this demo: upload app.py, requirements.txt,\n"
                    "packages.txt (if any), README.md with the files it links to (docs/), searchcore/ and\n"
                    "training/ (never tests/, bench/, assets/ or caches), and with --bundle point the Space at\n"
                    f"a published bundle through its {BUNDLE_VARIABLE} variable.",
        epilog="Examples:\n"
               "  python -m training.deploy_space user/semantic-search --dry-run\n"
               "  HF_TOKEN=hf_... python -m training.deploy_space user/semantic-search --bundle user/pascal-search\n"
               "The token comes from --token, else HF_TOKEN, else hf auth login.\n"
               f"A private bundle needs a token on the Space: --share-token (or {SHARE_TOKEN_VARIABLE}=1) stores\n"
               f"yours as the Space secret {TOKEN_SECRET}; without it the deploy is refused (unless the Space\n"
               f"already has that secret).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo_id", metavar="REPO_ID", help="the Space, e.g. user/semantic-search")
    parser.add_argument("--bundle", metavar="HUB_ID",
                        help=f"Hub dataset repo id of a bundle (from training.publish); sets {BUNDLE_VARIABLE}. "
                             "Without it the variable is left as it is and the app uses its default bundle.")
    parser.add_argument("--share-token", action="store_true",
                        help=f"if the bundle is private, store the token this command uses as the Space secret "
                             f"{TOKEN_SECRET}, so the Space can read the bundle (default: ${SHARE_TOKEN_VARIABLE}=1; "
                             f"without either, a private bundle is refused)")
    parser.add_argument("--private", action="store_true",
                        help="create the Space as private (default: the Hub's default for you or your "
                             "organisation; an existing Space keeps its visibility)")
    parser.add_argument("--dry-run", action="store_true", help="list the files and the variable; contact nothing")
    parser.add_argument("--token", help="Hugging Face token with write access (default: $HF_TOKEN)")
    parser.add_argument("--message", default=DEFAULT_MESSAGE, help="commit message")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the project checkout (default: this one)")
    add_debug_flag(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda: _deploy(args), debug=args.debug, hub_hint=PUBLISH_HINT, code=1)


def _deploy(args: argparse.Namespace) -> int:
    share_token = args.share_token or share_token_consent()
    plan = plan_deploy(args.repo_id, bundle=args.bundle, root=args.root)
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.dry_run:
        visibility = "private" if args.private else "the Hub's default visibility"
        print(f"dry run: would create the Gradio Space {plan.repo_id} ({visibility}) if missing and upload "
              f"{len(plan.files)} files from {plan.root}:")
        for name in plan.files:
            print(f"  {name}")
        for key, value in plan.variables.items():
            print(f"would set the Space variable {key}={value}")
        if args.bundle:
            print(f"would first check that {args.bundle} is readable on the Hub; if it is private, "
                  + (f"would store your token as the Space secret {TOKEN_SECRET}" if share_token else
                     f"would refuse unless the Space already has the secret {TOKEN_SECRET} (see --share-token)"))
        else:
            print(f"no --bundle: {BUNDLE_VARIABLE} is left as it is")
        return 0
    url, notes = deploy_space(plan, private=args.private, token=args.token, share_token=share_token,
                              commit_message=args.message)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"deployed {len(plan.files)} files to {url}")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
