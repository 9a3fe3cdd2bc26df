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

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import pandas as pd
import torch

from .errors import PromptError
from .model import BriLLM, gelu
from .propagate import check_path_length, propagate, single_thread, step_distribution
from .trace import DecodeSettings


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
    if hops < 1 or branch < 1 or beam < 1:
        raise PromptError(f"hops, branch and beam must be >= 1 (got {hops}, {branch}, {beam})")
    settings = settings or DecodeSettings()
    check_path_length(model, len(context), hops)
    trace = propagate(model, list(context), settings.with_new_tokens(0))
    V = model.vocab_size
    activation = torch.zeros(V, dtype=torch.float64)
    first_hop = torch.zeros(V, dtype=torch.int64)
    edges: list[tuple[int, int, int, float]] = []
    base = torch.tensor(settings.start_signal) if settings.start_signal is not None else None
    start = int(trace.path[-1])
    frontier = [(1.0, start, trace.outputs.to(model.device))]
    with single_thread():
        for hop in range(1, hops + 1):
            step = len(context) - 1 + hop - 1
            grown = []
            for mass, node, kept in frontier:
                signal = model.start_signal(node, base) if step == 0 else model.memory_signal(kept)[0]
                outputs, _, probs = step_distribution(model, node, signal, step, settings)
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


@torch.no_grad()
def incoming_energy(
    model: BriLLM,
    target: int,
    context: Sequence[int] | None = None,
    settings: DecodeSettings | None = None,
) -> pd.DataFrame:
    """Energy each source would send into ``target``, and t's share of that source's mass.

    With a context of two or more nodes, every source receives the context's next signal
    at the context's next step; otherwise each source s starts a path (its own e_0, step 0).
    Sorted by energy, highest first (ties by source id).
    """
    settings = settings or DecodeSettings()
    V, dev = model.vocab_size, model.device
    if not 0 <= target < V:
        raise PromptError(f"target {target} is not a node id (0..{V - 1})")
    base = torch.tensor(settings.start_signal) if settings.start_signal is not None else None
    sources = torch.arange(V, device=dev)
    if context is not None and len(context) >= 2:
        trace = propagate(model, list(context), settings.with_new_tokens(0))
        step = len(context) - 1
        signal, _ = model.memory_signal(trace.outputs.to(dev))
        signals = signal.expand(V, -1)
    else:
        step = 0
        signals = torch.stack([model.start_signal(int(s), base) for s in sources])
    pe = model.pe[step if settings.release_decoder else step + 1]
    rows_in = model.edges.rows_into(target)
    energy = gelu(torch.einsum("vd,vde->ve", signals, model.weights[rows_in]) + model.biases[rows_in, 0] + pe).norm(dim=-1)
    # Normaliser of each source's softmax: its own edges one by one, its shared edges at once.
    own_src, own_tgt = model.edges.own_pairs()
    own_e = gelu(torch.einsum("rd,rde->re", signals[own_src], model.weights[1:]) + model.biases[1:, 0] + pe).norm(dim=-1)
    shared_e = gelu(signals @ model.weights[0] + model.biases[0, 0] + pe).norm(dim=-1)
    own_count = torch.bincount(own_src, minlength=V)
    logits_own, logits_shared, logits_t = own_e, shared_e, energy
    if not settings.release_decoder:
        t = settings.temperature
        logits_own, logits_shared, logits_t = own_e / t, shared_e / t, energy / t
    shared_count = (V - own_count).double()
    if settings.release_decoder:  # the self-loop s -> s is not a candidate
        self_own = own_src == own_tgt
        logits_own = logits_own.masked_fill(self_own, -math.inf)
        shared_count = shared_count - (~torch.isin(sources * V + sources, model.edge_keys)).double()
    peak = torch.maximum(logits_shared, torch.zeros(V, device=dev).scatter_reduce(0, own_src, logits_own, "amax", include_self=False))
    total = torch.zeros(V, dtype=torch.float64, device=dev).index_add_(0, own_src, (logits_own - peak[own_src]).double().exp())
    total += shared_count * (logits_shared - peak).double().exp()
    prob = ((logits_t - peak).double().exp() / total).float()
    if settings.release_decoder:
        prob[target] = math.nan
        energy[target] = math.nan
    frame = pd.DataFrame(
        {
            "source": sources.cpu().numpy(),
            "energy": energy.cpu().numpy(),
            "probability": prob.cpu().numpy(),
            "own_row": (rows_in > 0).cpu().numpy(),
        }
    )
    return frame.sort_values(["energy", "source"], ascending=[False, True], kind="stable", na_position="last").reset_index(drop=True)
