"""Shared fixtures: an isolated cache, and the real offline bundle (Tux Paint photos, EfficientNet-Lite0, GloVe 50d).

The offline bundle is built once per test cache (``$SEARCH_TEST_CACHE``, default ``.cache/test`` in the repo) and
reused by every quality and app test; a clean checkout (CI) builds it on first use, in a few minutes. Nothing here
touches the network.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_CACHE = Path(os.environ.get("SEARCH_TEST_CACHE", REPO / ".cache" / "test")).resolve()
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test that reached for the Hub would fail loudly, not hang


@pytest.fixture(scope="session")
def test_cache() -> Path:
    TEST_CACHE.mkdir(parents=True, exist_ok=True)
    return TEST_CACHE


@pytest.fixture(scope="session")
def offline_bundle(test_cache: Path) -> Path:
    """The app's default bundle, built for real from the offline assets, with its trained head."""
    from searchcore.build import offline

    old = os.environ.get("SEARCH_CACHE_DIR")
    os.environ["SEARCH_CACHE_DIR"] = str(test_cache)
    try:
        return offline.ensure_offline_bundle(collection="tuxpaint")
    finally:
        if old is None:
            os.environ.pop("SEARCH_CACHE_DIR", None)
        else:
            os.environ["SEARCH_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def offline_engine(offline_bundle: Path, test_cache: Path):
    from searchcore import load_engine

    os.environ["SEARCH_CACHE_DIR"] = str(test_cache)  # word vectors convert into the test cache once
    return load_engine(offline_bundle)
