"""Trace: everything one propagation did, step by step, with DataFrame and JSON views.

A trace of a path u_0 .. u_n has n steps; step i is the edge u_i -> u_{i+1}. Per step it
holds the energies and probabilities of every node (NaN where a node was not a
candidate), the input signal, the kept output, the memory weights over earlier steps,
and whether the step was teacher-forced. JSON schema "brillm-trace" version 1 is
documented in the README; floats are float32 values written exactly, NaN as null.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd
import torch

from . import jsonfile
from .decoding import DECODING
from .errors import BriLLMError

TRACE_SCHEMA = "brillm-trace"
TRACE_VERSION = 1


@dataclass(frozen=True)
class DecodeSettings:
    """How a path was continued: greedy or sampled, temperature, top-k, seed, decoder, memory window.

    Each field is declared in ``decoding.DECODING`` (its range, help and the default the command line and
    the explorer start from). The defaults here are the Python API's: no new tokens (a trace of the prompt
    alone) and, when sampling, a fresh random seed.
    """

    max_new_tokens: int = 0
    greedy: bool = True
    temperature: float = 1.0
    top_k: int | None = None
    seed: int | None = None
    release_decoder: bool = False
    start_signal: tuple[float, ...] | None = None
    # An ablation: remember only the last N kept outputs (1: the previous output only);
    # None is the model itself, whose memory weighs every earlier output.
    memory_window: int | None = None

    def __post_init__(self) -> None:
        for setting in DECODING:  # each value checked against its declaration, and kept as it holds it
            object.__setattr__(self, setting.name, setting.check(getattr(self, setting.name)))

    def with_new_tokens(self, count: int) -> "DecodeSettings":
        """The same settings with another number of new tokens."""
        return replace(self, max_new_tokens=count)


@dataclass(frozen=True)
class Step:
    """One edge of a trace, as a read-only view into the trace's tensors."""

    index: int
    source: int
    target: int
    forced: bool
    energies: torch.Tensor
    probabilities: torch.Tensor
    signal_in: torch.Tensor
    output: torch.Tensor
    memory_weights: torch.Tensor

    @property
    def chosen_energy(self) -> float:
        """Energy of the edge actually taken."""
        return float(self.energies[self.target])

    @property
    def chosen_probability(self) -> float:
        """Probability the model gave to the node actually taken."""
        return float(self.probabilities[self.target])

    @property
    def chosen_rank(self) -> int:
        """1-based rank of the taken node by energy among the candidates (ties share the best rank)."""
        e = torch.nan_to_num(self.energies, nan=-math.inf)
        return int((e > e[self.target]).sum()) + 1

    def top(self, k: int) -> list[tuple[int, float, float]]:
        """The k candidates with the highest energy: (node, energy, probability), ties by id."""
        e = torch.nan_to_num(self.energies, nan=-math.inf)
        order = torch.sort(e, descending=True, stable=True).indices[:k].tolist()
        picked = [n for n in order if math.isfinite(float(e[n]))]
        return [(n, float(self.energies[n]), float(self.probabilities[n])) for n in picked]


@dataclass
class Trace:
    """Per-step records of one propagation (see module docstring for the layout)."""

    path: torch.Tensor  # (n + 1,) node ids u_0 .. u_n
    energies: torch.Tensor  # (n, V), NaN where not a candidate
    probabilities: torch.Tensor  # (n, V), NaN where not a candidate
    signals_in: torch.Tensor  # (n, d)
    outputs: torch.Tensor  # (n, d) kept output c_i of each step
    memory: list[torch.Tensor]  # memory[i] has i weights (empty at step 0)
    forced: torch.Tensor  # (n,) bool
    settings: DecodeSettings
    tokens: list[str] | None = None  # token text of each path node, if known
    unknown: list[dict[str, Any]] = field(default_factory=list)  # prompt pieces mapped to UNK
    model_id: str = ""  # content hash of the checkpoint, when known

    @property
    def num_steps(self) -> int:
        """Number of edges taken."""
        return int(self.path.numel()) - 1

    @property
    def sources(self) -> torch.Tensor:
        """Source node of each step."""
        return self.path[:-1]

    @property
    def targets(self) -> torch.Tensor:
        """Target (chosen or forced) node of each step."""
        return self.path[1:]

    @property
    def prompt_length(self) -> int:
        """Number of path nodes given by the caller: the first node plus forced steps."""
        return int(self.forced.sum()) + 1

    @property
    def steps(self) -> list[Step]:
        """One Step view per edge."""
        return [self.step(i) for i in range(self.num_steps)]

    def step(self, i: int) -> Step:
        """The Step view of edge i."""
        if not 0 <= i < self.num_steps:
            raise IndexError(f"step {i} out of range 0..{self.num_steps - 1}")
        return Step(
            index=i,
            source=int(self.path[i]),
            target=int(self.path[i + 1]),
            forced=bool(self.forced[i]),
            energies=self.energies[i],
            probabilities=self.probabilities[i],
            signal_in=self.signals_in[i],
            output=self.outputs[i],
            memory_weights=self.memory[i],
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per step: source, target, tokens, forced, chosen energy/probability/rank."""
        rows = []
        for s in self.steps:
            rows.append(
                {
                    "step": s.index,
                    "source": s.source,
                    "target": s.target,
                    "source_token": self.tokens[s.index] if self.tokens else None,
                    "target_token": self.tokens[s.index + 1] if self.tokens else None,
                    "forced": s.forced,
                    "energy": s.chosen_energy,
                    "probability": s.chosen_probability,
                    "rank": s.chosen_rank,
                }
            )
        return pd.DataFrame(rows, columns=[
            "step", "source", "target", "source_token", "target_token", "forced", "energy", "probability", "rank",
        ])

    def _repr_html_(self) -> str:
        """How a notebook shows a trace: a line on the path and its settings, then ``to_frame()`` as a table
        (float32 numbers with the 9 digits that write them exactly)."""
        decoding = "greedy" if self.settings.greedy else f"sampled at T = {self.settings.temperature:g}"
        head = (f"BriLLM trace of {self.num_steps} steps ({self.prompt_length - 1} forced by the prompt, "
                f"{decoding}), model {self.model_id or 'unknown'}")
        return f"<p>{html.escape(head)}</p>" + self.to_frame().to_html(index=False, float_format=lambda v: f"{v:.9g}")

    def landscape_frame(self) -> pd.DataFrame:
        """Long format of every candidate at every step: step, node, energy, probability."""
        n, v = self.energies.shape
        return pd.DataFrame(
            {
                "step": torch.arange(n).repeat_interleave(v).numpy(),
                "node": torch.arange(v).repeat(n).numpy(),
                "energy": self.energies.reshape(-1).numpy(),
                "probability": self.probabilities.reshape(-1).numpy(),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document (see README, "Trace JSON")."""
        steps = []
        for s in self.steps:
            steps.append(
                {
                    "index": s.index,
                    "source": s.source,
                    "target": s.target,
                    "forced": s.forced,
                    "energies": _floats(s.energies),
                    "probabilities": _floats(s.probabilities),
                    "signal_in": _floats(s.signal_in),
                    "output": _floats(s.output),
                    "memory_weights": _floats(s.memory_weights),
                }
            )
        settings = asdict(self.settings)
        if settings["start_signal"] is not None:
            settings["start_signal"] = list(settings["start_signal"])
        return {
            "schema": TRACE_SCHEMA,
            "version": TRACE_VERSION,
            "model_id": self.model_id,
            "vocab_size": int(self.energies.shape[1]) if self.num_steps else None,
            "hidden_size": int(self.signals_in.shape[1]) if self.num_steps else None,
            "settings": settings,
            "path": self.path.tolist(),
            "tokens": self.tokens,
            "unknown": self.unknown,
            "steps": steps,
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialise to JSON text (strict JSON: NaN becomes null)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Trace":
        """Inverse of to_dict; checks schema, version and shapes."""
        if not isinstance(data, dict) or data.get("schema") != TRACE_SCHEMA:
            raise BriLLMError(f"not a trace document (expected schema {TRACE_SCHEMA!r})")
        if data.get("version") != TRACE_VERSION:
            raise BriLLMError(f"trace version {data.get('version')} is not supported (this build reads {TRACE_VERSION})")
        try:
            steps = data["steps"]
            path = torch.tensor(data["path"], dtype=torch.int64)
            settings_raw = dict(data["settings"])
            if settings_raw.get("start_signal") is not None:
                settings_raw["start_signal"] = tuple(settings_raw["start_signal"])
            settings = DecodeSettings(**settings_raw)
            if len(steps) != path.numel() - 1:
                raise BriLLMError("trace has a path whose length does not match its steps")
            v = data.get("vocab_size") or 0
            d = data.get("hidden_size") or 0
            energies = _tensor([s["energies"] for s in steps], (len(steps), v))
            probabilities = _tensor([s["probabilities"] for s in steps], (len(steps), v))
            signals_in = _tensor([s["signal_in"] for s in steps], (len(steps), d))
            outputs = _tensor([s["output"] for s in steps], (len(steps), d))
            memory = [_tensor(s["memory_weights"], (i,)) for i, s in enumerate(steps)]
            forced = torch.tensor([bool(s["forced"]) for s in steps], dtype=torch.bool)
            for i, s in enumerate(steps):
                if s["source"] != int(path[i]) or s["target"] != int(path[i + 1]):
                    raise BriLLMError(f"trace step {i} disagrees with the path")
        except (KeyError, TypeError, ValueError) as exc:
            raise BriLLMError(f"malformed trace document: {exc}") from exc
        return cls(
            path=path,
            energies=energies,
            probabilities=probabilities,
            signals_in=signals_in,
            outputs=outputs,
            memory=memory,
            forced=forced,
            settings=settings,
            tokens=data.get("tokens"),
            unknown=list(data.get("unknown") or []),
            model_id=data.get("model_id", ""),
        )

    @classmethod
    def from_json(cls, text: str) -> "Trace":
        """Parse JSON text written by to_json."""
        return cls.from_dict(jsonfile.loads(text, "trace file"))


def _floats(t: torch.Tensor) -> list[float | None]:
    """float32 tensor -> list with None for NaN (exact: float32 values survive float64 repr)."""
    return [None if math.isnan(v) else v for v in t.tolist()]


def _tensor(values: list, shape: tuple[int, ...]) -> torch.Tensor:
    """Nested lists with None -> float32 tensor of the given shape (NaN for None)."""
    flat = torch.tensor(_none_to_nan(values), dtype=torch.float32) if values else torch.zeros(0)
    if flat.numel() != math.prod(shape):
        raise ValueError(f"expected {shape} values, got {tuple(flat.shape)}")
    return flat.reshape(shape)


def _none_to_nan(values: list) -> list:
    """Replace None by NaN at any depth."""
    return [(_none_to_nan(v) if isinstance(v, list) else (math.nan if v is None else v)) for v in values]
