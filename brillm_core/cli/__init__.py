"""The ``brillm`` command: the engine's subcommands, plus the commands other installed packages add.

Another package adds a command through an entry point of the group ``brillm.commands``
whose object is ``main(argv) -> int``: the app declares ``explore`` that way in its
pyproject.toml. Such a module is imported only when its command runs, so the engine's
commands never import it (nor Dash), and the engine never names it.
Subcommand modules are imported inside ``build_parser`` so that ``python -m
brillm_core.cli.train`` (what ``torchrun -m`` starts) does not import itself twice.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Sequence

COMMAND_GROUP = "brillm.commands"


def added_commands() -> dict[str, EntryPoint]:
    """Commands that installed packages add to ``brillm``, by name."""
    return {point.name: point for point in entry_points(group=COMMAND_GROUP)}


def build_parser() -> argparse.ArgumentParser:
    """The ``brillm`` parser with every subcommand (added commands listed for --help only)."""
    from ..organization import cli as organization_cli
    from . import engine, train

    parser = argparse.ArgumentParser(prog="brillm", description="BriLLM Explorer: run, trace and inspect BriLLM models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    engine.register(sub)
    organization_cli.register(sub)
    train.register(sub)
    for name, point in added_commands().items():
        owner = f"the {point.dist.name} package" if point.dist is not None else point.module
        sub.add_parser(name, help=f"added by {owner}; `brillm {name} --help` tells more", add_help=False)
    return parser


def run_added_command(point: EntryPoint, argv: list[str]) -> int:
    """Import the module behind an added command and run its ``main(argv)``."""
    try:
        command = point.load()
    except ImportError as exc:
        print(f"error: `brillm {point.name}` needs {point.module!r}, which cannot be imported: {exc}", file=sys.stderr)
        return 1
    return command(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script ``brillm`` (also ``python -m brillm_core``)."""
    from .runner import run

    args = list(sys.argv[1:] if argv is None else argv)
    added = added_commands()
    if args and args[0] in added:
        return run_added_command(added[args[0]], args[1:])
    return run(build_parser(), args)
