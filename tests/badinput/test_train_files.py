"""Training deletes and writes only what its own process made: planted staging links and folders survive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from brillm_core import load_checkpoint
from brillm_core.data import BigramCounts
from brillm_core.training import TrainingError, TrainSettings, train
from brillm_core.training.rundir import write_checkpoint

from . import corpus

SETTINGS = TrainSettings(tokenizer="char", hidden_size=4, max_positions=16, seq_len=8, batch_size=4, max_steps=2,
                         save_every=1, keep_checkpoints=1)


def _precious(root: Path) -> Path:
    """Someone's folder with a file in a subfolder."""
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "thesis.tex").write_text("\\documentclass{article}\n", encoding="utf-8")
    return root


def test_planted_staging_links_and_folders_are_never_followed_or_deleted(tmp_path: Path) -> None:
    precious = _precious(tmp_path / "precious")
    text = tmp_path / "text.txt"
    text.write_text("the cat sees a ball .\n" * 40, encoding="utf-8")
    root = tmp_path / "run" / "checkpoints"
    root.mkdir(parents=True)
    (root / ".staging-step-00000001").symlink_to(precious, target_is_directory=True)
    (root / ".staging-step-00000002").mkdir()
    (root / ".staging-step-00000002" / "notes.txt").write_text("mine", encoding="utf-8")
    (root / "..staging-step-00000001.tmp-abc123").mkdir()  # what another process's killed save leaves
    newest = train([text], tmp_path / "run", SETTINGS, progress=False)
    assert newest == root / "step-00000002" and load_checkpoint(newest, device="cpu").metadata["training"]["step"] == 2
    assert (precious / "sub" / "thesis.tex").read_text(encoding="utf-8") == "\\documentclass{article}\n"
    assert sorted(os.listdir(precious)) == ["sub"]
    assert (root / ".staging-step-00000001").is_symlink()
    assert (root / ".staging-step-00000002" / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(os.listdir(root)) == ["..staging-step-00000001.tmp-abc123", ".staging-step-00000001",
                                        ".staging-step-00000002", "step-00000002"]


def test_a_planted_link_in_place_of_a_checkpoint_is_refused_not_replaced(tmp_path: Path) -> None:
    precious = _precious(tmp_path / "precious")
    checkpoint = load_checkpoint(corpus.good_checkpoint(tmp_path / "source"), device="cpu")
    counts = BigramCounts.from_stream(torch.tensor([1, 2, 1, 2]), checkpoint.config.vocab_size)
    root = tmp_path / "run" / "checkpoints"
    root.mkdir(parents=True)
    (root / "step-00000003").symlink_to(precious, target_is_directory=True)
    with pytest.raises(TrainingError, match="step-00000003.*exists already"):
        write_checkpoint(tmp_path / "run", 3, checkpoint, counts, {})
    assert (precious / "sub" / "thesis.tex").exists() and sorted(os.listdir(precious)) == ["sub"]
    assert sorted(os.listdir(root)) == ["step-00000003"]  # the staging folder went with the failure
