"""Full-vocabulary scoring of a text: log-likelihood, perplexity, top-1/top-5 accuracy.

Unlike the training loss (a sampled (1 + k)-way cross-entropy), every node competes at
every step here. A text longer than the window (default: the position table, L) is
scored in consecutive windows, each a fresh path (its first token is not predicted).
Log-probabilities are computed from the energies in float64, so a very unlikely target
costs a large finite loss instead of underflowing to zero.
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


@dataclass
class Score:
    """Summed negative log-likelihood and hit counts over the predicted tokens."""

    predicted: int = 0
    nll: float = 0.0
    top1: int = 0
    top5: int = 0

    @property
    def perplexity(self) -> float:
        """exp(mean NLL) over predicted tokens."""
        return math.exp(self.nll / self.predicted) if self.predicted else math.nan

    @property
    def top1_accuracy(self) -> float:
        """Share of tokens that were the highest-energy node."""
        return self.top1 / self.predicted if self.predicted else math.nan

    @property
    def top5_accuracy(self) -> float:
        """Share of tokens among the five highest-energy nodes."""
        return self.top5 / self.predicted if self.predicted else math.nan

    def add(self, other: "Score") -> "Score":
        """Sum of two scores."""
        return Score(self.predicted + other.predicted, self.nll + other.nll, self.top1 + other.top1, self.top5 + other.top5)

    def to_dict(self) -> dict[str, float | int]:
        """Figures for reports and metadata."""
        return {
            "tokens": self.predicted,
            "nll": self.nll,
            "perplexity": self.perplexity,
            "top1_accuracy": self.top1_accuracy,
            "top5_accuracy": self.top5_accuracy,
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
        trace = propagate(model, chunk, settings)
        targets = trace.targets
        energies = torch.nan_to_num(trace.energies.double(), nan=-math.inf)
        log_probs = log_probabilities(trace.energies, settings).gather(1, targets[:, None])
        chosen = energies.gather(1, targets[:, None])
        rank = (energies > chosen).sum(dim=1)  # ties count in the target's favour
        total = total.add(
            Score(
                predicted=len(chunk) - 1,
                nll=float(-log_probs.sum()),
                top1=int((rank < 1).sum()),
                top5=int((rank < 5).sum()),
            )
        )
    return total
