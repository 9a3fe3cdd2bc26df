"""Run a parsed ``brillm`` command: user errors become one ``error:`` line, never a traceback."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from ..errors import BriLLMError


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse and dispatch; user errors print one line and return 1 (usage errors exit 2 in argparse)."""
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
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
