"""The training loop: ``train`` sets a run up (data, start or resume, trainer) and steps it to --max-steps.

Every --save-every steps it records the validation perplexity (with a held-out text),
writes a checkpoint through ``rundir`` and prunes old ones; --patience ends the run early.
The process's thread count is its caller's business (``brillm train --threads``).
"""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist

from ..checkpoint import Checkpoint, checkpoint_dirs, resolve_checkpoint
from ..data import BigramCounts, CorpusFile, SequenceBatches, corpus_lines, read_corpus, tokenize_lines
from ..errors import TrainingError
from ..evaluate import windows
from .distributed import DistInfo, broadcast_text, init_distributed, rank_checksums, training_device
from .init import hold_energy_input, holds_energy_input, start_model
from .rundir import (
    STATE_FILE,
    TRAIN_FORMAT,
    TRAIN_VERSION,
    check_writable,
    load_resume_point,
    make_fingerprint,
    prune_checkpoints,
    shared_tokenizer,
    write_checkpoint,
)
from .settings import TrainSettings
from .trainer import Trainer

@dataclass
class Run:
    """What a training loop needs besides the trainer: data, provenance and history."""

    settings: TrainSettings
    info: DistInfo
    files: list[CorpusFile]
    fingerprint: dict[str, Any]
    stream: torch.Tensor
    unknown: int
    batches: SequenceBatches
    training: dict[str, Any]
    validation: list[torch.Tensor] = dataclasses.field(default_factory=list)

    def metadata(self, trainer: Trainer, step: int, history: list[float], seconds: float, rate: float) -> dict[str, Any]:
        """metadata.json of the checkpoint taken after ``step`` steps (optimiser scalars included)."""
        per_step = self.settings.batch_size * (self.settings.seq_len - 1) * self.info.world
        return {
            "source": "brillm train",
            "training": {
                "format": TRAIN_FORMAT,
                "version": TRAIN_VERSION,
                "run_id": self.training["run_id"],
                "step": step,
                "settings": dataclasses.asdict(self.settings),
                "fingerprint": self.fingerprint,
                "corpus": [f.describe() for f in self.files],
                "corpus_tokens": int(self.stream.numel()),
                "unknown_pieces": self.unknown,
                "sequences": self.batches.num_sequences,
                "negatives_per_position": trainer.k,
                "data_position": self.batches.position(step),
                "rng": {"seed": self.settings.seed, "scheme": "data order from (seed, epoch); negatives from (seed, step, rank)"},
                "loss_history": history,
                "validation_history": self.training.get("validation_history", []),
                "train_seconds": seconds,
                "init_seconds": self.training.get("init_seconds", 0.0),  # the start's own fit (--init counts, context)
                "tokens_per_second": rate,
                "tokens_seen": step * per_step,
                "world_size": self.info.world,
                "distributed": type(trainer.loss_fn).__name__ if self.info.active else None,
                "device": str(trainer.model.device),
                "own_rows": trainer.model.config.own_rows,
                "optimizer_state_file": STATE_FILE,
                "optimizer_scalars": trainer.state()[1],
            },
        }


def train(
    corpus: Sequence[str | Path],
    run_dir: str | Path,
    settings: TrainSettings,
    *,
    resume: bool = False,
    tokenizer_file: str | None = None,
    validation: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Train (or resume) a run in ``run_dir``; returns the newest checkpoint's path.

    With a ``validation`` text, every checkpoint records its full-vocabulary perplexity
    on it (windows of --seq-len, as ``brillm eval`` scores), and --patience stops the
    run after that many checkpoints without a new best.
    """
    run_dir = Path(run_dir)
    settings = settings.for_tokenizer(tokenizer_file)
    device = training_device()
    info = init_distributed(device)
    files = read_corpus(corpus)
    check_writable(run_dir)
    lines = corpus_lines(files)
    fingerprint = make_fingerprint(files, settings, info, tokenizer_file)
    point = load_resume_point(run_dir, fingerprint) if resume else None
    if point is not None:
        model, tokenizer, training = point.checkpoint.model, point.checkpoint.tokenizer, point.training
    else:
        if checkpoint_dirs(run_dir):
            raise TrainingError(f"{run_dir} already holds checkpoints of a run; pass --resume to continue it or choose a new -o directory")
        tokenizer = shared_tokenizer(settings, lines, run_dir, info, tokenizer_file, device)
        training = {"run_id": uuid.uuid4().hex, "loss_history": [], "train_seconds": 0.0}
    stream, unknown = tokenize_lines(tokenizer, lines)
    counts = BigramCounts.from_stream(stream, tokenizer.vocab_size)
    batches = SequenceBatches(stream, settings.seq_len, settings.batch_size, settings.seed, info.world, info.rank)
    if point is None:
        model, training["init_seconds"] = start_model(settings, tokenizer, counts, stream, run_dir.name,
                                                      _fit_reporter(progress and info.rank == 0))
    training["run_id"] = broadcast_text(training["run_id"], info, device)  # every rank records rank 0's run id
    model.to(device)
    model.train()
    trainer = Trainer(model, settings, counts, info)
    if holds_energy_input(settings):
        hold_energy_input(trainer.params.weights.weight, settings.hidden_size)
    if point is not None:
        trainer.load_state(point.state, training.get("optimizer_scalars", {}))
    held = windows(tokenize_lines(tokenizer, corpus_lines(read_corpus([validation])))[0], settings.seq_len) if validation else []
    run = Run(settings, info, files, fingerprint, stream, unknown, batches, training, held)
    return _loop(run, trainer, Checkpoint(model, tokenizer, {}), counts, run_dir, progress)


def _fit_reporter(show: bool) -> Callable[[int, float], None] | None:
    """Progress lines of the --init context fit (trigram NLL per training trigram), or None when quiet."""
    if not show:
        return None
    return lambda iteration, nll: print(f"context fit, iteration {iteration}: trigram NLL {nll:.4f}", flush=True)


MAX_MEAN_NLL = 700.0  # exp() of more overflows a float: a diverged run, not a perplexity


def _validate(run: Run, trainer: Trainer, step: int) -> bool:
    """Record the validation perplexity after ``step``; True when --patience says to stop."""
    nll, predicted = trainer.validation_nll(run.validation)
    mean = nll / predicted
    if not mean < MAX_MEAN_NLL:  # also NaN: a diverged model has no perplexity to record
        raise TrainingError(f"the validation text's mean loss became {mean:.4g} at step {step}; lower --lr and start again")
    history = run.training.setdefault("validation_history", [])
    history.append([step, math.exp(mean)])
    patience = run.settings.patience
    if not patience or len(history) <= patience:
        return False
    best_before = min(ppl for _, ppl in history[:-patience])
    return min(ppl for _, ppl in history[-patience:]) >= best_before


def _loop(run: Run, trainer: Trainer, checkpoint: Checkpoint, counts: BigramCounts, run_dir: Path, progress: bool) -> Path:
    """Steps from the run's position to --max-steps, checkpointing every --save-every steps."""
    from tqdm import tqdm

    settings, info = run.settings, run.info
    start = int(run.training.get("step", 0))
    history: list[float] = list(run.training.get("loss_history", []))
    seconds = float(run.training.get("train_seconds", 0.0))
    per_step = settings.batch_size * (settings.seq_len - 1) * info.world
    last = checkpoint_dirs(run_dir)[-1][1] if start else None
    bar = tqdm(total=settings.max_steps, initial=start, unit="step", disable=not progress or info.rank != 0, dynamic_ncols=True)
    if run.validation and start == 0:  # the starting point (e.g. the count initialisation) is part of the record
        _validate(run, trainer, 0)
        bar.write(f"step 0: validation perplexity {run.training['validation_history'][-1][1]:.2f}")
    started = time.perf_counter()
    if start == settings.max_steps == 0:  # --max-steps 0: the start itself is the result
        checkpoint.metadata = run.metadata(trainer, 0, history, seconds, 0.0)
        if info.rank == 0:
            last = write_checkpoint(run_dir, 0, checkpoint, counts, trainer.state()[0])
    for step in range(start, settings.max_steps):
        loss = trainer.step(run.batches.batch(step), step)
        if not math.isfinite(loss):
            raise TrainingError(f"the loss became {loss} at step {step + 1}; lower --lr and start again")
        history.append(loss)
        elapsed = time.perf_counter() - started
        rate = (step + 1 - start) * per_step / max(elapsed, 1e-9)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{rate:,.0f}", refresh=False)
        done = step + 1
        stop = False
        if done % settings.save_every == 0 or done == settings.max_steps:
            if run.validation:
                stop = _validate(run, trainer, done)
                bar.write(f"step {done}: validation perplexity {run.training['validation_history'][-1][1]:.2f}")
            checkpoint.metadata = run.metadata(trainer, done, history, seconds + elapsed, rate)
            if info.active:
                checkpoint.metadata["training"]["rank_checksums"] = rank_checksums(trainer.model)
            if info.rank == 0:
                last = write_checkpoint(run_dir, done, checkpoint, counts, trainer.state()[0])
                prune_checkpoints(run_dir, settings.keep_checkpoints)
            if info.active:
                dist.barrier()
        if stop:
            bar.write(f"early stop after step {done}: no better validation perplexity in {settings.patience} checkpoints")
            break
    bar.close()
    if info.active:
        dist.barrier()
    return last if last is not None else resolve_checkpoint(run_dir)
