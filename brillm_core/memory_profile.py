"""What a model's memory learned, in two numbers a reader can check: weight by distance, and entropy.

The memory weights a = softmax(positions[:i]) depend only on the step i, never on the
text, so they can be summarised without running the model: at every step of a path of
``length`` nodes, the weight of the output k steps back (k = 1 is the previous output),
averaged over the steps that reach that far back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .model import BriLLM


@dataclass(frozen=True)
class MemoryProfile:
    """Mean memory weight by distance over the steps of a path, and the weights' mean entropy."""

    length: int  # nodes in the path summarised (steps 1 .. length - 2 have a memory)
    by_distance: tuple[float, ...]  # [k - 1]: mean weight of the output k steps back
    entropy: float  # mean entropy of a over those steps, in nats (0: one output holds all the weight)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready figures."""
        return {"length": self.length, "by_distance": list(self.by_distance), "entropy_nats": self.entropy}


@torch.no_grad()
def memory_profile(model: BriLLM, length: int) -> MemoryProfile:
    """The memory of a path of ``length`` nodes (at most the position table): mean weight k steps back, entropy."""
    if not 3 <= length <= model.config.max_positions:
        raise ValueError(f"length must be in 3..{model.config.max_positions}, got {length}")
    steps = range(1, length - 1)  # the steps whose signal is a memory (step 0 gets the start signal)
    totals = torch.zeros(length - 2, dtype=torch.float64)
    counts = torch.zeros(length - 2, dtype=torch.float64)
    entropy = 0.0
    for i in steps:
        weights = model.memory_weights(i).double().cpu()
        totals[:i] += weights.flip(0)  # distance 1 first
        counts[:i] += 1
        positive = weights[weights > 0]
        entropy -= float((positive * positive.log()).sum())
    return MemoryProfile(length, tuple((totals / counts).tolist()), entropy / len(steps))
