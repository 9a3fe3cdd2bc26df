"""Run a path through the graph: teacher-forced prompt steps, then generation, recorded.

Each step's signal, candidates and probabilities follow the one decode rule in
``decode.py`` (training semantics by default, the release's decoder on request).
A step is a few tiny tensor operations: a process that propagates many paths runs
fastest with one intra-op thread (``torch.set_num_threads(1)``), which the ``brillm``
command and the app set when they start.
"""

from __future__ import annotations

import math
import operator
from typing import Callable, Sequence

import torch

from .decode import check_start_signal, step_distribution, step_signal
from .errors import PromptError, SignalOverflowError
from .model import BriLLM
from .trace import DecodeSettings, Trace


def check_path_length(model: BriLLM, prompt_length: int, max_new_tokens: int) -> None:
    """Raise PromptError unless the prompt plus new tokens fits the position table."""
    limit = model.config.max_positions
    if prompt_length + max_new_tokens > limit:
        raise PromptError(
            f"prompt of {prompt_length} tokens plus {max_new_tokens} new tokens exceeds the "
            f"position table of {limit}; shorten the prompt to at most {limit - max_new_tokens} tokens "
            f"or ask for at most {max(limit - prompt_length, 0)} new tokens"
        )


def _validate_ids(model: BriLLM, ids: Sequence[int]) -> list[int]:
    """Prompt ids as ints, checked against the vocabulary."""
    if len(ids) == 0:
        raise PromptError(
            "empty prompt: a path needs a first node. Type some text, or start from a node "
            "by its id (Python: propagate(model, [NODE_ID], ...); CLI: --ids NODE_ID)"
        )
    out = []
    for pos, value in enumerate(ids):
        try:
            if isinstance(value, bool):
                raise TypeError
            v = operator.index(value)  # ints, numpy integers, 0-d integer tensors
        except TypeError:
            raise PromptError(f"prompt id at position {pos} is not an integer: {value!r}") from None
        if not 0 <= v < model.vocab_size:
            raise PromptError(f"prompt id {v} at position {pos} is not a node id (0..{model.vocab_size - 1})")
        out.append(v)
    return out


def choose_next(
    energies: torch.Tensor, probabilities: torch.Tensor, settings: DecodeSettings, generator: torch.Generator | None
) -> int:
    """Greedy: highest energy, lowest id on ties. Sampled: from the (top-k) probabilities."""
    if settings.greedy:
        e = torch.nan_to_num(energies, nan=-math.inf)
        return int(torch.argmax(e))  # argmax returns the first maximum: lowest id on ties
    p = torch.nan_to_num(probabilities, nan=0.0)
    if settings.top_k is not None and settings.top_k < p.numel():
        keep = torch.topk(p, settings.top_k).indices
        mask = torch.zeros_like(p, dtype=torch.bool)
        mask[keep] = True
        p = torch.where(mask, p, torch.zeros_like(p))
    if not (torch.isfinite(p).all() and p.sum() > 0):  # energies overflowed float32: no distribution to sample
        raise SignalOverflowError()
    return int(torch.multinomial(p.cpu().double(), 1, generator=generator))


@torch.no_grad()
def propagate(
    model: BriLLM,
    prompt_ids: Sequence[int],
    settings: DecodeSettings | None = None,
    *,
    token_text: Callable[[int], str] | None = None,
    unknown: list | None = None,
    model_id: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> Trace:
    """Teacher-force ``prompt_ids`` then generate ``settings.max_new_tokens``, recording all.

    ``token_text`` maps node ids to text for the trace's ``tokens``; ``unknown`` records
    prompt pieces that were mapped to the unknown node; ``progress(done, total)`` is
    called after every step.
    """
    settings = settings or DecodeSettings()
    ids = _validate_ids(model, prompt_ids)
    check_path_length(model, len(ids), settings.max_new_tokens)
    check_start_signal(model, settings)
    d, V = model.hidden_size, model.vocab_size
    n = len(ids) - 1 + settings.max_new_tokens
    dev = model.device
    energies = torch.empty(n, V)
    probabilities = torch.empty(n, V)
    signals_in = torch.empty(n, d)
    kept = torch.empty(n, d, device=dev)
    memory: list[torch.Tensor] = []
    path = list(ids)
    generator = torch.Generator().manual_seed(settings.seed) if settings.seed is not None else None
    for i in range(n):
        signal, weights = step_signal(model, path[0], kept[:i], settings)
        outputs, e, p = step_distribution(model, path[i], signal, i, settings)
        if i + 1 >= len(ids):
            path.append(choose_next(e, p, settings, generator))
        kept[i] = outputs[path[i + 1]]
        energies[i] = e.cpu()
        probabilities[i] = p.cpu()
        signals_in[i] = signal.cpu()
        memory.append(weights.cpu())
        if progress:
            progress(i + 1, n)
    forced = torch.arange(n) < len(ids) - 1
    return Trace(
        path=torch.tensor(path, dtype=torch.int64),
        energies=energies,
        probabilities=probabilities,
        signals_in=signals_in,
        outputs=kept.cpu(),
        memory=memory,
        forced=forced,
        settings=settings,
        tokens=[token_text(u) for u in path] if token_text else None,
        unknown=list(unknown or []),
        model_id=model_id,
    )


def reroute(model: BriLLM, trace: Trace, step: int, node: int, **kwargs) -> Trace:
    """Rerun ``trace`` with step ``step`` forced to ``node``; later steps are recomputed exactly.

    The result equals a fresh propagation of the forced prefix u_0..u_step, node with the
    same settings and as many new tokens as the original had after that step.
    """
    if not 0 <= step < trace.num_steps:
        raise PromptError(f"cannot re-route step {step}: the trace has steps 0..{trace.num_steps - 1}")
    prefix = trace.path[: step + 1].tolist() + [int(node)]
    remaining = trace.num_steps - step - 1
    return propagate(model, prefix, trace.settings.with_new_tokens(remaining), model_id=trace.model_id, **kwargs)
