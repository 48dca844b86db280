"""Renew the README's screenshots, docs/screenshot.png, docs/your-photos.png and docs/map.png, from the real app.

    python docs/screenshots.py

Runs the browser test's screenshot tests (tests/test_browser.py) with ``$SEARCH_SCREENSHOTS`` pointing at
docs/: the only way the committed pictures change (a plain test run writes them to a temporary folder). Needs what
the browser test needs: Chromium at /usr/bin/chromium (or ``$CHROMIUM``), and the offline test bundle (built on
first use).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    env = {**os.environ, "SEARCH_SCREENSHOTS": str(ROOT / "docs")}
    command = [sys.executable, "-m", "pytest", "-q", "tests/test_browser.py", "-k", "screenshot"]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
