"""Crash safety of training: three SIGKILLs at seeded random moments, three resumes, nothing lost.

test_train.py kills a run once, right after its first checkpoint; here each resumed run
is killed again at a random moment (mid-step or mid-save), and the final parameters,
loss history and data position must equal an uninterrupted run's exactly.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from brillm_core.checkpoint import load_checkpoint
from brillm_core.cli.train import main as cli_main
from brillm_core.checkpoint import checkpoint_dirs
from tests.test_train import parameters
from tests.toy_grammar import write_toy

ROOT = Path(__file__).resolve().parents[1]
STEPS = 600
KILLS = 3


def newest_step(run: Path) -> int:
    """Step of the newest complete checkpoint (0 when there is none)."""
    found = checkpoint_dirs(run)
    return found[-1][0] if found else 0


def train_until_killed(args: list[str], run: Path, delay: float) -> int:
    """Start ``brillm train``, wait for a new checkpoint, then SIGKILL it ``delay`` seconds later."""
    start = newest_step(run)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "brillm_core", "train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while newest_step(run) <= start and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {err.decode()[-2000:]}"
    return newest_step(run)


def test_three_random_kills_then_resume_equal_an_uninterrupted_run(tmp_path: Path) -> None:
    corpus = write_toy(tmp_path / "toy.txt")
    common = [str(corpus), "--tokenizer", "word", "--hidden-size", "4", "--max-positions", "32", "--seq-len", "12",
              "--batch-size", "8", "--random-negatives", "--negatives", "5", "--max-steps", str(STEPS),
              "--save-every", "10", "--no-progress", "--seed", "4"]
    rng = random.Random(2024)
    killed = tmp_path / "killed"
    reached = []
    for i in range(KILLS):
        resume = ["--resume"] if i else []
        reached.append(train_until_killed([*common, "-o", str(killed), *resume], killed, rng.uniform(0.0, 0.25)))
    assert reached == sorted(reached) and 0 < reached[-1] < STEPS, reached
    assert cli_main(["train", *common, "-o", str(killed), "--resume"]) == 0
    assert cli_main(["train", *common, "-o", str(tmp_path / "whole")]) == 0
    last, whole = checkpoint_dirs(killed)[-1][1], checkpoint_dirs(tmp_path / "whole")[-1][1]
    a, b = parameters(last), parameters(whole)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    resumed = load_checkpoint(last, device="cpu").metadata["training"]
    uninterrupted = load_checkpoint(whole, device="cpu").metadata["training"]
    assert resumed["loss_history"] == uninterrupted["loss_history"]
    assert resumed["data_position"] == uninterrupted["data_position"]
    assert resumed["data_position"]["step"] == STEPS
