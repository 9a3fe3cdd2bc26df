"""Training settings, each declared once: name, type, default, allowed range and help.

``TrainSettings`` is that declaration. Every field carries a ``Spec`` in its metadata;
``check`` derives the range checks from it and ``brillm train``'s arguments are
generated from it (``cli.train``), so a default or a limit is written in one place.
The defaults are the release's, except where a help text says otherwise.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from ..errors import TrainingError

OBJECTIVES = ("exact", "sampled")
INITS = ("random", "counts", "context")
SCHEDULES = ("constant", "linear", "cosine")
TOKENIZERS = ("bpe", "char", "word")
BPE_VOCAB = 2000  # a new BPE's size when --vocab-size is not given (the release: 4,000)
BETAS = (0.9, 0.999)  # AdamW's moment decays, as the release's


@dataclass(frozen=True)
class Spec:
    """How one setting is checked and offered on the command line.

    ``low``/``high``: inclusive bounds; ``positive``: must be above 0. Floats must also be
    finite. A boolean is switched by ``flag`` to True (when ``on``) and by ``off_flag`` to False.
    """

    help: str
    flag: str = ""  # the option's name; default --name-with-dashes
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    positive: bool = False
    on: bool = True
    off_flag: str = ""
    off_help: str = ""

    def option(self, name: str) -> str:
        """The command-line option that sets the field ``name``."""
        return self.flag or "--" + name.replace("_", "-")

    def problem(self, name: str, value: Any) -> str | None:
        """What is wrong with ``value`` for the field ``name``, or None."""
        option = self.option(name)
        if value is None or isinstance(value, bool):
            return None
        if self.choices and value not in self.choices:
            return f"{option} must be one of {', '.join(self.choices)}, got {value!r}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{option} must be a finite number, got {value}"
        if self.positive and not value > 0:
            return f"{option} must be a positive number, got {value}"
        if self.low is not None and self.high is not None and not self.low <= value <= self.high:
            return f"{option} must be in {self.low:g}..{_bound(self.high)}, got {value}"
        if self.low is not None and value < self.low:
            return f"{option} must be >= {self.low:g}, got {value}"
        return None


def _bound(value: float) -> str:
    """A bound as users read it (2**63 - 1 rather than 9.22e+18)."""
    return "2**63-1" if value == 2**63 - 1 else f"{value:g}"


def setting(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field declaring one setting (its default and its ``Spec``)."""
    return dataclasses.field(default=default, metadata={"spec": Spec(help=help, **spec)})


@dataclass(frozen=True)
class TrainSettings:
    """Everything that defines a training run."""

    tokenizer: str = setting("bpe", "tokeniser to train", choices=TOKENIZERS)
    vocab_size: int | None = setting(
        None, f"tokens of a new BPE (default {BPE_VOCAB}; the release: 4000) or word vocabulary (default: every word); "
        "with --tokenizer-file, the size it must have", low=1)
    hidden_size: int = setting(32, "node width d", low=1)
    max_positions: int = setting(512, "length L of the position table", low=1)
    seq_len: int = setting(32, "tokens per training sequence", low=2)
    batch_size: int = setting(32, "sequences per step and process", low=1)
    objective: str = setting(
        "exact", "exact: softmax over all V targets; sampled: the release's (1+k)-way loss over k negatives",
        choices=OBJECTIVES)
    negatives: int = setting(400, "sampled objective: negative edges per position, k (capped at V-1)", low=1)
    hard_negatives: bool = setting(
        True, "the k most frequent successors (as the release)", off_flag="--random-negatives",
        off_help="k uniformly drawn other nodes")
    min_count: int = setting(1, "bigram count an edge needs for its own row (1: count > 0)", low=1)
    init: str = setting(
        "random", "the start. random: the release's uniform start, every parameter left to training. counts and context "
        "are research options that set the start by counting instead: counts puts the Kneser-Ney bigram of the training "
        "text into the biases (W = 0); context adds a trigram correction and to carry it forces the memory onto one "
        "token, the previous output (the position logits become a steep ramp)", choices=INITS)
    init_code: float = setting(
        0.0, "with --init counts: bias channels other than the energy's hold a random U(-x, x) code (0: silent)", low=0)
    context_l2: float = setting(1.0, "with --init context: L2 penalty of the trigram fit per code and read-out", low=0)
    context_iterations: int = setting(100, "with --init context: full-batch Adam iterations of the trigram fit", low=0)
    lr: float = setting(5e-2, "learning rate of every group not set below", positive=True)
    lr_weights: float | None = setting(None, "learning rate of the edge matrices W (default: --lr)", positive=True)
    lr_biases: float | None = setting(None, "learning rate of edge and node biases (default: --lr)", positive=True)
    lr_positions: float | None = setting(None, "learning rate of the position logits (default: --lr)", positive=True)
    weight_decay: float = setting(0.0, "decoupled (AdamW) weight decay of the edge matrices W (the release: 0)", low=0)
    adam_eps: float = setting(
        1e-8, "AdamW epsilon (the release's); larger values stop rows with tiny gradients taking full steps", positive=True)
    schedule: str = setting("constant", "learning-rate decay over --max-steps after the warm-up", choices=SCHEDULES)
    warmup: int = setting(0, "steps of linear learning-rate warm-up", low=0)
    max_steps: int = setting(1000, "total optimisation steps (0: save the start as step 0)", low=0)
    save_every: int = setting(100, "checkpoint every N steps", low=1)
    keep_checkpoints: int = setting(2, "newest checkpoints to keep, 0 = all", flag="--keep", low=0)
    patience: int = setting(0, "with --validation: stop after N checkpoints without a new best (0: never)", low=0)
    seed: int = setting(0, "seed for initialisation, data order and negatives", low=0, high=2**63 - 1)
    sparse: bool = setting(
        True, "sparse row gradients and AdamW on the rows a step reads", on=False, off_flag="--dense",
        off_help="dense gradients and AdamW on every row, as the release (slow; for comparison)")

    def __post_init__(self) -> None:
        problems = [p for f in dataclasses.fields(self) if (p := spec(f).problem(f.name, getattr(self, f.name)))]
        if self.seq_len > self.max_positions:
            problems.append(f"--seq-len {self.seq_len} exceeds the position table ({self.max_positions})")
        if self.init == "context" and self.hidden_size < 2:
            problems.append("--init context needs --hidden-size >= 2 (one energy channel plus the code)")
        if problems:
            raise TrainingError("; ".join(problems))

    def fixed(self) -> dict[str, Any]:
        """The settings a resumed run must share with the original (the rest may change on --resume)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in RESUMABLE}

    def group_lr(self, group: str) -> float:
        """Base learning rate of a parameter group ("weights", "biases" or "positions")."""
        value = getattr(self, f"lr_{group}")
        return self.lr if value is None else value

    def lr_factor(self, step: int) -> float:
        """Multiplier of every base learning rate at ``step`` (0-based): linear warm-up, then the schedule."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.schedule == "constant":
            return 1.0
        progress = (step - self.warmup) / max(1, self.max_steps - self.warmup)
        if self.schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    def for_tokenizer(self, tokenizer_file: str | None) -> TrainSettings:
        """These settings with the vocabulary size a new BPE gets when none is given."""
        if self.vocab_size is None and self.tokenizer == "bpe" and not tokenizer_file:
            return dataclasses.replace(self, vocab_size=BPE_VOCAB)
        return self


# Settings that may change when resuming; every other one must match the original run.
RESUMABLE = ("max_steps", "save_every", "keep_checkpoints", "patience")


def spec(field: dataclasses.Field) -> Spec:
    """The declaration of one setting."""
    return field.metadata["spec"]


def declared() -> list[tuple[dataclasses.Field, type]]:
    """Every setting with its value type (``int`` for ``int | None``), in declaration order."""
    hints = typing.get_type_hints(TrainSettings)
    out = []
    for field in dataclasses.fields(TrainSettings):
        kinds = [k for k in typing.get_args(hints[field.name]) if k is not type(None)] or [hints[field.name]]
        out.append((field, kinds[0]))
    return out
