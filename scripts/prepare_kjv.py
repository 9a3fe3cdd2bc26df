#!/usr/bin/env python3
"""Turn `bible -m 8192 -l9999 "gen1:1-rev22:21"` output into verse lines, split train / held out.

Chapter headings ("Genesis 1") and blank lines are dropped, verse numbers stripped; every
N-th verse (counting from the first) goes to the held-out file, the rest to training.
Usage: prepare_kjv.py RAW TRAIN_OUT HELDOUT_OUT [--every N]
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
    args = parser.parse_args()
    all_verses = verses(args.raw.read_text(encoding="utf-8"))
    held = [v for i, v in enumerate(all_verses) if i % args.every == args.every - 1]
    train = [v for i, v in enumerate(all_verses) if i % args.every != args.every - 1]
    args.train.write_text("\n".join(train) + "\n", encoding="utf-8")
    args.heldout.write_text("\n".join(held) + "\n", encoding="utf-8")
    print(f"{len(all_verses)} verses: {len(train)} for training, {len(held)} held out")


if __name__ == "__main__":
    main()
