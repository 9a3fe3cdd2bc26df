"""``brillm train`` and ``brillm eval``: argparse wiring over ``train`` and ``evaluate``.

``register(subparsers)`` adds both to the ``brillm`` command; ``main`` runs them alone
(``python -m brillm_core.cli.train``, which is also what ``torchrun -m`` starts).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..allocator import keep_freed_memory
from ..evaluate import evaluate_path
from ..train import TrainSettings, train
from .runner import run


def _add_train(sub: argparse._SubParsersAction) -> None:
    """The ``train`` subcommand."""
    p = sub.add_parser(
        "train",
        help="train a BriLLM on UTF-8 text files (sparse rows; resumable; torchrun for several processes)",
        description="Train a BriLLM on the full-vocabulary energy cross-entropy (or the release's sampled "
        "(1+k)-way one). Checkpoints go to DIR/checkpoints/step-NNNNNNNN; --resume continues the newest one exactly.",
    )
    p.add_argument("corpus", nargs="+", help="UTF-8 text files (one or more)")
    p.add_argument("-o", "--output", required=True, help="run directory (checkpoints are written inside)")
    p.add_argument("--tokenizer", choices=("bpe", "char", "word"), default="bpe", help="tokeniser to train (default bpe)")
    p.add_argument("--tokenizer-file", help="reuse this tokenizer.json / chars.json (or a checkpoint's) instead of training one")
    p.add_argument("--vocab-size", type=int, help="tokens of a new BPE (default 2000) or word vocabulary")
    p.add_argument("--hidden-size", type=int, default=32, help="node width d (default 32)")
    p.add_argument("--max-positions", type=int, default=512, help="length L of the position table (default 512)")
    p.add_argument("--seq-len", type=int, default=32, help="tokens per training sequence (default 32)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per step and process (default 32)")
    p.add_argument("--objective", choices=("exact", "sampled"), default="exact",
                   help="exact: softmax over all V targets (default); sampled: the release's (1+k)-way loss over k negatives")
    p.add_argument("--negatives", type=int, default=400, help="sampled objective: negative edges per position, k (default 400; capped at V-1)")
    neg = p.add_mutually_exclusive_group()
    neg.add_argument("--hard-negatives", dest="hard", action="store_true", default=True, help="the k most frequent successors (default, as the release)")
    neg.add_argument("--random-negatives", dest="hard", action="store_false", help="k uniformly drawn other nodes")
    p.add_argument("--min-count", type=int, default=1, help="bigram count an edge needs for its own row (default 1: count > 0)")
    p.add_argument("--init", choices=("random", "counts", "context"), default="random",
                   help="random: the release's uniform start (default); counts: the Kneser-Ney bigram of the training text; "
                   "context: that bigram plus a rank d-1 trigram correction fitted on the training text, carried by the memory")
    p.add_argument("--init-code", type=float, default=0.0,
                   help="with --init counts: bias channels other than the energy's hold a random U(-x, x) code (default 0: silent)")
    p.add_argument("--context-l2", type=float, default=1.0,
                   help="with --init context: L2 penalty of the trigram fit per code and read-out (default 1)")
    p.add_argument("--context-iterations", type=int, default=100,
                   help="with --init context: full-batch Adam iterations of the trigram fit (default 100)")
    p.add_argument("--lr", type=float, default=5e-2, help="learning rate of every group not set below (default 5e-2)")
    p.add_argument("--lr-weights", type=float, help="learning rate of the edge matrices W (default: --lr)")
    p.add_argument("--lr-biases", type=float, help="learning rate of edge and node biases (default: --lr)")
    p.add_argument("--lr-positions", type=float, help="learning rate of the position logits (default: --lr)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="decoupled weight decay of W (default 0, as the release)")
    p.add_argument("--adam-eps", type=float, default=1e-8,
                   help="AdamW epsilon (default 1e-8, the release's); larger values stop rows with tiny gradients taking full steps")
    p.add_argument("--schedule", choices=("constant", "linear", "cosine"), default="constant",
                   help="learning-rate decay over --max-steps after the warm-up (default constant)")
    p.add_argument("--warmup", type=int, default=0, help="steps of linear learning-rate warm-up (default 0)")
    p.add_argument("--validation", help="held-out UTF-8 text: its perplexity is recorded at every checkpoint")
    p.add_argument("--patience", type=int, default=0, help="with --validation: stop after N checkpoints without a new best (default 0: never)")
    p.add_argument("--max-steps", type=int, default=1000, help="total optimisation steps (default 1000; 0: save the start as step 0)")
    p.add_argument("--save-every", type=int, default=100, help="checkpoint every N steps (default 100)")
    p.add_argument("--keep", type=int, default=2, help="newest checkpoints to keep, 0 = all (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation, data order and negatives (default 0)")
    p.add_argument("--dense", action="store_true", help="dense gradients and AdamW on every row (slow; for comparison)")
    p.add_argument("--threads", type=int, help="intra-op CPU threads (default: torch's choice)")
    p.add_argument("--resume", action="store_true", help="continue the run in -o from its newest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
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
    vocab = args.vocab_size
    if vocab is None and args.tokenizer == "bpe" and not args.tokenizer_file:
        vocab = 2000
    settings = TrainSettings(
        tokenizer=args.tokenizer,
        vocab_size=vocab,
        hidden_size=args.hidden_size,
        max_positions=args.max_positions,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        objective=args.objective,
        negatives=args.negatives,
        hard_negatives=args.hard,
        min_count=args.min_count,
        init=args.init,
        init_code=args.init_code,
        context_l2=args.context_l2,
        context_iterations=args.context_iterations,
        lr=args.lr,
        lr_weights=args.lr_weights,
        lr_biases=args.lr_biases,
        lr_positions=args.lr_positions,
        weight_decay=args.weight_decay,
        adam_eps=args.adam_eps,
        schedule=args.schedule,
        warmup=args.warmup,
        patience=args.patience,
        max_steps=args.max_steps,
        save_every=args.save_every,
        keep_checkpoints=args.keep,
        seed=args.seed,
        sparse=not args.dense,
        threads=args.threads,
    )
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
