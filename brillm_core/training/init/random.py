"""The release's start: every edge matrix, edge bias and node bias uniform in [-0.5, 0.5], position logits ones."""

from __future__ import annotations

import torch

from ...config import ModelConfig
from ...edges import EdgeTable
from ...model import BriLLM


def init_model(config: ModelConfig, edges: EdgeTable, seed: int) -> BriLLM:
    """A fresh model with the release's initialisation drawn from ``seed``."""
    model = BriLLM(config, edges)
    model.reset_parameters(torch.Generator().manual_seed(seed))
    return model
