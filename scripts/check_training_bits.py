#!/usr/bin/env python3
"""Check that this tree trains bit for bit as another revision does.

Runs short ``brillm train`` recipes (every objective, start, schedule, tokenizer kind,
sparse and dense, validation, resume, and a run of ``--base`` resumed by this tree) on a
small generated corpus with this tree's ``brillm_core`` and with the one of ``--base``
(default ``main``), each in its own process, and compares every checkpoint: parameters,
optimiser state, bigram counts, config, tokenizer, the run's fingerprint and the recorded
loss and validation histories must be identical.
A refactoring of the training code must pass it; a change meant to move the numbers
does not (and bumps ENGINE_VERSION instead).

Usage: python scripts/check_training_bits.py [--base REF] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--hidden-size", "6", "--max-positions", "32", "--seq-len", "12", "--batch-size", "8", "--threads", "1"]
RECIPES: dict[str, list[str]] = {
    "exact-word": ["--tokenizer", "word", "--max-steps", "12", "--save-every", "6", "--keep", "0"],
    "exact-bpe-shared-rows": ["--tokenizer", "bpe", "--vocab-size", "300", "--min-count", "3", "--max-steps", "10",
                              "--save-every", "5", "--validation", "{held}", "--patience", "1", "--keep", "0"],
    "sampled-hard": ["--tokenizer", "word", "--objective", "sampled", "--negatives", "20", "--min-count", "2",
                     "--max-steps", "10", "--save-every", "10"],
    "sampled-random-dense": ["--tokenizer", "word", "--objective", "sampled", "--random-negatives", "--negatives", "20",
                             "--dense", "--max-steps", "10", "--save-every", "10", "--seed", "7"],
    "exact-dense": ["--tokenizer", "word", "--dense", "--min-count", "2", "--max-steps", "8", "--save-every", "8"],
    "counts-code-cosine": ["--tokenizer", "word", "--init", "counts", "--init-code", "0.5", "--schedule", "cosine",
                           "--warmup", "3", "--weight-decay", "0.1", "--lr-weights", "1e-2", "--max-steps", "10",
                           "--save-every", "10"],
    "counts-silent": ["--tokenizer", "word", "--init", "counts", "--min-count", "2", "--max-steps", "6", "--save-every", "6"],
    "context": ["--tokenizer", "word", "--init", "context", "--context-iterations", "5", "--context-l2", "0.5",
                "--max-steps", "6", "--save-every", "6", "--validation", "{held}"],
    "char-linear": ["--tokenizer", "char", "--schedule", "linear", "--adam-eps", "1e-4", "--lr-biases", "2e-2",
                    "--lr-positions", "1e-1", "--max-steps", "8", "--save-every", "4", "--keep", "0"],
    "start-only": ["--tokenizer", "word", "--max-steps", "0"],
}
RESUMED = ["--tokenizer", "word", "--objective", "sampled", "--random-negatives", "--negatives", "9",
           "--save-every", "5", "--seed", "3"]
COMPARED_FILES = ("model.safetensors", "training_state.safetensors", "bigram_counts.safetensors", "config.json",
                  "tokenizer.json", "chars.json")
COMPARED_TRAINING = ("step", "fingerprint", "loss_history", "validation_history", "data_position", "optimizer_scalars",
                     "corpus_tokens", "sequences", "own_rows")


def write_corpus(path: Path, lines: int, seed: int) -> None:
    """A Markov chain over 40 words: enough structure to learn, some rare bigrams for shared rows."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(40)]
    follow = {w: rng.sample(words, 6) for w in words}
    out = []
    for _ in range(lines):
        w, line = rng.choice(words[:8]), []
        for _ in range(rng.randint(4, 12)):
            line.append(w)
            w = rng.choice(follow[w]) if rng.random() < 0.9 else rng.choice(words)
        out.append(" ".join(line) + " .")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def export(ref: str, into: Path) -> Path:
    """``brillm_core`` of git revision ``ref``, extracted under ``into``."""
    archive = into / "base.tar"
    with open(archive, "wb") as handle:
        subprocess.run(["git", "-C", str(ROOT), "archive", ref, "brillm_core"], stdout=handle, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def train(tree: Path, work: Path, args: list[str], out: Path) -> None:
    """``brillm train`` with the ``brillm_core`` of ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "brillm_core.cli.train", "train", str(work / "corpus.txt"), "-o", str(out),
           "--no-progress", *SMALL, *args]
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with {tree}:\n{done.stderr[-3000:]}")


def differences(a: Path, b: Path) -> list[str]:
    """What differs between two run directories' checkpoints."""
    found = []
    steps_a = sorted(p.name for p in (a / "checkpoints").iterdir())
    steps_b = sorted(p.name for p in (b / "checkpoints").iterdir())
    if steps_a != steps_b:
        return [f"checkpoints {steps_a} vs {steps_b}"]
    for step in steps_a:
        ca, cb = a / "checkpoints" / step, b / "checkpoints" / step
        for name in COMPARED_FILES:
            fa, fb = ca / name, cb / name
            if fa.exists() != fb.exists() or (fa.exists() and fa.read_bytes() != fb.read_bytes()):
                found.append(f"{step}/{name}")
        ta = json.loads((ca / "metadata.json").read_text())["training"]
        tb = json.loads((cb / "metadata.json").read_text())["training"]
        found += [f"{step}/metadata training.{k}" for k in COMPARED_TRAINING if ta.get(k) != tb.get(k)]
    return found


def main() -> int:
    """Run every recipe with both trees; print each result; exit 1 on any difference."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="main", help="git revision to compare with (default main)")
    parser.add_argument("--only", nargs="+", choices=[*RECIPES, "resume", "resume-across"], help="run only these recipes")
    args = parser.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="brillm-bits-") as tmp:
        work = Path(tmp)
        write_corpus(work / "corpus.txt", 600, seed=0)
        write_corpus(work / "held.txt", 60, seed=1)
        trees = {"base": export(args.base, work), "this": ROOT}
        for name in args.only or [*RECIPES, "resume", "resume-across"]:
            for label, tree in trees.items():
                out = work / label / name
                if name == "resume":  # 5 steps, then resumed to 10: compared with the same in the other tree
                    train(tree, work, [*RESUMED, "--max-steps", "5"], out)
                    train(tree, work, [*RESUMED, "--max-steps", "10", "--resume"], out)
                elif name == "resume-across":  # a run of the other tree resumed by this one, and by itself
                    train(trees["base"], work, [*RESUMED, "--max-steps", "5"], out)
                    train(tree, work, [*RESUMED, "--max-steps", "10", "--resume"], out)
                else:
                    train(tree, work, [a.replace("{held}", str(work / "held.txt")) for a in RECIPES[name]], out)
            diff = differences(work / "base" / name, work / "this" / name)
            failed += bool(diff)
            print(f"{name:24s} {'identical' if not diff else 'DIFFERS: ' + ', '.join(diff)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
