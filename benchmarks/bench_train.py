#!/usr/bin/env python3
"""Training throughput: sparse rows (RowAdamW) against a dense-gradient loop, same model, same run.

Release settings scaled to one CPU: V = 4,000 nodes, d = 32, k = 400 hard negatives,
sequences of 32, about 480,000 own rows (the bigrams of a random uniform token stream
of 495,000 tokens), batch 8. The dense baseline computes the same loss but gathers the
rows by indexing the full ``weights``/``biases`` (so their gradients are dense P x d x d
tensors) and runs AdamW over every row, as the release's training does; it gathers each
batch's rows once rather than once per position, which favours the baseline.
Prints tokens (predicted positions) per second for both and their ratio, first with
glibc's default allocator, then with freed memory kept in the process (what
``brillm train`` sets, see brillm_core/allocator.py).
Then the two objectives on one model and the same batches, sparse rows, at the KJV sample
models' sizes (V = 1,500, d = 8, batch 32 x 32 tokens; the bigrams of a Zipf-distributed
random stream of 1.2 M tokens own rows): the exact full-vocabulary softmax (own rows + one
shared-row term) against the release's sampled (1 + k)-way loss with k = 400 random
negatives (the old samples' recipe), and the sampled loss with k = V - 1 hard negatives
(also exact, by padding every position to all V targets), each in tokens per second.
Usage: python benchmarks/bench_train.py [--steps N] [--batch-size B] [--threads T] [--objectives-only]
"""

from __future__ import annotations

import argparse
import gc
import time

import torch

from brillm_core.allocator import keep_freed_memory
from brillm_core.config import ModelConfig
from brillm_core.data import BigramCounts, SequenceBatches
from brillm_core.train import TrainSettings, Trainer, init_model


def measure(sparse: bool, stream: torch.Tensor, counts: BigramCounts, args: argparse.Namespace) -> float:
    """Tokens per second of ``args.steps`` timed steps after one warm-up step (the sampled objective)."""
    edges = counts.edges()
    config = ModelConfig(vocab_size=4000, hidden_size=32, max_positions=512, num_rows=edges.num_rows)
    settings = TrainSettings(hidden_size=32, seq_len=32, batch_size=args.batch_size, objective="sampled", negatives=400, sparse=sparse)
    trainer = Trainer(init_model(config, edges, 0), settings, counts)
    batches = SequenceBatches(stream, 32, args.batch_size, seed=0)
    steps = args.steps if sparse else max(2, args.steps // 4)
    trainer.step(batches.batch(0), 0)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        loss = trainer.step(batches.batch(step), step)
    seconds = time.perf_counter() - start
    rate = steps * args.batch_size * 31 / seconds
    kind = "sparse rows, RowAdamW" if sparse else "dense gradients, AdamW"
    print(f"{kind:24s} {steps:3d} steps  {seconds / steps:7.3f} s/step  {rate:9.0f} tokens/s  (loss {loss:.3f})", flush=True)
    return rate


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
    """Build the random model's data, time both trainers, print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--objectives-only", action="store_true", help="only the exact-vs-sampled comparison")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.objectives_only:
        compare_objectives(args.steps)
        return
    stream = torch.randint(0, 4000, (495_000,), generator=torch.Generator().manual_seed(0))
    counts = BigramCounts.from_stream(stream, 4000)
    print(f"V 4000, d 32, k 400, {counts.keys.numel() + 1:,} parameter rows, batch {args.batch_size} x 32 tokens, {args.threads} thread(s)")
    for allocator in ("default allocator", "freed memory kept (brillm train)"):
        if allocator != "default allocator" and not keep_freed_memory():
            print("not glibc: the allocator setting does not apply here")
            break
        print(allocator)
        sparse = measure(True, stream, counts, args)
        gc.collect()
        dense = measure(False, stream, counts, args)
        gc.collect()
        print(f"sparse / dense: {sparse / dense:.1f}x")
    compare_objectives(args.steps)


if __name__ == "__main__":
    main()
