#!/usr/bin/env python3
"""Training throughput: sparse rows (RowAdamW) against a dense-gradient loop, same model, same run.

Release settings scaled to one CPU: V = 4,000 nodes, d = 32, k = 400 hard negatives,
sequences of 32, about 480,000 own rows (the bigrams of a random uniform token stream
of 495,000 tokens), batch 8. The dense baseline computes the same loss but gathers the
rows by indexing the full ``weights``/``biases`` (so their gradients are dense P x d x d
tensors) and runs AdamW over every row, as the release's training does; it gathers each
batch's rows once rather than once per position, which favours the baseline.

Every trainer is timed ``--repeats`` times over ``--steps`` steps each (after one warm-up
step), the repeats interleaved so that a change in machine load hits every trainer alike;
each repeat builds its trainer afresh, so only one model (several GB) is in memory at once.
It prints each trainer's tokens (predicted positions) per second as min / median / max
over the repeats, and each one's ratio to the first trainer: the ratio of medians and the
spread of the per-repeat ratios. By default it runs with ``brillm train``'s allocator
setting (glibc keeps freed memory, see brillm_core/allocator.py); ``--default-allocator``
measures glibc's default instead (the setting cannot be undone within one process).
To compare another trainer, add an entry to ``TRAINERS``.
Then the two objectives on one model and the same batches, sparse rows, at the KJV sample
models' sizes (V = 1,500, d = 8, batch 32 x 32 tokens; the bigrams of a Zipf-distributed
random stream of 1.2 M tokens own rows): the exact full-vocabulary softmax (own rows + one
shared-row term) against the release's sampled (1 + k)-way loss with k = 400 random
negatives, and the sampled loss with k = V - 1 hard negatives (also exact, by padding every
position to all V targets), each in tokens per second (``--objectives-only`` runs just these).
Usage: python benchmarks/bench_train.py [--steps N] [--repeats R] [--batch-size B] [--threads T] [--tokens N] [--objectives-only]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Any

import torch

from brillm_core.allocator import keep_freed_memory
from brillm_core.config import ModelConfig
from brillm_core.data import BigramCounts, SequenceBatches
from brillm_core.train import TrainSettings, Trainer, init_model

V, D, SEQ, NEGATIVES = 4000, 32, 32, 400
# Trainers compared: label -> TrainSettings fields that differ. The first is the reference.
TRAINERS: dict[str, dict[str, Any]] = {
    "sparse rows, RowAdamW": {"sparse": True, "objective": "sampled"},
    "dense gradients, AdamW": {"sparse": False, "objective": "sampled"},
}


def time_steps(trainer: Trainer, batches: SequenceBatches, first: int, steps: int, batch_size: int) -> float:
    """Tokens per second over ``steps`` steps starting at batch ``first``."""
    start = time.perf_counter()
    for step in range(first, first + steps):
        trainer.step(batches.batch(step), step)
    return steps * batch_size * (SEQ - 1) / (time.perf_counter() - start)


def spread(values: list[float], digits: int = 0) -> str:
    """'min / median / max' of ``values``."""
    return " / ".join(f"{v:,.{digits}f}" for v in (min(values), statistics.median(values), max(values)))


def measure_objective(objective: str, negatives: int, hard: bool, stream: torch.Tensor, counts: BigramCounts, steps: int) -> float:
    """Tokens per second of one objective at V 1,500, d 8, batch 32 (sparse rows), ``steps`` timed steps after a warm-up."""
    edges = counts.edges()
    config = ModelConfig(vocab_size=1500, hidden_size=8, max_positions=512, num_rows=edges.num_rows)
    settings = TrainSettings(hidden_size=8, seq_len=32, batch_size=32, objective=objective, negatives=negatives, hard_negatives=hard)
    trainer = Trainer(init_model(config, edges, 0), settings, counts)
    batches = SequenceBatches(stream, 32, 32, seed=0)
    trainer.step(batches.batch(0), 0)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        trainer.step(batches.batch(step), step)
    rate = steps * 32 * 31 / (time.perf_counter() - start)
    kind = "exact, all V targets" if objective == "exact" else f"sampled, k = {negatives} {'hard' if hard else 'random'}"
    print(f"{kind:28s} {rate:9.0f} tokens/s", flush=True)
    return rate


def compare_objectives(steps: int) -> None:
    """The exact objective against the sampled one, same model sizes, same batches, one run."""
    zipf = 1.0 / torch.arange(1, 1501, dtype=torch.float64)
    stream = torch.multinomial(zipf, 1_200_000, replacement=True, generator=torch.Generator().manual_seed(0))
    counts = BigramCounts.from_stream(stream, 1500)
    print(f"objectives: V 1500, d 8, {counts.keys.numel() + 1:,} parameter rows, batch 32 x 32 tokens, sparse rows")
    sampled = measure_objective("sampled", 400, False, stream, counts, steps)
    padded = measure_objective("sampled", 1499, True, stream, counts, steps)
    exact = measure_objective("exact", 400, False, stream, counts, steps)
    print(f"exact / sampled k=400: {exact / sampled:.2f}x   exact / sampled k=V-1 (the same loss): {exact / padded:.2f}x")


def main() -> None:
    """Build the random model's data, time every trainer in interleaved repeats, print rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per repeat (default 6)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per trainer (default 3)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=495_000,
                        help="length of the random token stream whose bigrams get own rows (default 495,000: "
                             "about 480,000 rows as the release; the dense trainer then needs about 14 GB)")
    parser.add_argument("--default-allocator", action="store_true", help="keep glibc's default allocator")
    parser.add_argument("--objectives-only", action="store_true", help="only the exact-vs-sampled comparison")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.objectives_only:
        compare_objectives(args.steps)
        return
    allocator = "glibc default allocator"
    if not args.default_allocator:
        allocator = "freed memory kept (brillm train)" if keep_freed_memory() else "not glibc: default allocator"
    stream = torch.randint(0, V, (args.tokens,), generator=torch.Generator().manual_seed(0))
    counts = BigramCounts.from_stream(stream, V)
    edges = counts.edges()
    config = ModelConfig(vocab_size=V, hidden_size=D, max_positions=512, num_rows=edges.num_rows)
    print(f"V {V}, d {D}, k {NEGATIVES}, {edges.num_rows:,} parameter rows, batch {args.batch_size} x {SEQ} tokens, "
          f"{args.threads} thread(s), {allocator}; {args.repeats} repeats x {args.steps} steps each", flush=True)
    batches = SequenceBatches(stream, SEQ, args.batch_size, seed=0)
    rates: dict[str, list[float]] = {label: [] for label in TRAINERS}
    for repeat in range(args.repeats):
        for label, fields in TRAINERS.items():
            settings = TrainSettings(hidden_size=D, seq_len=SEQ, batch_size=args.batch_size, negatives=NEGATIVES,
                                     **fields)
            trainer = Trainer(init_model(config, edges, 0), settings, counts)
            trainer.step(batches.batch(0), 0)  # warm-up: first-touch allocations, lazy optimiser state
            rates[label].append(time_steps(trainer, batches, 1, args.steps, args.batch_size))
            del trainer
            gc.collect()
            print(f"  repeat {repeat + 1}: {label:24s} {rates[label][-1]:9,.0f} tokens/s", flush=True)
    reference = next(iter(rates))
    print(f"tokens per second, min / median / max over {args.repeats} repeats:")
    for label, values in rates.items():
        line = f"  {label:24s} {spread(values)}"
        if label != reference:
            ratios = [r / v for r, v in zip(rates[reference], values)]
            line += (f"   {reference} is {statistics.median(rates[reference]) / statistics.median(values):.1f}x "
                     f"(per repeat {spread(ratios, 1)})")
        print(line, flush=True)
    compare_objectives(args.steps)


if __name__ == "__main__":
    main()
