"""Fixtures of the explorer's tests: tiny random checkpoints (V ~ 30, d 4-8), and background jobs held on demand."""

from __future__ import annotations

import string
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from brillm_core import Checkpoint, CharTokenizer, load_checkpoint, random_model
from explorer import job_helper
from explorer.cache import ResultCache

CHARS = list(string.ascii_lowercase + " .,!")  # 30 distinct characters


def make_checkpoint(directory: Path, seed: int = 0, hidden: int = 8, chars: list[str] | None = None) -> Path:
    """Save a random character-level checkpoint and return its directory."""
    chars = chars or CHARS
    model = random_model(len(chars), hidden, 0.3, seed=seed, max_positions=300, name=directory.name)
    metadata = {"training": {"loss": [3.4, 3.1, 2.9, 2.85]}, "evaluation": {"note": "random weights"}}
    return Checkpoint(model, CharTokenizer(chars), metadata).save(directory)


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding two checkpoints, 'alpha' (d=8) and 'beta' (d=4)."""
    root = tmp_path_factory.mktemp("models")
    make_checkpoint(root / "alpha", seed=1, hidden=8)
    make_checkpoint(root / "beta", seed=2, hidden=4)
    return root


def forget_memory(cache: ResultCache) -> None:
    """Empty a cache's in-memory layer, so that its next reads go to the disk (as a new process's would)."""
    with cache._lock:
        cache._memory.clear()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A fresh cache directory."""
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def ckpt(model_root: Path) -> Checkpoint:
    """The 'alpha' checkpoint, loaded on the CPU."""
    return load_checkpoint(model_root / "alpha", device="cpu")


HOLD_SECONDS = 120  # a held job goes on after this, whatever the test did


@pytest.fixture(autouse=True)
def jobs_wait_for_the_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """While the test's flag file (``slow_jobs``) exists, every background job waits before it starts (in its
    own process). Patched before any app of the test is built: an app forks the helper that starts its jobs
    when it is built, and the helper keeps the code it had then."""
    flag = tmp_path / "hold-jobs"
    run = job_helper.run_job

    def held(*args):
        end = time.time() + HOLD_SECONDS
        while flag.exists() and time.time() < end:
            time.sleep(0.05)
        run(*args)

    monkeypatch.setattr(job_helper, "run_job", held)


@pytest.fixture
def slow_jobs(tmp_path: Path) -> Iterator[Path]:
    """The flag file that holds background jobs while it exists (see ``jobs_wait_for_the_flag``). Removed when
    the test ends, so that no held job outlives a failed test and keeps a job slot."""
    flag = tmp_path / "hold-jobs"
    yield flag
    flag.unlink(missing_ok=True)
