"""Shared bits of the training CLIs: a tqdm bar driven by searchcore's ``report(fraction, message)`` callbacks."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm


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

        yield report
