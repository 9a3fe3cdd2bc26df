"""``brillm train`` and ``brillm eval``: argparse wiring over ``training`` and ``evaluate``.

``train``'s settings are generated from their one declaration (``training.settings``).

``register(subparsers)`` adds both to the ``brillm`` command; ``main`` runs them alone
(``python -m brillm_core.cli.train``, which is also what ``torchrun -m`` starts).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..allocator import keep_freed_memory
from ..evaluate import evaluate_path
from ..training import TrainSettings, train
from ..training.settings import declared, spec
from .runner import run


def add_settings(parser: argparse.ArgumentParser) -> None:
    """One argument per training setting, generated from its declaration (``training.settings``)."""
    for field, kind in declared():
        declaration = spec(field)
        if kind is bool:
            group = parser.add_mutually_exclusive_group()
            if declaration.on:
                group.add_argument(declaration.option(field.name), dest=field.name, action="store_true",
                                   default=field.default, help=declaration.help + (" (default)" if field.default else ""))
            group.add_argument(declaration.off_flag, dest=field.name, action="store_false", default=field.default,
                               help=declaration.off_help + ("" if field.default else " (default)"))
            continue
        shown = "" if field.default is None else f" (default {field.default:g})" if kind is float else f" (default {field.default})"
        parser.add_argument(declaration.option(field.name), dest=field.name, type=kind, default=field.default,
                            choices=declaration.choices or None, help=declaration.help + shown)


def _add_train(sub: argparse._SubParsersAction) -> None:
    """The ``train`` subcommand: the run's files and process options, then every training setting."""
    p = sub.add_parser(
        "train",
        help="train a BriLLM on UTF-8 text files (sparse rows; resumable; torchrun for several processes)",
        description="Train a BriLLM on the full-vocabulary energy cross-entropy (or the release's sampled "
        "(1+k)-way one). Checkpoints go to DIR/checkpoints/step-NNNNNNNN; --resume continues the newest one exactly.",
    )
    p.add_argument("corpus", nargs="+", help="UTF-8 text files (one or more)")
    p.add_argument("-o", "--output", required=True, help="run directory (checkpoints are written inside)")
    p.add_argument("--tokenizer-file", help="reuse this tokenizer.json / chars.json (or a checkpoint's) instead of training one")
    p.add_argument("--validation", help="held-out UTF-8 text: its perplexity is recorded at every checkpoint")
    p.add_argument("--resume", action="store_true", help="continue the run in -o from its newest checkpoint")
    # One thread by default: measured on a 2-core machine with the other core busy, a KJV step
    # (V 1500, d 8, k 400, batch 32) took 0.36 s on one thread, 4.2 s on two.
    p.add_argument("--threads", type=int, default=1,
                   help="intra-op CPU threads of this process (default 1: a step is many small operations, which "
                   "wait on a second thread whenever another program keeps a core busy)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_settings(p.add_argument_group("training settings"))
    p.set_defaults(handler=run_train)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    """The ``eval`` subcommand."""
    p = sub.add_parser(
        "eval",
        help="perplexity and top-1/top-5 on held-out text beside unigram and Kneser-Ney bigram baselines",
        description="Full-vocabulary evaluation of a checkpoint (or a run directory's newest) on a UTF-8 "
        "text file; the figures are also stored in the checkpoint's metadata.json.",
    )
    p.add_argument("model", help="checkpoint directory or training run directory")
    p.add_argument("text_file", help="held-out UTF-8 text")
    p.add_argument("--window", type=int, help="tokens per scored window (default: the training sequence length)")
    p.add_argument("--discount", type=float, help="Kneser-Ney discount D (default: n1 / (n1 + 2 n2))")
    p.add_argument("--no-save", action="store_true", help="do not write the results into metadata.json")
    p.add_argument("--memory-window", type=int, metavar="N",
                   help="an ablation: score with the memory limited to the last N outputs (1: the previous output "
                        "only); stored beside the full-memory figures")
    p.set_defaults(handler=run_eval)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``eval`` to a ``brillm`` subparser set."""
    _add_train(subparsers)
    _add_eval(subparsers)


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``brillm train``."""
    settings = TrainSettings(**{field.name: getattr(args, field.name) for field, _ in declared()})
    keep_freed_memory()  # a step's large buffers are reused instead of faulted in again
    path = train(args.corpus, args.output, settings, resume=args.resume, tokenizer_file=args.tokenizer_file,
                 validation=args.validation, progress=not args.no_progress)
    print(f"newest checkpoint: {path}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """Handler of ``brillm eval``."""
    result = evaluate_path(args.model, args.text_file, window=args.window, discount=args.discount,
                           save=not args.no_save, memory_window=args.memory_window)
    print(f"{args.text_file}: {result.tokens} tokens, windows of {result.window}, {result.model.predicted} predictions")
    if result.unknown_pieces:
        print(f"warning: {result.unknown_pieces} piece(s) of the text map to the unknown node", file=sys.stderr)
    print(result.table())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``train``/``eval`` without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="brillm")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return run(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
