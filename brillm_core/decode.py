"""The decode rule, written once: how a step turns a signal into candidate energies and probabilities.

Propagation, re-routing, step explanations, recall, the reverse view, scoring and the
graph's edge strengths ask this module which PE row a step adds, which targets compete,
what the temperature does and which signal a step receives; training asks it only for
the PE row (``training_pe_index``). Two semantics exist (docs/model.md; the paper is
arXiv 2503.11299):

- training (the default): step i adds PE[i + 1], every node (the source included) is a
  candidate, and probabilities are softmax(E / T);
- the release's decoder (``DecodeSettings(release_decoder=True)``): step i adds PE[i],
  the source itself is never a candidate (no self-loop), and the temperature changes
  nothing (the release divided probabilities by it after the softmax).

The arithmetic itself (GELU, the memory sum, one edge's output) belongs to ``model.py``.
Energies of non-candidates are NaN; their probability is NaN too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import PromptError
from .model import BriLLM
from .trace import DecodeSettings

ROW_CHUNK = 65_536  # own-row edges computed at once by ``source_energies`` (about 8 MB of outputs at d = 32)


def training_pe_index(step: int) -> int:
    """PE row added at step ``step`` under the training semantics (the release's training loop)."""
    return step + 1


def pe_index(step: int, settings: DecodeSettings) -> int:
    """PE row added at step ``step``: PE[step + 1] in training, PE[step] in the release's decoder."""
    return step if settings.release_decoder else training_pe_index(step)


def temperature(settings: DecodeSettings) -> float:
    """The temperature that divides energies before the softmax (1 in the release's decoder)."""
    return 1.0 if settings.release_decoder else settings.temperature


def excludes_self_loop(settings: DecodeSettings) -> bool:
    """Whether the source itself is barred from being its own next node (the release's decoder)."""
    return settings.release_decoder


def check_start_signal(model: BriLLM, settings: DecodeSettings) -> None:
    """Raise PromptError unless the user's start signal, if any, has one value per node width."""
    if settings.start_signal is not None and len(settings.start_signal) != model.hidden_size:
        raise PromptError(
            f"start signal must have {model.hidden_size} values (the node width), got {len(settings.start_signal)}"
        )


def start_base(model: BriLLM, settings: DecodeSettings) -> torch.Tensor | None:
    """The user's replacement for ones(d) / d in the start signal, or None for the default."""
    check_start_signal(model, settings)
    return torch.tensor(settings.start_signal) if settings.start_signal is not None else None


def start_signals(model: BriLLM, nodes: torch.Tensor, settings: DecodeSettings) -> torch.Tensor:
    """e_0 of a path starting at each of ``nodes`` (N,) -> (N, d)."""
    return model.start_signal(nodes.to(model.device), start_base(model, settings))


def step_signal(
    model: BriLLM, first_node: int, kept: torch.Tensor, settings: DecodeSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """Signal x_i and memory weights of the step after ``kept`` (i, d) outputs of a path from ``first_node``.

    Step 0 (nothing kept) receives the start signal e_0 and has no memory weights;
    later steps receive the position-weighted sum of the kept outputs (the last
    ``settings.memory_window`` of them when that ablation is set).
    """
    if kept.shape[0] == 0:
        return model.start_signal(first_node, start_base(model, settings)), torch.zeros(0, device=model.device)
    return model.memory_signal(kept, settings.memory_window)


def logits(energies: torch.Tensor, settings: DecodeSettings) -> torch.Tensor:
    """Energies divided by the temperature, non-candidates (NaN) as -inf; same dtype as ``energies``. An
    overflowed (infinite) energy stays infinite, so that what follows is NaN and gets reported
    (nan_to_num would make it the largest finite number and a perplexity out of nothing)."""
    return torch.nan_to_num(energies, nan=-math.inf, posinf=math.inf, neginf=-math.inf) / temperature(settings)


def log_probabilities(energies: torch.Tensor, settings: DecodeSettings) -> torch.Tensor:
    """log p over the last dimension in float64, so that an unlikely target costs a finite amount."""
    return torch.log_softmax(logits(energies.double(), settings), dim=-1)


@torch.no_grad()
def step_distribution(
    model: BriLLM, source: int, signal: torch.Tensor, step: int, settings: DecodeSettings
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Outputs (V x d) of every edge from ``source``, energies (V) and probabilities (V) at ``step``.

    Non-candidates get energy and probability NaN; their output is still computed (a
    teacher-forced path may take a self-loop the release's decoder would not offer).
    """
    outputs = model.candidate_outputs(source, signal, pe_index(step, settings))
    energies = outputs.norm(dim=-1)
    if excludes_self_loop(settings):
        energies[source] = math.nan
    probabilities = torch.softmax(logits(energies, settings), dim=0)
    if excludes_self_loop(settings):
        probabilities[source] = math.nan
    return outputs, energies, probabilities


@dataclass
class SourceEnergies:
    """Every candidate energy of every source at one step, stored compactly.

    Edges with their own parameter row are listed one by one, in row order; all other
    edges of a source read the shared row 0 and so carry one energy, held once per
    source with the number of candidates that share it. Under the release's decoder
    the self-loops are no candidates: NaN if they own a row, left out of
    ``shared_count`` otherwise.
    """

    own_sources: torch.Tensor  # (R,) int64 source of each own-row edge, in row order
    own_targets: torch.Tensor  # (R,) int64 its target
    own_energy: torch.Tensor  # (R,) float32, NaN where not a candidate
    shared_energy: torch.Tensor  # (V,) float32 energy of each source's shared-row edges
    shared_count: torch.Tensor  # (V,) int64 number of shared-row candidates of each source
    temperature: float
    self_loops_barred: bool

    def into(self, target: int) -> torch.Tensor:
        """(V,) energy each source sends into ``target`` (NaN where it is not a candidate)."""
        energy = self.shared_energy.clone()
        hit = self.own_targets == target
        energy[self.own_sources[hit]] = self.own_energy[hit]
        if self.self_loops_barred:
            energy[target] = math.nan
        return energy

    def log_normaliser(self) -> torch.Tensor:
        """(V,) float64 log sum_t exp(E(t) / T) over each source's candidates (-inf if it has none)."""
        own = torch.nan_to_num(self.own_energy.double(), nan=-math.inf) / self.temperature
        shared = self.shared_energy.double() / self.temperature + self.shared_count.double().log()  # -inf if none
        peak = shared.scatter_reduce(0, self.own_sources, own, "amax")
        peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
        total = (shared - peak).exp().index_add_(0, self.own_sources, (own - peak[self.own_sources]).exp())
        return total.log() + peak

    def probability_into(self, target: int) -> torch.Tensor:
        """(V,) float64 probability each source gives ``target`` (NaN where it is not a candidate)."""
        return (self.into(target).double() / self.temperature - self.log_normaliser()).exp()


@torch.no_grad()
def source_energies(model: BriLLM, signals: torch.Tensor, step: int, settings: DecodeSettings) -> SourceEnergies:
    """Energies of every edge of the graph at ``step`` when each source s receives ``signals[s]`` (V, d).

    The batched form of ``step_distribution``: for any one source it gives the same
    energies. Own-row edges are computed ``ROW_CHUNK`` at a time.
    """
    V = model.vocab_size
    signals = signals.to(model.device)
    index = pe_index(step, settings)
    own_sources, own_targets = model.edges.own_pairs()
    own_energy = torch.empty(own_sources.numel(), device=model.device)
    for begin in range(0, own_sources.numel(), ROW_CHUNK):
        part = own_sources[begin : begin + ROW_CHUNK]
        rows = slice(begin + 1, begin + 1 + part.numel())
        own_energy[begin : begin + part.numel()] = model.row_outputs(signals[part], rows, index).norm(dim=-1)
    shared_energy = model.row_outputs(signals, slice(0, 1), index).norm(dim=-1)
    shared_count = V - torch.bincount(own_sources, minlength=V)
    barred = excludes_self_loop(settings)
    if barred:
        own_energy[own_sources == own_targets] = math.nan
        nodes = torch.arange(V, device=model.device)
        shared_count = shared_count - (model.edges.rows(nodes, nodes) == 0).long()
    return SourceEnergies(
        own_sources, own_targets, own_energy, shared_energy, shared_count, temperature(settings), barred
    )


def edge_strengths(model: BriLLM, settings: DecodeSettings | None = None) -> SourceEnergies:
    """Energy every edge (s, t) carries on the first step of a path that starts at s.

    This is what propagation shows at step 0 for a one-node prompt s under ``settings``
    (start signal, PE row and self-loop rule included): the token graph's edge strengths.
    """
    settings = settings or DecodeSettings()
    nodes = torch.arange(model.vocab_size, device=model.device)
    return source_energies(model, start_signals(model, nodes, settings), 0, settings)
