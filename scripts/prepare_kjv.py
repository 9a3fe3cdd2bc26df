#!/usr/bin/env python3
"""Turn `bible -m 8192 -l9999 "gen1:1-rev22:21"` output into verse lines, split train / held out.

Chapter headings ("Genesis 1") and blank lines are dropped, verse numbers stripped; every
N-th verse (counting from the first) goes to the held-out file, the rest to training.
With --validation FILE, the verse halfway between two held-out ones (index N/2 - 1 modulo N)
goes to FILE instead of training: a validation split for early stopping that leaves
the held-out verses untouched.
Usage: prepare_kjv.py RAW TRAIN_OUT HELDOUT_OUT [--every N] [--validation FILE]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

VERSE = re.compile(r"^\s+\d+\s+(.*\S)\s*$")


def verses(raw: str) -> list[str]:
    """Verse texts in order, without numbers or headings."""
    return [m.group(1) for line in raw.splitlines() if (m := VERSE.match(line))]


def main() -> None:
    """Write the two files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("train", type=Path)
    parser.add_argument("heldout", type=Path)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--validation", type=Path)
    args = parser.parse_args()
    all_verses = verses(args.raw.read_text(encoding="utf-8"))
    split: dict[str, list[str]] = {"train": [], "heldout": [], "validation": []}
    for i, verse in enumerate(all_verses):
        if i % args.every == args.every - 1:
            split["heldout"].append(verse)
        elif args.validation and i % args.every == args.every // 2 - 1:
            split["validation"].append(verse)
        else:
            split["train"].append(verse)
    args.train.write_text("\n".join(split["train"]) + "\n", encoding="utf-8")
    args.heldout.write_text("\n".join(split["heldout"]) + "\n", encoding="utf-8")
    if args.validation:
        args.validation.write_text("\n".join(split["validation"]) + "\n", encoding="utf-8")
    print(f"{len(all_verses)} verses: {len(split['train'])} for training, {len(split['heldout'])} held out, "
          f"{len(split['validation'])} for validation")


if __name__ == "__main__":
    main()
