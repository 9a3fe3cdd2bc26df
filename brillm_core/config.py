"""Model configuration: the sizes and tokeniser kind that fix a checkpoint's shapes."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import CheckpointError

CONFIG_FORMAT = "brillm-explorer/config"
CONFIG_VERSION = 1

# Limits on what a config may ask for, checked before any tensor is allocated (the
# release uses V = 4,001, d = 32, L = 512; a self-consistent file beyond these would
# make the engine allocate many GB before anything else could refuse it).
MAX_VOCAB_SIZE = 1_000_000  # energies and CSR offsets are V long; the V x V edge map is sparse
MAX_HIDDEN_SIZE = 1024  # one parameter row is d x d floats: 4 MiB at this width
MAX_POSITIONS = 65_536  # the PE table is L x d floats and a path is at most L steps
_INT_FIELDS = ("vocab_size", "hidden_size", "max_positions", "num_rows", "unk_id")


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of a BriLLM: V nodes of width d, L positions, P parameter rows."""

    vocab_size: int
    hidden_size: int = 32
    max_positions: int = 512
    num_rows: int = 1
    tokenizer: str = "bpe"  # "bpe" (tokenizer.json) or "char" (chars.json)
    unk_id: int = 0
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        mistyped = [f"{name} = {getattr(self, name)!r}" for name in _INT_FIELDS
                    if type(getattr(self, name)) is not int]  # noqa: E721 - bool and float are refused too
        if not isinstance(self.name, str) or not isinstance(self.extra, dict):
            mistyped.append("name must be a string and extra an object")
        if mistyped:
            raise CheckpointError("invalid model config, mistyped: sizes must be whole numbers, got " + ", ".join(mistyped))
        problems = []
        if self.vocab_size > MAX_VOCAB_SIZE:
            problems.append(f"vocab_size {self.vocab_size} is over the limit of {MAX_VOCAB_SIZE:,} nodes")
        if self.hidden_size > MAX_HIDDEN_SIZE:
            problems.append(f"hidden_size {self.hidden_size} is over the limit of {MAX_HIDDEN_SIZE}")
        if self.max_positions > MAX_POSITIONS:
            problems.append(f"max_positions {self.max_positions} is over the limit of {MAX_POSITIONS:,}")
        if self.vocab_size < 1:
            problems.append(f"vocab_size must be >= 1, got {self.vocab_size}")
        if self.hidden_size < 2 or self.hidden_size % 2:
            problems.append(f"hidden_size must be an even number >= 2, got {self.hidden_size}")
        if self.max_positions < 2:
            problems.append(f"max_positions must be >= 2, got {self.max_positions}")
        if self.num_rows < 1:
            problems.append(f"num_rows must be >= 1 (row 0 is the shared row), got {self.num_rows}")
        if self.tokenizer not in ("bpe", "char"):
            problems.append(f"tokenizer must be 'bpe' or 'char', got {self.tokenizer!r}")
        if not 0 <= self.unk_id < max(self.vocab_size, 1):
            problems.append(f"unk_id {self.unk_id} is not a node id (0..{self.vocab_size - 1})")
        if problems:
            raise CheckpointError("invalid model config: " + "; ".join(problems))

    @property
    def own_rows(self) -> int:
        """Number of edges with a parameter row of their own (all rows but the shared one)."""
        return self.num_rows - 1

    @property
    def parameter_count(self) -> int:
        """Parameters actually stored: rows, row biases, node biases, position logits."""
        d = self.hidden_size
        return self.num_rows * (d * d + d) + self.vocab_size * d + self.max_positions

    @property
    def dense_parameter_count(self) -> int:
        """Parameters of the same model with one row per edge (no sharing)."""
        d = self.hidden_size
        return self.max_positions + self.vocab_size**2 * (d * d + d)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict carrying the format name and version."""
        return {"format": CONFIG_FORMAT, "version": CONFIG_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Inverse of to_dict; unknown keys are an error so that typos are not ignored."""
        if not isinstance(data, dict):
            raise CheckpointError("config.json must hold a JSON object")
        data = dict(data)
        fmt = data.pop("format", CONFIG_FORMAT)
        version = data.pop("version", CONFIG_VERSION)
        if fmt != CONFIG_FORMAT:
            raise CheckpointError(f"config.json has format {fmt!r}, expected {CONFIG_FORMAT!r}")
        if version != CONFIG_VERSION:
            raise CheckpointError(f"config.json has version {version}, this build reads {CONFIG_VERSION}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CheckpointError(f"config.json has unknown keys: {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise CheckpointError(f"config.json is incomplete or mistyped: {exc}") from exc

    def to_json(self) -> str:
        """Serialise to an indented JSON string."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
