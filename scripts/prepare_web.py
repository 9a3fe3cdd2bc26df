#!/usr/bin/env python3
"""Turn diatheke's OSIS dump of the World English Bible into plain verse lines; keep every N-th verse.

The second evaluation text of the KJV sample models: a modern English translation
(public domain) from Debian's ``sword-text-web``, read with ``diatheke -f OSIS``. This
SWORD module's words sit in ``<w>`` elements that sometimes touch ("God</w><w>created"),
so a space is put back before a word that follows a word or punctuation; diatheke
repeats a psalm's title before each of its verses, so only the text after the verse
reference is kept. Curly quotes become straight ones (the KJV text has none, so its
tokeniser would see them as rare bytes), as do the dashes. Every N-th verse is written,
counting from the first.
Usage: prepare_web.py OSIS [OSIS ...] OUT [--every N]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

REFERENCE = re.compile(r"(?:^|\s\s)(?:[1-3] |I{1,3} )?[A-Z][a-z]+(?: of [A-Z][a-z]+)? \d+:\d+: (.*)$")
TOUCHING_WORD = re.compile(r"(?<=[>,.;:?!”’)])<w>")
TAG = re.compile(r"<[^>]*>")
PLAIN = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "—": "--", "–": "-"})


def verse_texts(osis: str) -> list[str]:
    """Plain text of every verse line of a diatheke OSIS dump, in order."""
    out = []
    for line in osis.splitlines():
        match = REFERENCE.search(line)
        if not match:
            continue
        text = TAG.sub("", TOUCHING_WORD.sub(" <w>", match.group(1))).translate(PLAIN)
        text = " ".join(text.split())
        if text:
            out.append(text)
    return out


def main() -> None:
    """Write every N-th verse of the dumps, one per line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("osis", type=Path, nargs="+")
    parser.add_argument("out", type=Path)
    parser.add_argument("--every", type=int, default=50)
    args = parser.parse_args()
    verses = [v for path in args.osis for v in verse_texts(path.read_text(encoding="utf-8"))]
    kept = [v for i, v in enumerate(verses) if i % args.every == args.every - 1]
    args.out.write_text("\n".join(kept) + "\n", encoding="utf-8")
    print(f"{len(verses)} verses, {len(kept)} written to {args.out}")


if __name__ == "__main__":
    main()
