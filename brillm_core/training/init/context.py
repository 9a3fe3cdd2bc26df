"""Context initialisation: the row-tied Kneser-Ney bigram plus a low-rank trigram correction, set by hand.

A BriLLM's memory can carry the previous token. With the position logits a steep ramp
(slope STEEP), the signal at step i >= 1 is the output kept at step i - 1, to within
e^-STEEP: the output of edge (u_{i-1}, u_i). Its d - 1 channels other than the energy's
can hold a code ``h`` of that edge (the bias, in GELU's linear regime), and the W of every
edge (u_i, t) can read it into the energy channel: the logit of target t becomes the
bigram's plus ``h(u_{i-1}, u_i) . g(u_i, t)``, a per-node log-bilinear trigram model of
rank d - 1. This module fits ``h`` and ``g`` on the training text's trigram counts by
maximum likelihood with an L2 penalty (``fit_context``: a MAP estimate whose prior is the
bigram), through that exact approximation of the model, and writes them into the
parameters (``context_initialise``). Shared-row edges keep h = g = 0: a context never seen
in training, or a target never seen after its source, falls back on the bigram.

How the parameters express it (d = 1 + R, codes scaled by ALPHA, offset by ``level``):
- bias channel k >= 1 of row r: ``mu + ALPHA * h_r[k - 1]``, with mu so that every code
  channel stays >= 5 after the PE's -1 (GELU(z) = z to within 2e-6 there);
- W_r[k, 0] = g_r[k - 1] / ALPHA for k >= 1, every other entry of W 0 (the energy channel of
  the signal is not read, the code channels are not rewritten);
- bias channel 0: ENERGY + the bigram's relative logit - mu * sum(g_r) / ALPHA, minus the
  mean (over the first positions) lift that the code channels add to the norm, so the
  energy is ENERGY + logit + h . g up to errors of the order PE . g / ALPHA (the PE in the
  kept code) and the spread of that lift over positions (both measured, see the card).
- node biases put the neutral code mu into the start signal, so step 0 is the bigram.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .counts import relative_logits
from ...data import BigramCounts
from ...edges import EdgeTable
from ...model import BriLLM

ALPHA = 200.0  # scale of the code in the bias channels: larger codes shrink the PE's share of the signal
ENERGY = 5.0e4  # level of the energy channel: divides the code's lift of the norm; float32 rounds it by 4e-3
STEEP = 30.0  # slope of the position logits: the memory is the last output to within e^-30
LINEAR = 5.0  # smallest code channel after the PE: GELU(z) = z to within 2e-6 above 5


def trigram_counts(stream: torch.Tensor, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted trigram keys (u * V + v) * V + w of a token stream and their counts."""
    V = vocab_size
    keys = (stream[:-2] * V + stream[1:-1]) * V + stream[2:]
    return torch.unique(keys, return_counts=True)


@dataclass
class ContextFactors:
    """Codes h (context rows) and read-outs g (target rows), both (num_rows, rank); row 0 is zero."""

    context: torch.Tensor
    target: torch.Tensor


@dataclass
class _Block:
    """One source node v: its context rows (edges into v), own target rows, trigram counts between them."""

    contexts: torch.Tensor
    targets: torch.Tensor
    counts: torch.Tensor  # (len(contexts), len(targets)) trigram counts
    log_shared: float  # log of the number of v's shared-row targets (-inf if none)


def _blocks(edges: EdgeTable, stream: torch.Tensor) -> list[_Block]:
    """Per source node, the trigram counts of the training stream between its in- and out-edges."""
    V = edges.vocab_size
    keys, n = trigram_counts(stream, V)
    uv, vw = keys // V, keys % (V * V)
    ctx_rows, tgt_rows = edges.rows(uv // V, uv % V), edges.rows(vw // V, vw % V)
    middle = vw // V
    blocks = []
    for v in torch.unique(middle).tolist():
        start, stop = int(edges.indptr[v]), int(edges.indptr[v + 1])
        pick = (middle == v) & (ctx_rows > 0) & (tgt_rows > 0)
        if stop == start or not bool(pick.any()):
            continue
        contexts, ctx_index = torch.unique(ctx_rows[pick], return_inverse=True)
        dense = torch.zeros(contexts.numel(), stop - start)
        dense.index_put_((ctx_index, tgt_rows[pick] - start - 1), n[pick].float(), accumulate=True)
        shared = V - (stop - start)
        blocks.append(_Block(contexts, torch.arange(start + 1, stop + 1), dense, math.log(shared) if shared else -math.inf))
    return blocks


def _block_loss(block: _Block, base: torch.Tensor, h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Summed negative log-likelihood of a block's trigrams under logits base + h . g (shared targets: logit 0)."""
    logits = base[block.targets][None, :] + h[block.contexts] @ g[block.targets].T
    shared = torch.full((logits.shape[0], 1), block.log_shared)
    lse = torch.logsumexp(torch.cat([logits, shared], 1), 1)
    return (block.counts.sum(1) * lse).sum() - (block.counts * logits).sum()


def fit_context(
    edges: EdgeTable,
    counts: BigramCounts,
    stream: torch.Tensor,
    rank: int,
    l2: float,
    iterations: int,
    *,
    min_count: int = 1,
    lr: float = 0.05,
    seed: int = 0,
    report: Callable[[int, float], None] | None = None,
) -> ContextFactors:
    """Fit rank-``rank`` codes and read-outs by full-batch Adam on the trigram likelihood + ``l2`` (|h|^2 + |g|^2).

    The loss is per training trigram; ``report(iteration, loss)`` is called every 10 iterations.
    """
    base = relative_logits(edges, counts, min_count).float()
    base = torch.cat([torch.zeros(1), base])
    blocks = _blocks(edges, stream)
    total = float(sum(float(b.counts.sum()) for b in blocks))
    gen = torch.Generator().manual_seed(seed)
    P = edges.num_rows
    h = (torch.randn(P, rank, generator=gen) * 0.1).requires_grad_()
    g = (torch.randn(P, rank, generator=gen) * 0.1).requires_grad_()
    mask = torch.ones(P, 1)
    mask[0] = 0.0  # the shared row carries no code and reads none
    opt = torch.optim.Adam([h, g], lr=lr)
    for it in range(iterations):
        opt.zero_grad()
        hm, gm = h * mask, g * mask
        nll = sum(_block_loss(b, base, hm, gm) for b in blocks) / total
        loss = nll + l2 * ((hm**2).sum() + (gm**2).sum()) / total
        loss.backward()
        opt.step()
        if report is not None and (it % 10 == 0 or it == iterations - 1):
            report(it, float(nll.detach()))
    with torch.no_grad():
        return ContextFactors((h * mask).detach(), (g * mask).detach())


@torch.no_grad()
def context_initialise(
    model: BriLLM, counts: BigramCounts, factors: ContextFactors, min_count: int = 1, positions: int = 32,
    alpha: float = ALPHA, energy: float = ENERGY,
) -> None:
    """Set ``model`` to the row-tied bigram plus the fitted trigram correction (see the module docstring).

    ``positions``: the path steps over which the code's lift of the norm is averaged
    (the training sequence length).
    """
    d = model.hidden_size
    rank = d - 1
    if factors.context.shape[1] != rank:
        raise ValueError(f"factors have rank {factors.context.shape[1]}, a width-{d} model holds {rank}")
    relative = torch.cat([torch.zeros(1, dtype=torch.float64), relative_logits(model.edges, counts, min_count)])
    code = alpha * factors.context.double()
    mu = LINEAR + 1.0 - float(code.min().clamp(max=0.0))
    readout = factors.target.double() / alpha
    pe = model.pe.double()
    model.weights.zero_()
    model.weights[:, 1:, 0] = readout.to(model.weights.dtype)
    bias_code = mu + code  # (P, rank)
    # The norm's lift by the code channels at each PE row p = 1..positions: E = sqrt(o0^2 + rho_p^2).
    target = energy + relative
    lift = torch.zeros_like(target)
    for p in range(1, positions + 1):
        rho2 = ((bias_code + pe[p, 1:]) ** 2).sum(1)
        lift += target - (target**2 - rho2).sqrt()
    lift /= positions
    channel0 = target - mu * readout.sum(1) - lift
    model.biases[:, 0, 0] = channel0.to(model.biases.dtype)
    model.biases[:, 0, 1:] = bias_code.to(model.biases.dtype)
    model.node_bias.zero_()
    model.node_bias[:, 0, 0] = -10.0  # the start signal's energy channel is never read
    model.node_bias[:, 0, 1:] = (mu - 1.0 / d - model.pe[0, 1:]).to(model.node_bias.dtype)
    model.positions.copy_(STEEP * torch.arange(model.config.max_positions, dtype=model.positions.dtype).reshape(model.positions.shape))
