"""The ``brillm`` console command: the engine's subcommands plus ``explore`` (the app)."""

from __future__ import annotations

from typing import Sequence

from brillm_core.cli import build_parser, run

from .cli import add_explore_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``brillm COMMAND ...`` and run it."""
    parser, sub = build_parser()
    add_explore_parser(sub)
    return run(parser, argv)
