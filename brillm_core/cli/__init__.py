"""The ``brillm`` command: the engine's subcommands, plus commands other packages provide.

``explore`` belongs to the app (``explorer.cli``): it is listed here by name and its module
is imported only when that command runs, so the engine's commands never import Dash.
Subcommand modules are imported inside ``build_parser`` so that ``python -m
brillm_core.cli.train`` (what ``torchrun -m`` starts) does not import itself twice.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# Commands run by another package: name -> (module whose ``main(argv)`` runs it, help text).
APP_COMMANDS: dict[str, tuple[str, str]] = {
    "explore": ("explorer.cli", "browse signal paths, recall and checkpoints in a web app"),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``brillm`` parser with every subcommand (app commands listed for --help only)."""
    from ..organization import cli as organization_cli
    from . import engine, train

    parser = argparse.ArgumentParser(prog="brillm", description="BriLLM Explorer: run, trace and inspect BriLLM models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    engine.register(sub)
    organization_cli.register(sub)
    train.register(sub)
    for name, (_, text) in APP_COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def run_app_command(name: str, argv: list[str]) -> int:
    """Import the module that owns ``name`` and run its ``main(argv)``."""
    module_name = APP_COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"error: `brillm {name}` needs {module_name.split('.')[0]!r}, which cannot be imported: {exc}",
              file=sys.stderr)
        return 1
    return module.main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script ``brillm`` (also ``python -m brillm_core``)."""
    from .runner import run

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in APP_COMMANDS:
        return run_app_command(args[0], args[1:])
    return run(build_parser(), args)
