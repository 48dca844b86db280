"""The one door to the Hugging Face Hub: recognise a repo id, download a snapshot, explain a failure.

Bundles and word vectors both come from the Hub on a networked machine; any failure (offline, missing repo, no
access) becomes one :class:`AssetSourceError` that names the id and says what to pass instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .errors import AssetSourceError


def is_repo_id(text: str) -> bool:
    """``user/name`` that is not a relative or absolute path."""
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", text)) and not text.startswith((".", "/"))


def download(repo_id: str, what: str, instead: str, **kwargs: Any) -> Path:
    """``snapshot_download(repo_id, **kwargs)``; on failure an error naming ``what`` and suggesting ``instead``."""
    from huggingface_hub import snapshot_download  # looked up per call, so tests can stand in for the Hub

    try:
        return Path(snapshot_download(repo_id=repo_id, **kwargs))
    except Exception as exc:
        raise AssetSourceError(
            f"Could not download {what} {repo_id!r} from the Hugging Face Hub ({reason(exc)}). "
            "Check the repo id and your network; a private repo also needs a token that can read it (HF_TOKEN, or "
            f"hf auth login; on a Space, the secret HF_TOKEN). Or {instead}."
        ) from exc


def reason(exc: BaseException, limit: int = 200) -> str:
    """Why a Hub call failed, in one short line: huggingface_hub's messages run over several lines (request ids,
    URLs, advice about its own settings) and would bury the advice that follows them."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[:limit].rstrip() + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
