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
Then the objectives at the KJV sample models' sizes (V = 1,500, d = 10, an own row per bigram seen
twice, batch 32 x 32
tokens, sparse rows), same batches, interleaved repeats as above: the exact full-vocabulary
softmax, the release's sampled (1 + k)-way loss with k = 400 random negatives, and the
previous exact implementation (commit 2c359c4, reproduced here as ``previous_exact_loss``,
the baseline of the speed-up). Data: the KJV training text (``KJV_TEXT``, tokenised by
kjv-final's tokenizer) when present, else a Markov stream drawn from kjv-final's bigram
table. ``--epoch`` then times one full epoch of that stream with the exact objective
(``--objectives-only`` runs just these).
Usage: python benchmarks/bench_train.py [--steps N] [--repeats R] [--batch-size B] [--threads T] [--tokens N]
       [--objectives-only] [--kjv-tokens N] [--epoch]
"""

from __future__ import annotations

import argparse
import functools
import gc
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from brillm_core.allocator import keep_freed_memory
from brillm_core.config import ModelConfig
from brillm_core.data import BigramCounts, SequenceBatches, corpus_lines, read_corpus, tokenize_lines
from brillm_core.model import edge_outputs, memory_signal, start_signal
from brillm_core.tokenizer import load_tokenizer
from brillm_core.training import TrainSettings
from brillm_core.training.init.random import init_model
from brillm_core.training.objective import Objective, step_pe
from brillm_core.training.trainer import Trainer

V, D, SEQ, NEGATIVES = 4000, 32, 32, 400
KJV_V = 1500
# The KJV sample models' recipe (scripts/build_sample_models.sh): its "exact" line below is the recipe's speed.
KJV_D, KJV_MIN_COUNT, KJV_STEPS = 10, 2, 12_000
KJV_MODEL = Path(__file__).resolve().parents[1] / "sample_models" / "kjv-final"
KJV_TEXT = Path("/tmp/brillm-samples/kjv/train.txt")
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


def kjv_like_data(tokens: int, seed: int = 0) -> tuple[BigramCounts, torch.Tensor, str]:
    """Bigram counts and a token stream at the KJV sample models' scale, and where they come from.

    The KJV training text tokenised by the sample model's tokenizer when present at
    ``KJV_TEXT``; otherwise the sample model's own bigram table (its edge table: the same
    own rows) and a ``tokens``-long stream drawn from it as a Markov chain (1,000 chains
    run side by side), so each position's own-row count follows KJV's distribution.
    """
    if KJV_TEXT.is_file():
        stream, _ = tokenize_lines(load_tokenizer(KJV_MODEL), corpus_lines(read_corpus([KJV_TEXT])))
        return BigramCounts.from_stream(stream, KJV_V), stream, f"the KJV text {KJV_TEXT} ({stream.numel():,} tokens)"
    table = BigramCounts.load(KJV_MODEL / "bigram_counts.safetensors", KJV_V)
    gen = torch.Generator().manual_seed(seed)
    sources = table.keys // KJV_V
    cum = torch.cumsum(table.counts.double(), 0)
    before = torch.cat([cum.new_zeros(1), cum])[table.edges().indptr]  # mass of all earlier sources' bigrams
    mass = before[1:] - before[:-1]
    chains, length = 1000, -(-tokens // 1000)
    state = torch.multinomial(table.unigram.double(), chains, replacement=True, generator=gen)
    state[mass[state] == 0] = int(table.unigram.argmax())  # a source seen only last has no successor
    steps = [state]
    for _ in range(length - 1):
        u = torch.rand(chains, generator=gen, dtype=torch.float64)
        pick = torch.searchsorted(cum, before[state] + u * mass[state], right=True).clamp(max=cum.numel() - 1)
        state = table.keys[pick] % KJV_V
        state = torch.where(mass[state] > 0, state, sources[pick])  # stay put rather than end the chain
        steps.append(state)
    stream = torch.stack(steps, 1).reshape(-1)[:tokens]
    return table, stream, f"a {tokens:,}-token Markov stream drawn from {KJV_MODEL.name}'s bigram table"


def previous_exact_loss(params: Objective, ids: torch.Tensor) -> torch.Tensor:
    """THE PREVIOUS IMPLEMENTATION (commit 2c359c4), kept here only as the benchmark's baseline.

    Same loss; it gathered a d x d matrix per (position, own row) pair and ran the
    softmax step by step.
    """
    d, V = params.hidden_size, params.vocab_size
    B, T = ids.shape
    sources, gold = ids[:, :-1].T.contiguous(), ids[:, 1:].T.contiguous()
    flat = sources.reshape(-1)
    first, count = params.edges.indptr[flat] + 1, params.edges.indptr[flat + 1] - params.edges.indptr[flat]
    owner = torch.repeat_interleave(torch.arange(flat.numel()), count)
    own = first[owner] + torch.arange(owner.numel()) - (torch.cumsum(count, 0) - count)[owner]
    gold_rows = params.edges.rows(sources, gold).reshape(-1)
    uniq, inv = torch.unique(torch.cat([own, gold_rows, own.new_zeros(1)]), return_inverse=True)
    w, b = params.weights(uniq).view(-1, d, d), params.biases(uniq)
    inv_own, inv_gold, inv_shared = inv[: own.numel()], inv[own.numel() : -1], inv[-1]
    bounds = torch.cumsum(count, 0).tolist()
    shared_targets = (V - count).to(w.dtype)
    signal = start_signal(params.node_bias[ids[:, 0], 0], params.pe, 1.0 / d)
    kept: list[torch.Tensor] = []
    losses = []
    for i in range(T - 1):
        pe = step_pe(params.pe, i)
        lo = bounds[i * B - 1] if i else 0
        hi = bounds[(i + 1) * B - 1]
        seg = owner[lo:hi] - i * B
        out = edge_outputs(signal[seg], w[inv_own[lo:hi]], b[inv_own[lo:hi]], pe)
        energy = out.norm(dim=-1)
        shared = edge_outputs(signal, w[inv_shared], b[inv_shared], pe).norm(dim=-1)
        g = inv_gold[i * B : (i + 1) * B]
        gold_out = edge_outputs(signal, w[g], b[g], pe)
        top = shared.detach().clone().scatter_reduce_(0, seg, energy.detach(), "amax")
        mass = torch.exp(shared - top) * shared_targets[i * B : (i + 1) * B]
        mass = mass.index_add(0, seg, torch.exp(energy - top[seg]))
        losses.append(top + torch.log(mass) - gold_out.norm(dim=-1))
        kept.append(gold_out)
        signal = memory_signal(params.positions, torch.stack(kept, 1))[0]
    return torch.stack(losses).mean()


# Objectives compared at the KJV sizes: label -> (TrainSettings fields, use the previous exact loss).
OBJECTIVES: dict[str, tuple[dict[str, Any], bool]] = {
    "exact (all V targets)": ({"objective": "exact"}, False),
    "sampled, k = 400 random": ({"objective": "sampled", "negatives": 400, "hard_negatives": False}, False),
    "previous exact (2c359c4)": ({"objective": "exact"}, True),
}


def kjv_trainer(counts: BigramCounts, fields: dict[str, Any], previous: bool) -> Trainer:
    """A sparse-row trainer at the KJV sample models' sizes (V 1,500, d 10, batch 32 x 32), fresh from seed 0."""
    edges = counts.edges(KJV_MIN_COUNT)
    config = ModelConfig(vocab_size=KJV_V, hidden_size=KJV_D, max_positions=512, num_rows=edges.num_rows)
    settings = TrainSettings(hidden_size=KJV_D, seq_len=SEQ, batch_size=32, min_count=KJV_MIN_COUNT, **fields)
    trainer = Trainer(init_model(config, edges, 0), settings, counts)
    if previous:
        trainer.loss_fn = functools.partial(previous_exact_loss, trainer.params)  # type: ignore[assignment]
    return trainer


def compare_objectives(steps: int, repeats: int, tokens: int, epoch: bool) -> None:
    """The exact objective against the sampled one and the previous exact loss: same model sizes and batches, interleaved repeats."""
    counts, stream, source = kjv_like_data(tokens)
    print(f"objectives: V {KJV_V}, d {KJV_D}, {counts.edges(KJV_MIN_COUNT).num_rows:,} parameter rows, batch 32 x {SEQ} tokens, sparse rows, "
          f"{torch.get_num_threads()} thread(s); data: {source}; {repeats} repeats x {steps} steps", flush=True)
    batches = SequenceBatches(stream, SEQ, 32, seed=0)
    rates: dict[str, list[float]] = {label: [] for label in OBJECTIVES}
    for repeat in range(repeats):
        for label, (fields, previous) in OBJECTIVES.items():
            trainer = kjv_trainer(counts, fields, previous)
            first = 1 + repeat * steps  # every objective sees the same batches in a repeat, each repeat new ones
            trainer.step(batches.batch(0), 0)
            rates[label].append(time_steps(trainer, batches, first, steps, 32))
            print(f"  repeat {repeat + 1}: {label:26s} {rates[label][-1]:9,.0f} tokens/s", flush=True)
    exact, sampled, previous = (rates[label] for label in OBJECTIVES)
    print(f"tokens per second, min / median / max over {repeats} repeats:")
    for label, values in rates.items():
        print(f"  {label:26s} {spread(values)}")
    recipe = statistics.median(exact)
    print(f"the sample models' recipe (exact objective): {recipe:,.0f} tokens/s, so its {KJV_STEPS:,} steps of 32 x {SEQ} "
          f"take about {KJV_STEPS * 32 * (SEQ - 1) / recipe / 60:.0f} min of training")
    for name, base in (("sampled k = 400", sampled), ("previous exact", previous)):
        ratios = [e / v for e, v in zip(exact, base)]
        print(f"  exact / {name}: {statistics.median(exact) / statistics.median(base):.2f}x (per repeat {spread(ratios, 2)})")
    if epoch:
        trainer = kjv_trainer(counts, OBJECTIVES["exact (all V targets)"][0], False)
        n = batches.num_sequences // 32
        start = time.perf_counter()
        for step in range(n):
            trainer.step(batches.batch(step), step)
        seconds = time.perf_counter() - start
        print(f"one epoch, exact objective: {n:,} steps of 32 x {SEQ} ({n * 32 * (SEQ - 1):,} predicted tokens) in {seconds:.0f} s "
              f"({n * 32 * (SEQ - 1) / seconds:,.0f} tokens/s)", flush=True)


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
    parser.add_argument("--objectives-only", action="store_true", help="only the objectives' comparison")
    parser.add_argument("--kjv-tokens", type=int, default=1_150_000, help="length of the generated KJV-like stream (default 1,150,000)")
    parser.add_argument("--epoch", action="store_true", help="also time one full epoch of that stream with the exact objective")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.objectives_only:
        compare_objectives(args.steps, args.repeats, args.kjv_tokens, args.epoch)
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
    compare_objectives(args.steps, args.repeats, args.kjv_tokens, args.epoch)


if __name__ == "__main__":
    main()
