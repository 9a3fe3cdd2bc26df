"""Run a parsed ``brillm`` command: set the process's thread count, and turn user errors into one ``error:`` line.

Torch's intra-op thread count is a property of the process, so it is set here, where a
command line process starts, and nowhere in the library: one thread unless the command
takes ``--threads`` (``brillm train``). A path's steps are many tiny tensor operations, and
on a busy CPU OpenMP's hand-off costs far more than such an operation (measured: GELU of
120 x 32 took 8 ms on two threads with the other core loaded, 10 us on one).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

import torch

from ..errors import BriLLMError


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse and dispatch; user errors print one line and return 1 (usage errors exit 2 in argparse)."""
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    threads = getattr(args, "threads", 1)
    if threads < 1:
        print(f"error: --threads must be >= 1, got {threads}", file=sys.stderr)
        return 1
    torch.set_num_threads(threads)
    try:
        return handler(args)
    except BriLLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # an output path in a missing directory, a full disk, no permission
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
