"""The one door to the Hugging Face Hub: recognise a repo id, download a snapshot, explain a failure.

Bundles and word vectors both come from the Hub on a networked machine; any failure (offline, missing repo, no
access) becomes one :class:`AssetSourceError` that names the id and says what to pass instead.

:func:`fail_fast` is for command-line runs (the training CLIs call it): a Hub that cannot be reached is given up on
after one try instead of huggingface_hub's retries. The app never calls it, so serving is unchanged.
"""

from __future__ import annotations

import re
import socket
import ssl
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import AssetSourceError

#: Seconds to wait for a connection to the Hub in a command-line run (huggingface_hub's own client waits forever
#: on calls that pass no timeout; its file look-ups wait 10 s, which this matches).
CONNECT_TIMEOUT = 10.0
# host → the connection failure that showed it unreachable in this process (a fresh client after close_session()
# must still know, so this lives outside the client)
_unreachable: dict[str, BaseException] = {}
_installed = False
#: What a failure to reach a server is at bottom, whichever library made the request (all are OSErrors):
#: ConnectionError (refused, reset, and huggingface_hub's OfflineModeIsEnabled), TimeoutError, a host name that does
#: not resolve, a TLS failure, and urllib's URLError (which keeps the socket's error as its reason, not its cause).
NETWORK_ERRORS: tuple[type[OSError], ...] = (ConnectionError, TimeoutError, socket.gaierror, ssl.SSLError,
                                             urllib.error.URLError)


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


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_network(exc: BaseException) -> bool:
    """A failure to reach a server, from any HTTP library: an operating-system network error is in the chain.

    Every transport (httpx, httpx2, requests, urllib) keeps the socket's error (refused, reset, timed out, name not
    found, TLS) as the cause of its own, so looking for that recognises them all without naming a transport's module,
    which changes between versions (huggingface_hub 2 moved from httpx to httpx2).
    """
    return any(isinstance(e, NETWORK_ERRORS) for e in chain(exc))


def _is_hub_type(exc: BaseException) -> bool:
    return (type(exc).__module__ or "").split(".")[0] == "huggingface_hub"


def reason(exc: BaseException, limit: int = 200) -> str:
    """Why a Hub call failed, in one short line: huggingface_hub's messages run over several lines (request ids,
    URLs, advice about its own settings) and would bury the advice that follows them.

    When the Hub was not reached, huggingface_hub's text is about its cache or its offline switch; the transport's
    own error under it (e.g. ``ConnectError: [Errno 111] Connection refused``) says what happened, so it is quoted.
    """
    if is_network(exc):
        exc = next((e for e in chain(exc) if not _is_hub_type(e)), exc)
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[:limit].rstrip() + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def fail_fast(connect_timeout: float = CONNECT_TIMEOUT) -> None:
    """Make huggingface_hub try an unreachable host once per process, with a ``connect_timeout``-second connect.

    Why not a setting: huggingface_hub 2.x has none for retries. ``hf_hub_download`` retries a file that is not cached
    five more times after a failed connection (1 + 2 + 4 + 8 + 8 s of sleep, and a 60 s timeout each), timm asks for
    two files per model, so an unreachable Hub cost a build 55 s and 22 warnings before its message;
    ``HF_HUB_ETAG_TIMEOUT`` and ``HF_HUB_DOWNLOAD_TIMEOUT`` bound each try, not the tries. So this installs, through
    huggingface_hub's documented ``set_client_factory``, a client like its own (same hooks, so ``HF_HUB_OFFLINE`` is
    still obeyed) that remembers a host it could not connect to and answers every later request to that host with
    ``OfflineModeIsEnabled``, the error huggingface_hub itself raises when offline: every download path treats it as
    "no network" (a cached file is still used) and none retries it. Idempotent.
    """
    global _installed
    if _installed:
        return
    # utils.httpx: huggingface_hub's own alias of the HTTP library it runs on (httpx2 in 2.x), kept across its major
    # versions; this client lives inside that library, so it names its connect errors through the alias
    import huggingface_hub
    from huggingface_hub.errors import OfflineModeIsEnabled
    from huggingface_hub.utils import httpx

    base = huggingface_hub.get_session()  # huggingface_hub's default client: its settings are copied, not guessed
    hooks = {name: list(functions) for name, functions in base.event_hooks.items()}
    timeout = httpx.Timeout(base.timeout.read, connect=connect_timeout, write=base.timeout.write,
                            pool=base.timeout.pool)

    class OneTryClient(httpx.Client):
        """huggingface_hub's client, but a host it could not connect to is not tried again in this process."""

        def send(self, request: Any, **kwargs: Any) -> Any:
            host = request.url.host
            if host in _unreachable:
                raise OfflineModeIsEnabled(f"{host} could not be reached earlier in this run; not trying again "
                                           f"({reason(_unreachable[host])}).") from _unreachable[host]
            try:
                return super().send(request, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never connected: not a slow or failed reply
                _unreachable[host] = exc
                raise

    def client() -> Any:
        return OneTryClient(event_hooks=hooks, follow_redirects=base.follow_redirects, timeout=timeout,
                            headers=base.headers)

    huggingface_hub.set_client_factory(client)
    _installed = True
