#!/usr/bin/env python3
"""Write the teaching model's corpus: sentences of a tiny fixed grammar, deterministically.

Grammar (every word's possible successors depend on that word alone, so a greedy path
that follows the learned edges is always grammatical):
  S -> the SUBJECT VERB_T a [ADJ] OBJECT .  |  the SUBJECT VERB_I .
Word choices are skewed (weights below) so the most likely next word is clear.
Usage: make_teaching_corpus.py OUT.txt [--sentences N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

SUBJECTS = {"cat": 4, "dog": 3, "bird": 2, "child": 1}
VERBS_T = {"sees": 3, "likes": 2, "chases": 1}
VERBS_I = {"sleeps": 3, "runs": 2, "sings": 1}
ADJECTIVES = {"big": 3, "small": 2, "red": 1}
OBJECTS = {"ball": 4, "fish": 3, "mouse": 2, "tree": 1}


def pick(rng: random.Random, choices: dict[str, int]) -> str:
    """One word drawn with the given weights."""
    return rng.choices(list(choices), weights=list(choices.values()))[0]


def sentence(rng: random.Random) -> str:
    """One sentence of the grammar."""
    words = ["the", pick(rng, SUBJECTS)]
    if rng.random() < 0.7:
        words += [pick(rng, VERBS_T), "a"]
        if rng.random() < 0.5:
            words.append(pick(rng, ADJECTIVES))
        words.append(pick(rng, OBJECTS))
    else:
        words.append(pick(rng, VERBS_I))
    return " ".join(words + ["."])


def main() -> None:
    """Write N sentences, one per line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(sentence(rng) for _ in range(args.sentences)) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
