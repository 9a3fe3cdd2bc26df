#!/usr/bin/env python3
"""Copy a training checkpoint into sample_models/: engine files + bigram counts, no optimiser state.

Usage: export_sample_model.py SRC DEST_DIR [--step N | --step best] [--fp16 | --fp16-weights] [--name NAME]
SRC is a checkpoint, or with --step a training run directory: its checkpoint of step N,
or with "best" the one of lowest validation perplexity (the run's newest checkpoint holds
the validation history).
--fp16 stores weights/biases/node_bias/positions as float16, --fp16-weights only the edge
matrices (biases near 5e4, as a context start's energy channel holds, need float32's
precision); loading converts back to float32. The training metadata (settings, loss
history) is kept, the optimiser's is not.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

import torch

from safetensors.torch import load_file, save_file

from brillm_core.checkpoint import CHECKPOINTS, MODEL_ID_FILE, WEIGHTS_FILE, Checkpoint, load_checkpoint, resolve_checkpoint
from brillm_core.data import COUNTS_FILE

CARD = "MODEL_CARD.md"


def run_checkpoint(run: Path, step: str) -> Path:
    """The checkpoint of a run at ``step``, or at its best validation perplexity for "best"."""
    if step == "best":
        newest = load_checkpoint(resolve_checkpoint(run), device="cpu")
        history = newest.metadata["training"]["validation_history"]
        step = str(min(history, key=lambda entry: entry[1])[0])
    path = run / CHECKPOINTS / f"step-{int(step):08d}"
    if not path.is_dir():
        raise SystemExit(f"error: {path} does not exist (was it kept? train with --keep 0)")
    return path


def main() -> None:
    """Export one checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dest", type=Path)
    store = parser.add_mutually_exclusive_group()
    store.add_argument("--fp16", action="store_true", help="every parameter as float16")
    store.add_argument("--fp16-weights", action="store_true", help="the edge matrices W as float16, the rest float32")
    parser.add_argument("--name", help="model name stored in config.json (default: the destination's name)")
    parser.add_argument("--step", help="SRC is a run directory: export its checkpoint of this step, or 'best'")
    args = parser.parse_args()
    if args.step is not None:
        args.src = run_checkpoint(args.src, args.step)
    ck = load_checkpoint(args.src, device="cpu")
    training = dict(ck.metadata.get("training", {}))
    for key in ("optimizer_scalars", "optimizer_state_file"):
        training.pop(key, None)
    metadata = {**ck.metadata, "training": training, "stored_dtype": "float16" if args.fp16 else "float16 weights, float32 rest" if args.fp16_weights else "float32"}
    ck.model.config = dataclasses.replace(ck.model.config, name=args.name or args.dest.name)
    card = args.dest / CARD
    card_text = card.read_text(encoding="utf-8") if card.is_file() else None
    Checkpoint(ck.model, ck.tokenizer, metadata).save(args.dest, overwrite=True, dtype=torch.float16 if args.fp16 else None)
    if args.fp16_weights:
        tensors = load_file(str(args.dest / WEIGHTS_FILE))
        tensors["weights"] = tensors["weights"].half()
        save_file(tensors, str(args.dest / WEIGHTS_FILE))
    # model_id.json caches the id with the files' sizes and times, which a git checkout changes:
    # not committed; loading computes the id when it is missing.
    (args.dest / MODEL_ID_FILE).unlink(missing_ok=True)
    shutil.copyfile(args.src / COUNTS_FILE, args.dest / COUNTS_FILE)
    if card_text is not None:  # the model card is written by hand; keep it across rebuilds
        card.write_text(card_text, encoding="utf-8")
    for path in args.dest.iterdir():
        path.chmod(0o644)
    print(f"exported {args.src} -> {args.dest}")


if __name__ == "__main__":
    main()
