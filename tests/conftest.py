"""Shared fixtures: small random models and checkpoints made on the fly (no files shipped)."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from brillm_core import Checkpoint, CharTokenizer, random_model


def make_checkpoint(vocab_size: int = 12, hidden: int = 6, own: float = 0.3, seed: int = 0) -> Checkpoint:
    """A random model with a character tokeniser whose first node is <unk>."""
    chars = ["<unk>"] + list(string.ascii_lowercase + string.digits + " .,")[: vocab_size - 1]
    return Checkpoint(random_model(vocab_size, hidden, own, seed=seed), CharTokenizer(chars))


@pytest.fixture
def small_checkpoint() -> Checkpoint:
    """V = 12, d = 6, 30 % own edges."""
    return make_checkpoint()


@pytest.fixture
def saved_checkpoint(tmp_path: Path) -> Path:
    """A small checkpoint saved to a temporary directory."""
    return make_checkpoint().save(tmp_path / "ckpt")


def pytest_configure(config: pytest.Config) -> None:
    """Let parallel runs on one machine keep apart: DASH_TEST_PORT_BASE moves dash_duo's first port."""
    import os

    base = os.environ.get("DASH_TEST_PORT_BASE")
    if base:
        from dash.testing.application_runners import BaseDashRunner

        BaseDashRunner._next_port = int(base)
