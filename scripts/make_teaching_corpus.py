#!/usr/bin/env python3
"""Write the teaching model's corpus: sentences of a tiny grammar with number agreement, deterministically.

Grammar:  S -> the NOUN [[very] often] VERB .
The verb agrees with the noun: "the cat sleeps", "the cats sleep". Between them may
stand "often" or "very often", so the word before the verb does not tell its number:
after "often" a bigram can only guess, and after "very often" the noun is three words
back, beyond the previous edge's output. Only a model whose memory reaches back to the
noun predicts those verbs. Word choices are skewed so the likeliest successor is clear.
Usage: make_teaching_corpus.py OUT.txt [--sentences N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

NOUNS = {"cat": 4, "dog": 3, "bird": 2}  # each also as a plural ("cats"), drawn as often as the singular
VERBS = {"sleeps": 3, "runs": 2, "sings": 1}  # singular forms; the plural drops the final "s"
ADVERBS = {"": 4, "often": 3, "very often": 2}  # what stands between the noun and its verb


def pick(rng: random.Random, choices: dict[str, int]) -> str:
    """One key drawn with the given weights."""
    return rng.choices(list(choices), weights=list(choices.values()))[0]


def sentence(rng: random.Random) -> str:
    """One sentence of the grammar."""
    plural = rng.random() < 0.5
    noun, verb = pick(rng, NOUNS), pick(rng, VERBS)
    if plural:
        noun, verb = noun + "s", verb[:-1]
    return " ".join(word for word in ("the", noun, pick(rng, ADVERBS), verb, ".") if word)


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
