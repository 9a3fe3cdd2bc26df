"""The run directory: checkpoint writing and pruning, resume, the run's fingerprint and its shared tokeniser.

Layout: ``RUN/checkpoints/step-NNNNNNNN/`` are complete checkpoints (engine files +
``bigram_counts.safetensors`` + ``training_state.safetensors``). Each is written in a
staging folder this process makes under a unique name, then renamed into place, so an
interruption never damages an earlier one, and no folder or link the process did not make
is ever written into or deleted. ``--resume`` restarts from the newest checkpoint after
checking the run's fingerprint (corpus, fixed settings, world size, tokenizer file); the
data order and negatives are functions of (seed, step), so the continuation is bit for bit
the uninterrupted run.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.distributed as dist
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..checkpoint import CHECKPOINTS, Checkpoint, checkpoint_dirs, load_checkpoint
from ..data import COUNTS_FILE, BigramCounts, CorpusFile, build_tokenizer, reuse_tokenizer
from ..errors import BriLLMError, TrainingError
from ..tokenizer import NodeTokenizer, load_tokenizer
from .distributed import DistInfo, broadcast_text
from .settings import TrainSettings

TRAIN_FORMAT = "brillm-train"
TRAIN_VERSION = 1
STATE_FILE = "training_state.safetensors"


def _fsync_tree(path: Path) -> None:
    """Flush every file of a directory and the directory entry itself."""
    for name in os.listdir(path):
        if not (path / name).is_file():
            continue
        with open(path / name, "rb") as handle:
            os.fsync(handle.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_writable(run_dir: Path) -> None:
    """Fail now, not at the first save after the training work, if checkpoints cannot be written."""
    root = Path(run_dir) / CHECKPOINTS
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise TrainingError(f"cannot write checkpoints into {root}: {exc.strerror or exc}") from exc


def write_checkpoint(run_dir: Path, step: int, checkpoint: Checkpoint, counts: BigramCounts, state: dict[str, torch.Tensor]) -> Path:
    """Write a complete checkpoint in a staging folder of this process's own, then rename it to ``step-NNNNNNNN``.

    Earlier checkpoints are never opened for writing, so a failure (a full disk, say)
    leaves them intact. The staging folder gets a unique name from ``mkdtemp``, so a file,
    folder or link planted under a staging-like name is never followed or removed; an
    existing ``step-NNNNNNNN`` is never replaced.
    """
    root = Path(run_dir) / CHECKPOINTS
    final = root / f"step-{step:08d}"
    previous = checkpoint_dirs(run_dir)
    staging: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, "it exists already and was not written by this run", str(final))
        staging = Path(tempfile.mkdtemp(prefix=f".staging-step-{step:08d}-", dir=root))
        written = staging / final.name
        checkpoint.save(written)
        counts.save(written / COUNTS_FILE)
        save_file(state, str(written / STATE_FILE))
        _fsync_tree(written)
        os.rename(written, final)
        _fsync_tree(root)
    except (BriLLMError, OSError, SafetensorError, RuntimeError) as exc:
        last = previous[-1][1] if previous else "none yet"
        raise TrainingError(f"could not write checkpoint {final}: {exc}; the last good checkpoint ({last}) is intact") from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    checkpoint.path = final
    return final


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (0 keeps all).

    Nothing else is removed: a staging folder left by an interrupted save belongs to the
    process that made it, and a link is never followed (``rmtree`` refuses one).
    """
    if keep:
        for _, path in checkpoint_dirs(run_dir)[:-keep]:
            shutil.rmtree(path, ignore_errors=True)


@dataclass
class ResumePoint:
    """What a resumed run restores from its newest checkpoint."""

    checkpoint: Checkpoint
    training: dict[str, Any]
    state: dict[str, torch.Tensor]


def load_resume_point(run_dir: Path, fingerprint: dict[str, Any]) -> ResumePoint:
    """Newest checkpoint of ``run_dir``, checked to belong to a run with this fingerprint."""
    found = checkpoint_dirs(run_dir)
    if not found:
        raise TrainingError(f"nothing to resume: {run_dir} holds no {CHECKPOINTS}/step-* from `brillm train`; drop --resume to start a new run")
    path = found[-1][1]
    hint = "delete that directory to resume from the previous checkpoint, or start a new run without --resume"
    try:
        ck = load_checkpoint(path, device="cpu")
        state = load_file(str(path / STATE_FILE))
    except (BriLLMError, SafetensorError, OSError) as exc:
        raise TrainingError(f"checkpoint {path} is corrupt or incomplete ({exc}); {hint}") from exc
    training = ck.metadata.get("training")
    if not isinstance(training, dict) or training.get("format") != TRAIN_FORMAT:
        raise TrainingError(f"{path} was not written by `brillm train` (no training metadata); {hint}")
    if training.get("version") != TRAIN_VERSION:
        raise TrainingError(f"{path} has training format version {training.get('version')}, this build reads {TRAIN_VERSION}")
    theirs = training.get("fingerprint", {})
    diffs = [f"{k}: checkpoint {theirs.get(k)!r}, now {v!r}" for k, v in fingerprint.items() if theirs.get(k) != v]
    if diffs:
        raise TrainingError(f"{run_dir} belongs to another run (different data or settings): " + "; ".join(diffs) + ". Use the original corpus and settings, or a new -o directory")
    return ResumePoint(ck, training, state)


def make_fingerprint(files: Sequence[CorpusFile], settings: TrainSettings, info: DistInfo, tokenizer_file: str | None) -> dict[str, Any]:
    """What must be identical for a resumed run to be the same run."""
    return {
        "corpus_sha256": [f.sha256 for f in files],
        "settings": settings.fixed(),
        "world_size": info.world,
        "tokenizer_file": tokenizer_file,
    }


def shared_tokenizer(settings: TrainSettings, lines: list[str], run_dir: Path, info: DistInfo, tokenizer_file: str | None,
                     device: torch.device) -> NodeTokenizer:
    """Train (or load) the tokeniser on rank 0; other ranks read rank 0's copy so all agree.

    The copy goes to a folder rank 0 makes under a unique name and removes afterwards.
    """
    if info.rank == 0:
        if tokenizer_file:
            tokenizer = reuse_tokenizer(tokenizer_file, settings.vocab_size if settings.tokenizer != "char" else None)
        else:
            tokenizer = build_tokenizer(settings.tokenizer, lines, settings.vocab_size)
    if not info.active:
        return tokenizer
    staging = ""
    if info.rank == 0:
        staging = tempfile.mkdtemp(prefix=".tokenizer-", dir=run_dir)
        tokenizer.save(Path(staging))
    staging = broadcast_text(staging, info, device)
    if info.rank != 0:
        tokenizer = load_tokenizer(Path(staging))
    dist.barrier()
    if info.rank == 0:
        shutil.rmtree(staging, ignore_errors=True)
    return tokenizer
