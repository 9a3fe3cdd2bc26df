"""A tiny generated grammar for the training tests (never a real corpus).

S -> the NOUN VERB a OBJECT .   Every word's allowed successors depend on that word
alone, so "follows the grammar" means every bigram is in ``ALLOWED``.
"""

from __future__ import annotations

import random
from pathlib import Path

NOUNS = ("cat", "dog")
VERBS = ("sees", "likes")
OBJECTS = ("ball", "fish")
ALLOWED = {
    ("the", n) for n in NOUNS
} | {(n, v) for n in NOUNS for v in VERBS} | {(v, "a") for v in VERBS} | {("a", o) for o in OBJECTS} | {
    (o, ".") for o in OBJECTS
} | {(".", "the")}


def toy_text(sentences: int, seed: int = 0) -> str:
    """``sentences`` random sentences of the grammar, one per line."""
    rng = random.Random(seed)
    lines = [f"the {rng.choice(NOUNS)} {rng.choice(VERBS)} a {rng.choice(OBJECTS)} ." for _ in range(sentences)]
    return "\n".join(lines) + "\n"


def write_toy(path: Path, sentences: int = 400, seed: int = 0) -> Path:
    """Write a toy corpus file and return its path."""
    path.write_text(toy_text(sentences, seed), encoding="utf-8")
    return path


def follows_grammar(words: list[str]) -> bool:
    """True when every adjacent pair of words is allowed by the grammar."""
    return all(pair in ALLOWED for pair in zip(words, words[1:]))
