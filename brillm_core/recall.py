"""Recall activation: how a context's signal spreads over the graph without committing to a path.

The paper names "recall activation" but defines no procedure; this is ours (README,
"Recall activation"). From the state after a teacher-forced context, every hop expands
each frontier path to its ``branch`` most probable successors, each with its own memory
(the successor's output joins that path's memory, exactly as in generation). A path's
mass is the product of the probabilities along it, starting at 1. A node's activation is
the total mass of explored paths that reach it, summed over hops: the expected number of
visits within ``hops`` steps, restricted to the explored tree. Only the ``beam`` heaviest
paths are kept at each hop, so the cost is bounded by hops x beam x one step.

The reverse view answers "who sends energy into node t": the energy every source s
would give t from a given signal (the context's next signal, or each source's own start
signal when there is no context), with the share of s's probability mass that t gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import pandas as pd
import torch

from .checkpoint import require_finite
from .decode import SourceEnergies, excludes_self_loop, source_energies, start_signals, step_distribution, step_signal
from .errors import PromptError, SignalOverflowError
from .model import BriLLM
from .propagate import check_path_length, propagate
from .trace import DecodeSettings

# The largest spread a run may ask for, so that its cost is bounded before it starts: about hops x beam x branch
# steps, each over the whole vocabulary.
RECALL_LIMITS = {"hops": 32, "branch": 64, "beam": 1024}


@dataclass
class RecallResult:
    """Activation per node, the hop at which each was first reached, and the explored edges."""

    context: list[int]
    activation: torch.Tensor  # (V,) float64 summed path mass
    first_hop: torch.Tensor  # (V,) int64, 0 for nodes never reached
    edges: list[tuple[int, int, int, float]] = field(default_factory=list)  # (hop, source, target, mass)

    def to_frame(self, tokens: Sequence[str] | None = None) -> pd.DataFrame:
        """Reached nodes ranked by activation (ties by id): node, token, activation, first_hop."""
        reached = torch.nonzero(self.first_hop > 0).flatten().tolist()
        rows = sorted(reached, key=lambda n: (-float(self.activation[n]), n))
        return pd.DataFrame(
            {
                "node": rows,
                "token": [tokens[n] if tokens else None for n in rows],
                "activation": [float(self.activation[n]) for n in rows],
                "first_hop": [int(self.first_hop[n]) for n in rows],
                "in_context": [n in self.context for n in rows],
            },
            columns=["node", "token", "activation", "first_hop", "in_context"],
        )


@torch.no_grad()
def recall_activation(
    model: BriLLM,
    context: Sequence[int],
    hops: int = 3,
    branch: int = 5,
    beam: int = 64,
    settings: DecodeSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RecallResult:
    """Spread the context's signal over ``hops`` hops (see module docstring); ``progress(hop, hops)``
    is called after every hop."""
    for name, value in (("hops", hops), ("branch", branch), ("beam", beam)):
        if not 1 <= value <= RECALL_LIMITS[name]:
            raise PromptError(f"{name} must be in 1..{RECALL_LIMITS[name]} (got {value})")
    settings = settings or DecodeSettings()
    check_path_length(model, len(context), hops)
    trace = require_finite(propagate(model, list(context), settings.with_new_tokens(0)))
    V = model.vocab_size
    activation = torch.zeros(V, dtype=torch.float64)
    first_hop = torch.zeros(V, dtype=torch.int64)
    edges: list[tuple[int, int, int, float]] = []
    start = int(trace.path[-1])
    frontier = [(1.0, start, trace.outputs.to(model.device))]
    for hop in range(1, hops + 1):
        grown = []
        for mass, node, kept in frontier:
            signal, _ = step_signal(model, node, kept, settings)
            outputs, energies, probs = step_distribution(model, node, signal, kept.shape[0], settings)
            _require_finite_step(signal, outputs, energies, settings, hop)
            p = torch.nan_to_num(probs, nan=-1.0).cpu()
            order = torch.sort(p, descending=True, stable=True).indices[:branch].tolist()
            for t in order:
                if p[t] <= 0:
                    continue
                m = mass * float(p[t])
                activation[t] += m
                if first_hop[t] == 0:
                    first_hop[t] = hop
                edges.append((hop, node, t, m))
                grown.append((m, t, torch.cat([kept, outputs[t : t + 1]])))
        grown.sort(key=lambda item: -item[0])  # stable: equal masses keep expansion order
        frontier = grown[:beam]
        if progress:
            progress(hop, hops)
    return RecallResult(context=[int(c) for c in context], activation=activation, first_hop=first_hop, edges=edges)


def _require_finite_step(signal: torch.Tensor, outputs: torch.Tensor, energies: torch.Tensor,
                         settings: DecodeSettings, hop: int) -> None:
    """SignalOverflowError when float32 overflowed in a hop's step (its energies would read inf and its
    probabilities NaN, and every path would end there, leaving an empty result)."""
    excluded = 1 if excludes_self_loop(settings) else 0
    if (not (torch.isfinite(signal).all() and torch.isfinite(outputs).all()) or torch.isinf(energies).any()
            or int(torch.isnan(energies).sum()) > excluded):
        raise SignalOverflowError(f" at hop {hop}")


@torch.no_grad()
def reverse_energies(
    model: BriLLM, context: Sequence[int] | None = None, settings: DecodeSettings | None = None
) -> SourceEnergies:
    """Every edge's energy under the reverse view's signal, the same for every target node: with a context of two
    or more nodes, every source receives the context's next signal at the context's next step; otherwise each
    source s starts a path (its own e_0, step 0)."""
    settings = settings or DecodeSettings()
    V, dev = model.vocab_size, model.device
    if context is not None and len(context) >= 2:
        trace = require_finite(propagate(model, list(context), settings.with_new_tokens(0)))
        signal, _ = step_signal(model, int(context[0]), trace.outputs.to(dev), settings)
        return source_energies(model, signal.expand(V, -1), len(context) - 1, settings)
    return source_energies(model, start_signals(model, torch.arange(V, device=dev), settings), 0, settings)


def incoming_from(model: BriLLM, energies: SourceEnergies, target: int) -> pd.DataFrame:
    """Energy each source sends into ``target`` under ``energies`` (``reverse_energies``), and t's share of that
    source's mass; sorted by energy, highest first (ties by source id). SignalOverflowError when float32
    overflowed (an energy inf, or NaN beyond the barred self-loop)."""
    V = model.vocab_size
    if not 0 <= target < V:
        raise PromptError(f"target {target} is not a node id (0..{V - 1})")
    energy, prob = energies.into(target), energies.probability_into(target).float()
    candidate = ~torch.isnan(energy)  # all but the target itself when self-loops are barred
    if (int((~candidate).sum()) > int(energies.self_loops_barred) or torch.isinf(energy).any()
            or not torch.isfinite(prob[candidate]).all()):
        raise SignalOverflowError(f" in the energies into node {target}")
    frame = pd.DataFrame(
        {
            "source": torch.arange(V).numpy(),
            "energy": energy.cpu().numpy(),
            "probability": prob.cpu().numpy(),
            "own_row": (model.edges.rows_into(target) > 0).cpu().numpy(),
        }
    )
    frame = frame.sort_values(["energy", "source"], ascending=[False, True], kind="stable", na_position="last")
    return frame.reset_index(drop=True)


def incoming_energy(
    model: BriLLM,
    target: int,
    context: Sequence[int] | None = None,
    settings: DecodeSettings | None = None,
) -> pd.DataFrame:
    """Energy each source would send into ``target``, and t's share of that source's mass.

    With a context of two or more nodes, every source receives the context's next signal
    at the context's next step; otherwise each source s starts a path (its own e_0, step 0).
    Sorted by energy, highest first (ties by source id). A view that asks for many targets
    of one context computes ``reverse_energies`` once and reads each with ``incoming_from``.
    """
    if not 0 <= target < model.vocab_size:
        raise PromptError(f"target {target} is not a node id (0..{model.vocab_size - 1})")
    return incoming_from(model, reverse_energies(model, context, settings), target)
