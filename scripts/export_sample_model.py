#!/usr/bin/env python3
"""Copy a training checkpoint into sample_models/: engine files + bigram counts, no optimiser state.

Usage: export_sample_model.py SRC_CHECKPOINT DEST_DIR [--fp16] [--name NAME]
--fp16 stores weights/biases/node_bias/positions as float16 (loading converts back to
float32); the training metadata (settings, loss history) is kept, the optimiser's is not.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

import torch

from brillm_core.checkpoint import Checkpoint, load_checkpoint
from brillm_core.data import COUNTS_FILE

CARD = "MODEL_CARD.md"


def main() -> None:
    """Export one checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--name", help="model name stored in config.json (default: the destination's name)")
    args = parser.parse_args()
    ck = load_checkpoint(args.src, device="cpu")
    training = dict(ck.metadata.get("training", {}))
    for key in ("optimizer_scalars", "optimizer_state_file"):
        training.pop(key, None)
    metadata = {**ck.metadata, "training": training, "stored_dtype": "float16" if args.fp16 else "float32"}
    ck.model.config = dataclasses.replace(ck.model.config, name=args.name or args.dest.name)
    card = args.dest / CARD
    card_text = card.read_text(encoding="utf-8") if card.is_file() else None
    Checkpoint(ck.model, ck.tokenizer, metadata).save(args.dest, overwrite=True, dtype=torch.float16 if args.fp16 else None)
    shutil.copyfile(args.src / COUNTS_FILE, args.dest / COUNTS_FILE)
    if card_text is not None:  # the model card is written by hand; keep it across rebuilds
        card.write_text(card_text, encoding="utf-8")
    for path in args.dest.iterdir():
        path.chmod(0o644)
    print(f"exported {args.src} -> {args.dest}")


if __name__ == "__main__":
    main()
