"""Regenerate docs/screenshots/*.png: runs the browser tests with HASHHUB_SCREENSHOTS set, so every
picture shows a page the tests just checked (real hub and agent servers, benign corpus photos).

    .venv/bin/python docs/make_screenshots.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    env = {**os.environ, "HASHHUB_SCREENSHOTS": str(OUT)}
    tests = ["tests/web/test_hub_pages.py", "tests/web/test_agent_pages.py"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", *tests], cwd=ROOT, env=env)
    print(f"screenshots in {OUT}: {', '.join(sorted(p.name for p in OUT.glob('*.png')))}")
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
