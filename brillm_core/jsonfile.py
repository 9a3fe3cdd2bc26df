"""JSON a user hands us (configs, vocabularies, metadata, view files), read within stated limits.

Python's own parser turns deep nesting into a RecursionError, integers over 4,300 digits
into a ValueError and ``1e999`` into infinity; each of those would surface as a
traceback or a non-number. Here every one is a BriLLMError naming the file and the limit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BriLLMError
from .regular import open_regular

# The project's JSON files nest at most about 6 levels (metadata, view files, vocabularies);
# 64 leaves room for any honest file and stays far below Python's recursion limit.
MAX_DEPTH = 64
# Sizes, ids, counts and seeds fit in 40 digits; a longer integer is a mistake or an attack.
MAX_INT_DIGITS = 40
BACKSLASH, QUOTE = ord("\\"), ord('"')


def nesting_depth(text: str) -> int:
    """Deepest bracket nesting of a JSON text (brackets inside strings do not count), in time and memory
    linear in its length: a character is inside a string when an odd number of unescaped quotes precede
    it, and a quote is escaped when an odd run of backslashes precedes it. (Removing strings with a
    regular expression took quadratic time on a string that never closes.)"""
    raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    backslash = (raw == BACKSLASH).view(np.int8)
    edges = np.flatnonzero(np.diff(backslash, prepend=np.int8(0), append=np.int8(0)))  # runs: start, end, ...
    starts, ends = edges[0::2], edges[1::2]
    quote = raw == QUOTE
    quote[ends[((ends - starts) % 2 == 1) & (ends < raw.size)]] = False  # the character after an odd run is escaped
    inside = np.bitwise_xor.accumulate(quote.view(np.uint8)).view(bool)
    step = ((raw == ord("[")).view(np.int8) + (raw == ord("{")).view(np.int8)
            - (raw == ord("]")).view(np.int8) - (raw == ord("}")).view(np.int8))
    step[inside] = 0
    return int(np.cumsum(step, dtype=np.int32).max(initial=0))  # |depth| <= length < 2**31


def _integer(text: str) -> int:
    """An integer of at most MAX_INT_DIGITS digits."""
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer has {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS} are accepted)")
    return int(text)


def _finite(text: str) -> float:
    """A finite float (``1e999`` would become infinity)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is outside the float range")
    return value


def _no_constant(name: str) -> float:
    """NaN and Infinity are not JSON numbers."""
    raise ValueError(f"{name} is not a JSON number")


def loads(text: str | bytes, what: str, error: type[BriLLMError] = BriLLMError, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``text``; anything malformed, too deep, too long a number or non-finite is ``error``."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{what} is not valid JSON: not UTF-8 text ({exc})") from exc
    depth = nesting_depth(text)
    if depth > max_depth:
        raise error(f"{what} nests {depth} levels deep (at most {max_depth} are accepted)")
    try:
        return json.loads(text, parse_int=_integer, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise error(f"{what} is not usable JSON: {exc}") from exc


def read(path: str | Path, what: str, max_bytes: int, error: type[BriLLMError] = BriLLMError) -> Any:
    """Read and parse a JSON file of at most ``max_bytes``, with messages naming ``what`` and ``path`` (a named
    pipe or a device in its place is an error, not a wait)."""
    path = Path(path)
    try:
        with open_regular(path, what, error) as handle:
            blob = handle.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise error(f"{what} is missing: {path}") from exc
    except OSError as exc:  # a directory in its place, no permission, an I/O error
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if len(blob) > max_bytes:
        raise error(f"{what} {path} is larger than {max_bytes // 2**20} MiB, the limit for this file")
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not valid JSON: not UTF-8 text ({exc})") from exc
    return loads(text, f"{what} {path}", error)
