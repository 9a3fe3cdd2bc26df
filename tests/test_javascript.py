"""Runs the unit tests of the app's browser scripts (tests/js/*.test.js) with node's own test runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

JS_TESTS = Path(__file__).parent / "js"


def test_browser_scripts_pass_their_unit_tests() -> None:
    node = shutil.which("node")
    assert node, "node is needed for the JavaScript unit tests (scripts/setup.sh --browser installs it)"
    files = sorted(str(p) for p in JS_TESTS.glob("*.test.js"))
    assert files, "no JavaScript unit tests found"
    run = subprocess.run([node, "--test", *files], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
