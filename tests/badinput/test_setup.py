"""scripts/setup.sh on a machine without python3-venv, and over a .venv an earlier failure left."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SETUP = Path(__file__).resolve().parents[2] / "scripts" / "setup.sh"


def run_setup(root: Path, python: str = "python3") -> subprocess.CompletedProcess:
    """Run a copy of setup.sh in ``root`` (it works in the folder above its own)."""
    (root / "scripts").mkdir(parents=True, exist_ok=True)
    shutil.copy(SETUP, root / "scripts" / "setup.sh")
    return subprocess.run(["bash", str(root / "scripts" / "setup.sh")], env={"PATH": "/usr/bin:/bin", "PYTHON": python},
                          capture_output=True, text=True, timeout=60)


def test_missing_venv_module_says_what_to_install(tmp_path: Path) -> None:
    result = run_setup(tmp_path, python="/bin/false")  # a Python that cannot import venv/ensurepip
    assert result.returncode == 1
    assert "sudo apt-get install python3-venv" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_a_venv_without_pip_is_reported_not_used(tmp_path: Path) -> None:
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to("/bin/false")  # no working pip in it
    result = run_setup(tmp_path)
    assert result.returncode == 1
    assert "has no working pip" in result.stderr and "rm -rf .venv" in result.stderr
    assert (tmp_path / ".venv" / "bin" / "python").is_symlink()  # the user's folder is left as it was
