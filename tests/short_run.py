"""Two checkpoints of one short ``brillm train`` run on the toy grammar, with a validation text, made through
the command line (as a user makes them): for the tests of what Compare reads from a run's metadata."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .toy_grammar import write_toy

ROOT = Path(__file__).resolve().parents[1]
STEPS = (20, 40)  # the steps of the two checkpoints


def train_short_run(directory: Path) -> list[Path]:
    """Train 40 steps into ``directory``/run, keeping the checkpoints of steps 20 and 40; their paths, oldest first."""
    corpus, validation = write_toy(directory / "toy.txt"), write_toy(directory / "val.txt", 40, seed=1)
    command = [sys.executable, "-m", "brillm_core", "train", str(corpus), "-o", str(directory / "run"),
               "--tokenizer", "word", "--hidden-size", "4", "--max-positions", "32", "--seq-len", "12",
               "--batch-size", "8", "--max-steps", str(STEPS[1]), "--save-every", str(STEPS[0]), "--keep", "0",
               "--validation", str(validation), "--threads", "1", "--no-progress"]
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True, timeout=300)
    return sorted((directory / "run" / "checkpoints").iterdir())
