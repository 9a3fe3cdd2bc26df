"""The starts of a training run (``--init``), and the one gradient rule a start sets.

- ``random`` (``random.py``, the default): the release's uniform start; training fits every parameter.
- ``counts`` (``counts.py``): the biases hold the training text's Kneser-Ney bigram, W = 0.
- ``context`` (``context.py``): that bigram plus a rank d - 1 trigram correction that the
  memory carries; its position logits are a steep ramp, which forces the memory onto one
  token, the previous output.

``counts`` and ``context`` are research options: fitted by counting, not by training.
After ``context``, or ``counts`` with a code, channel 0 of every output is its energy, so
W's first input row would act as a second, fast-learning bias; ``hold_energy_input``
keeps it at its start (0) by a gradient hook, outside the trainer.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from ...config import ModelConfig
from ...data import BigramCounts
from ...model import BriLLM
from ...tokenizer import CharTokenizer, NodeTokenizer
from ..settings import TrainSettings
from .context import context_initialise, fit_context
from .counts import count_initialise
from .random import init_model


def start_model(settings: TrainSettings, tokenizer: NodeTokenizer, counts: BigramCounts, stream: torch.Tensor, name: str,
                report: Callable[[int, float], None] | None = None) -> tuple[BriLLM, float]:
    """A new model set to the start ``settings.init`` names, and the seconds a fitted start took.

    Its own rows are the bigrams seen at least --min-count times; ``report(iteration, nll)``
    follows the context fit.
    """
    edges = counts.edges(settings.min_count)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=settings.hidden_size,
        max_positions=settings.max_positions,
        num_rows=edges.num_rows,
        tokenizer="char" if isinstance(tokenizer, CharTokenizer) else "bpe",
        unk_id=tokenizer.unk_id,
        name=name,
    )
    model = init_model(config, edges, settings.seed)
    started = time.perf_counter()
    if settings.init == "counts":
        count_initialise(model, counts, settings.min_count, code=settings.init_code, seed=settings.seed)
    elif settings.init == "context":
        factors = fit_context(model.edges, counts, stream, settings.hidden_size - 1, settings.context_l2,
                              settings.context_iterations, min_count=settings.min_count, seed=settings.seed, report=report)
        context_initialise(model, counts, factors, settings.min_count, positions=settings.seq_len)
    else:
        return model, 0.0
    return model, time.perf_counter() - started


def holds_energy_input(settings: TrainSettings) -> bool:
    """Whether the start puts the energy in every output's channel 0 (context, or counts with a code)."""
    return settings.init == "context" or (settings.init == "counts" and settings.init_code > 0)


def hold_energy_input(weights: torch.nn.Parameter, hidden_size: int) -> None:
    """Zero the gradient of every W's first input row, whatever the step: ``weights`` is the (rows, d * d) flat view.

    Channel 0 of the signal is then a weighted sum of earlier energies, nearly the same at
    every step: W's first row would act as a second bias, one that learns 20-40 times
    faster than the biases and overfits the training bigrams. W learns from the code
    channels only.
    """
    d = hidden_size

    def drop(grad: torch.Tensor) -> torch.Tensor:
        if grad.is_sparse:
            values = grad._values().clone()
            values[:, :d] = 0
            return torch.sparse_coo_tensor(grad._indices(), values, grad.shape, is_coalesced=grad.is_coalesced(),
                                           check_invariants=False)
        held = grad.clone()
        held.view(-1, d, d)[:, 0, :] = 0
        return held

    weights.register_hook(drop)
