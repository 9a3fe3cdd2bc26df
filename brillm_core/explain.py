"""Every number of one step, written out: what the teaching mode shows.

For step i of a trace and a target t, the signal x_i (with the memory terms a_j c_j that
make it), the edge's row, x_i @ W, the bias, the PE row, the pre-activation, the GELU
output, its energy, and the softmax that turns all energies into the probability of t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import decode
from .model import BriLLM
from .trace import Trace


@dataclass
class StepExplanation:
    """The arithmetic of edge (source -> target) at one step, term by term."""

    step: int
    source: int
    target: int
    row: int
    pe_index: int
    memory_weights: torch.Tensor  # (i,) a_j
    memory_terms: torch.Tensor  # (i, d) a_j * c_j; they sum to signal (empty at step 0)
    signal: torch.Tensor  # (d,) x_i
    weight: torch.Tensor  # (d, d) W[row]
    product: torch.Tensor  # (d,) x_i @ W
    bias: torch.Tensor  # (d,)
    pe: torch.Tensor  # (d,)
    pre_activation: torch.Tensor  # (d,) product + bias + pe
    output: torch.Tensor  # (d,) GELU(pre_activation)
    energy: float  # ||output||
    temperature: float
    log_normaliser: float  # log sum_t' exp(E(t') / T) over the candidates
    probability: float


@torch.no_grad()
def explain_step(model: BriLLM, trace: Trace, step: int, target: int | None = None) -> StepExplanation:
    """Recompute step ``step`` of ``trace`` for ``target`` (default: the node taken) term by term."""
    s = trace.step(step)
    target = s.target if target is None else int(target)
    if not 0 <= target < model.vocab_size:
        raise ValueError(f"target {target} is not a node id (0..{model.vocab_size - 1})")
    settings = trace.settings
    weights = s.memory_weights.to(model.device)
    terms = weights[:, None] * trace.outputs[:step].to(model.device)
    signal = s.signal_in.to(model.device)
    row = int(model.edges.rows(torch.tensor(s.source), torch.tensor(target)))
    pe_index = decode.pe_index(step, settings)
    rows = slice(row, row + 1)
    product, pre = (term[0] for term in model.row_terms(signal.unsqueeze(0), rows, pe_index))
    output = model.row_outputs(signal.unsqueeze(0), rows, pe_index)[0]
    bias = model.biases[row, 0]
    pe = model.pe[pe_index]
    temperature = decode.temperature(settings)
    log_z = float(torch.logsumexp(decode.logits(s.energies.double(), settings), 0))
    energy = float(output.norm())
    return StepExplanation(
        step=step, source=s.source, target=target, row=row, pe_index=pe_index,
        memory_weights=weights.cpu(), memory_terms=terms.cpu(), signal=signal.cpu(),
        weight=model.weights[row].cpu(), product=product.cpu(), bias=bias.cpu(), pe=pe.cpu(),
        pre_activation=pre.cpu(), output=output.cpu(), energy=energy, temperature=temperature,
        log_normaliser=log_z, probability=float(torch.exp(torch.tensor(energy / temperature, dtype=torch.float64) - log_z)),
    )
