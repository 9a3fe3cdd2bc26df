"""Full-vocabulary scoring of a text: log-likelihood, perplexity, top-1/top-5 accuracy.

Unlike the training loss (a sampled (1 + k)-way cross-entropy), every node competes at
every step here. A text longer than the window (default: the position table, L) is
scored in consecutive windows, each a fresh path (its first token is not predicted).
Log-probabilities are computed from the energies in float64, so a very unlikely target
costs a large finite loss instead of underflowing to zero.

Ties are scored fairly: all targets on the shared row 0 of a source tie, and after an
unseen token every node may. A target with g nodes strictly above it and m nodes tied
with it (itself included) is a top-k hit with probability clamp((k - g) / m, 0, 1), the
chance that ties broken uniformly at random put it in the first k; its expected rank
(1 = best) is g + (m + 1) / 2. Accuracies are these expectations summed, not a count
that gives every tie to the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .decode import log_probabilities
from .errors import PromptError
from .model import BriLLM
from .propagate import propagate
from .trace import DecodeSettings


def expected_hits(greater: torch.Tensor, tied: torch.Tensor, k: int) -> torch.Tensor:
    """Probability of a top-``k`` hit with ``greater`` nodes strictly above and ``tied`` equal (target included)."""
    return ((k - greater.double()) / tied.double()).clamp(0.0, 1.0)


def tie_ranks(values: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of ``values`` (N, V): nodes strictly above the target's value, and nodes equal to it (target included)."""
    chosen = values.gather(1, targets[:, None])
    return (values > chosen).sum(dim=1), (values == chosen).sum(dim=1)


@dataclass
class Score:
    """Summed negative log-likelihood, expected top-1/top-5 hits and expected ranks over the predicted tokens."""

    predicted: int = 0
    nll: float = 0.0
    top1: float = 0.0
    top5: float = 0.0
    rank: float = 0.0  # summed expected rank (1 = best)

    @classmethod
    def from_ranks(cls, greater: torch.Tensor, tied: torch.Tensor, nll: float) -> "Score":
        """Score of predictions whose targets have ``greater`` nodes above and ``tied`` equal, ties shared fairly."""
        return cls(
            predicted=int(greater.numel()),
            nll=nll,
            top1=float(expected_hits(greater, tied, 1).sum()),
            top5=float(expected_hits(greater, tied, 5).sum()),
            rank=float((greater.double() + (tied.double() + 1) / 2).sum()),
        )

    @property
    def perplexity(self) -> float:
        """exp(mean NLL) over predicted tokens."""
        return math.exp(self.nll / self.predicted) if self.predicted else math.nan

    @property
    def mean_rank(self) -> float:
        """Expected rank of the target (1 = the highest energy), averaged over predicted tokens."""
        return self.rank / self.predicted if self.predicted else math.nan

    @property
    def top1_accuracy(self) -> float:
        """Expected share of tokens that were the highest-energy node (ties broken at random)."""
        return self.top1 / self.predicted if self.predicted else math.nan

    @property
    def top5_accuracy(self) -> float:
        """Expected share of tokens among the five highest-energy nodes (ties broken at random)."""
        return self.top5 / self.predicted if self.predicted else math.nan

    def add(self, other: "Score") -> "Score":
        """Sum of two scores."""
        return Score(
            self.predicted + other.predicted, self.nll + other.nll, self.top1 + other.top1, self.top5 + other.top5, self.rank + other.rank
        )

    def to_dict(self) -> dict[str, float | int]:
        """Figures for reports and metadata."""
        return {
            "tokens": self.predicted,
            "nll": self.nll,
            "perplexity": self.perplexity,
            "top1_accuracy": self.top1_accuracy,
            "top5_accuracy": self.top5_accuracy,
            "mean_rank": self.mean_rank,
        }


def score_ids(
    model: BriLLM, ids: Sequence[int], settings: DecodeSettings | None = None, window: int | None = None
) -> Score:
    """Score one token sequence, in windows of ``window`` tokens (default: the position table's length)."""
    settings = (settings or DecodeSettings()).with_new_tokens(0)
    if len(ids) < 2:
        raise PromptError("scoring needs at least two tokens (the first one is not predicted)")
    window = min(window or model.config.max_positions, model.config.max_positions)
    if window < 2:
        raise PromptError(f"the scoring window must hold at least 2 tokens, got {window}")
    total = Score()
    for start in range(0, len(ids), window):
        chunk = list(ids[start : start + window])
        if len(chunk) < 2:
            break
        if settings.release_decoder:
            _refuse_self_loops(chunk, start)
        trace = propagate(model, chunk, settings)
        targets = trace.targets
        energies = torch.nan_to_num(trace.energies.double(), nan=-math.inf)
        log_probs = log_probabilities(trace.energies, settings).gather(1, targets[:, None])
        greater, tied = tie_ranks(energies, targets)
        total = total.add(Score.from_ranks(greater, tied, float(-log_probs.sum())))
    return total


def _refuse_self_loops(chunk: Sequence[int], offset: int) -> None:
    """Under the release's decoder a node never follows itself, so such a text has probability 0:
    refuse it with the position instead of reporting an infinite perplexity."""
    for i in range(len(chunk) - 1):
        if int(chunk[i]) == int(chunk[i + 1]):
            raise PromptError(
                f"token {offset + i + 1} (counting from 0) repeats the token before it (node {int(chunk[i])}); the release's decoder "
                "never offers a node as its own successor, so this text has probability 0 under it. "
                "Score it with the training semantics (without the release-decoder switch)"
            )
