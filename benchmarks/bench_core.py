"""Core engine at the release's scale: load, load + first traced token, per-token time, peak memory.

A random model with 4,000 nodes, d = 32 and about 480,000 parameter rows is saved as a
native checkpoint, then loaded in a fresh subprocess (so peak memory is the loader's
own). The subprocess times the load alone, then the first token through
``Checkpoint.trace`` (what the explorer does for a first request, model id included),
and prints their sum against the load (target: within 1.5x). The per-token time is a
greedy generation from one node, divided by the generated tokens (every step is one).
Also measured in the same run: hashing the parameter files (what a checkpoint without
a stored ``model_id.json`` costs once per process) and a decode in the release's style
(a Python dict edge map over the visited sources and a gather of all V rows per token).
Everything runs on one intra-op thread, as the ``brillm`` command and the app do.
Usage: python benchmarks/bench_core.py [--rows N] [--tokens N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from brillm_core import CharTokenizer, Checkpoint, DecodeSettings, load_checkpoint, random_model
from brillm_core.checkpoint import compute_model_id

V, D = 4000, 32
SOURCES = 100


def child(path: str, tokens: int) -> None:
    """Runs in the subprocess: load, first traced token, model-id hashing, per-token time, peak RSS."""
    start = time.perf_counter()
    ckpt = load_checkpoint(path)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    ckpt.trace([1], DecodeSettings(max_new_tokens=1))
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    compute_model_id(Path(path))
    hash_s = time.perf_counter() - start
    start = time.perf_counter()
    trace = ckpt.trace([2], DecodeSettings(max_new_tokens=tokens))
    generated = trace.num_steps - int(trace.forced.sum())
    per_token_ms = (time.perf_counter() - start) / generated * 1000
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    params = sum(getattr(ckpt.model, k).numel() * 4 for k in ("weights", "biases", "node_bias", "positions"))
    print(json.dumps({"load_s": load_s, "first_token_s": first_s, "hash_s": hash_s, "per_token_ms": per_token_ms,
                      "generated": generated, "peak_bytes": peak, "param_bytes": params}))


def release_style_per_token_ms(model, tokens: int) -> float:
    """Per-token ms of the release's decoding: a dict lookup per candidate, a gather of all
    V full rows, one bmm (the dict covers the first SOURCES sources, which the loop visits)."""
    own = set(model.edge_keys[: model.edges.indptr[SOURCES]].tolist())
    mapping, nxt = {}, 1
    for s in range(SOURCES):  # the release walks all V sources; the visited ones suffice here
        for t in range(V):
            if s * V + t in own:
                mapping[(s, t)] = nxt
                nxt += 1
    x = torch.rand(1, 1, D)
    node = 1
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(tokens):
            rows = torch.tensor([mapping.get((node % SOURCES, t), 0) for t in range(V) if t != node])
            w = model.weights[rows]
            b = model.biases[rows]
            out = torch.nn.functional.gelu(x.expand(len(rows), 1, D).bmm(w) + b + model.pe[5])
            node = int(out.norm(dim=(-2, -1)).argmax())
    return (time.perf_counter() - start) / tokens * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=480_000, help="own-row edges (default 480,000)")
    parser.add_argument("--tokens", type=int, default=64, help="generated tokens to time (default 64)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.child:
        child(args.child, args.tokens)
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = random_model(V, D, args.rows, seed=0)
        chars = [chr(0x4E00 + i) for i in range(V)]
        path = Checkpoint(model, CharTokenizer(chars)).save(Path(tmp) / "release-scale")
        base_ms = release_style_per_token_ms(model, 16)
        del model
        out = subprocess.run([sys.executable, __file__, "--child", str(path), "--tokens", str(args.tokens)],
                             capture_output=True, text=True, check=True)
        fig = json.loads(out.stdout)
    print(f"release-scale random model: V={V}, d={D}, {args.rows + 1:,} parameter rows, "
          f"{fig['param_bytes'] / 1e9:.2f} GB of float32 parameters")
    print(f"load (fresh process, native safetensors): {fig['load_s']:.3f} s")
    total = fig["load_s"] + fig["first_token_s"]
    print(f"load + first token through Checkpoint.trace: {total:.3f} s = {total / fig['load_s']:.2f}x the load alone "
          f"(first token {fig['first_token_s'] * 1000:.1f} ms; target within 1.5x)")
    print(f"hashing the parameter files (a checkpoint without model_id.json, once per process): {fig['hash_s']:.2f} s")
    print(f"per generated token, full landscape recorded: {fig['per_token_ms']:.2f} ms over {fig['generated']} tokens   "
          f"[release-style decode, same run: {base_ms:.2f} ms -> {base_ms / fig['per_token_ms']:.1f}x faster]")
    print(f"peak memory of the loading process: {fig['peak_bytes'] / 1e9:.2f} GB = "
          f"{fig['peak_bytes'] / fig['param_bytes']:.2f}x the parameter bytes")


if __name__ == "__main__":
    main()
