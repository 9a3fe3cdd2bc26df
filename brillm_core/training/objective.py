"""The training objectives: the exact full-vocabulary energy cross-entropy and the release's sampled one.

Per sequence u_0..u_{T-1} and position i, each candidate target's logit is its energy
||o_i(t)|| computed with the gold path's memory, and the loss is the mean cross-entropy
over positions. The exact objective (the default) lets all V targets compete
(``Objective.exact_loss``): the gold path alone gives every position's memory signal,
then every own row's energy comes from one product per source over all its positions
(``OwnEnergies``, the fused training form of the edge output), so each row is read once
per batch, and the targets on the shared row enter as one term weighted by their number.
The release's sampled objective makes the gold edge class 0 among 1 + k candidate edges;
negatives that read the shared row 0 are merged into one logit weighted by their number
(``compact_candidates``), which changes nothing but the work.

Every other edge output here is ``model.edge_outputs`` and every start signal
``model.start_signal``: the forward's definitions, on gathered rows.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..decode import training_pe_index
from ..edges import EdgeTable
from ..model import BriLLM, edge_outputs, gelu, memory_signal, start_signal

GATHER_BYTES = 512 * 2**20  # memory for the rows gathered at once (positions per gather follow)


def compact_candidates(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge the negatives that read the shared row 0 into one slot weighted by their number.

    Shared-row negatives from one source at one position all have the same output, so
    the m of them contribute m * exp(E_shared) to the softmax: one slot with logit offset
    log m gives the same loss and gradients with far fewer rows gathered. Returns rows
    (..., 2 + n) = gold, the n own-row negatives (padded with row 0), the shared slot,
    and logit offsets (0; -inf for padding; log m for the shared slot, -inf if m = 0).
    """
    gold, negs = rows[..., :1], rows[..., 1:]
    shared = negs == 0
    order = torch.argsort(shared.to(torch.int8), dim=-1, stable=True)  # own rows first, order kept
    own = negs.gather(-1, order)[..., : int((~shared).sum(-1).max())]
    zero = torch.zeros_like(gold, dtype=torch.float32)
    pad = torch.zeros_like(own, dtype=torch.float32).masked_fill_(own == 0, -math.inf)
    multiplicity = shared.sum(-1, keepdim=True).float().log()
    return torch.cat([gold, own, torch.zeros_like(gold)], -1), torch.cat([zero, pad, multiplicity], -1)


def step_pe(pe: torch.Tensor, step: int) -> torch.Tensor:
    """The PE row added to every edge output at path step ``step`` under the training rules (the decode rule's)."""
    return pe[training_pe_index(step)]


def own_row_ranges(edges: EdgeTable, sources: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every own row leaving each of ``sources`` (1-D), concatenated in their order, and each source's own-row count.

    A source's own rows are contiguous in the edge table (``indptr[s] + 1 .. indptr[s + 1]``),
    so the ragged list is an arange per source.
    """
    first = edges.indptr[sources] + 1
    count = edges.indptr[sources + 1] - edges.indptr[sources]
    owner = torch.repeat_interleave(torch.arange(sources.numel(), device=sources.device), count)
    starts = torch.cumsum(count, 0) - count
    rows = first[owner] + torch.arange(owner.numel(), device=sources.device) - starts[owner]
    return rows, count


class OwnEnergies(torch.autograd.Function):
    """Energies ||GELU(x_p W_r + b_r + PE_p)|| of every (position, own row) pair, for positions grouped by source.

    Inputs: signals ``x`` and ``pe`` (n, d) of the positions in source order (``uses`` per
    source), own rows ``w`` (R, d, d) and ``b`` (R, d) of those sources (``count`` each).
    Output (pairs,), position by position, each position's rows in order. One
    (n_s x d) @ (d x |R(s)| d) product per source reads each row once; the hand-written
    backward takes three products per source instead of an autograd graph per source,
    and GELU and the norm in one pass each way.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, pe: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                uses: list[int], count: list[int]) -> torch.Tensor:
        """The energies (pairs,); the PE table is a constant."""
        d = x.shape[1]
        w_cols = w.transpose(0, 1).reshape(d, -1)  # (d, R*d): row r's matrix in columns r*d .. r*d + d - 1
        pairs = [n * r for n, r in zip(uses, count)]
        z = x.new_empty(sum(pairs), d)
        # Per source: z = b + PE, then z += x @ W (split gives every source's views in one call each).
        for x_s, pe_s, w_s, b_s, z_s, n, r in zip(x.split(uses), pe[:, None].split(uses), w_cols.split([r * d for r in count], 1),
                                                   b.split(count), z.split(pairs), uses, count):
            if r:
                torch.add(b_s, pe_s, out=z_s.view(n, r, d))
                z_s.view(n, r * d).addmm_(x_s, w_s)
        out = gelu(z)
        energy = torch.linalg.vector_norm(out, dim=-1)
        ctx.save_for_backward(x, w_cols, z, out, energy)
        ctx.sizes = uses, count, pairs
        return energy

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Gradients of x, w and b (positions of sources without own rows get zero)."""
        x, w_cols, z, out, energy = ctx.saved_tensors
        uses, count, pairs = ctx.sizes
        d = x.shape[1]
        scale = (grad / energy).masked_fill_(energy == 0, 0.0)  # d||h||/dh = h / ||h|| (0 at h = 0, as torch's norm)
        grad_z = torch.ops.aten.gelu_backward(out * scale[:, None], z, approximate="none")
        grad_x = torch.zeros_like(x)
        grad_wt = x.new_empty(w_cols.shape[1], d)  # W[r, k, e]'s gradient at [r*d + e, k]; every row has a source
        grad_b = x.new_empty(w_cols.shape[1] // d, d)
        for x_s, g_s, w_s, gx_s, gw_s, gb_s, n, r in zip(x.split(uses), grad_z.split(pairs), w_cols.split([r * d for r in count], 1),
                                                         grad_x.split(uses), grad_wt.split([r * d for r in count]), grad_b.split(count),
                                                         uses, count):
            if r:
                g = g_s.view(n, r * d)
                torch.mm(g, w_s.T, out=gx_s)
                torch.mm(g.T, x_s, out=gw_s)
                torch.sum(g_s.view(n, r, d), 0, out=gb_s)
        return grad_x, None, grad_wt.view(-1, d, d).transpose(1, 2), grad_b, None, None



class Objective(nn.Module):
    """The losses over everything a training step reads, as one module (what DistributedDataParallel wraps).

    Sparse mode reads the edge rows through sparse ``nn.Embedding`` modules over flat views
    of the model's ``weights``/``biases``, so a step's gradients hold only the rows it
    used; dense mode indexes the full tensors, as the release does. Node biases and
    position logits are the model's own. Updates show in the model: storage is shared.
    """

    def __init__(self, model: BriLLM, sparse: bool) -> None:
        super().__init__()
        P, d = model.config.num_rows, model.hidden_size
        self.hidden_size = d
        self.vocab_size = model.vocab_size
        self.edges = model.edges
        self.weights = nn.Embedding(P, d * d, sparse=sparse, _weight=model.weights.data.view(P, d * d))
        self.biases = nn.Embedding(P, d, sparse=sparse, _weight=model.biases.data.view(P, d))
        self.node_bias, self.positions = model.node_bias, model.positions
        self.pe = model.pe  # a constant table, not a parameter

    def forward(self, ids: torch.Tensor, rows: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
        """Training loss of sequences ``ids`` (B, T): the sampled objective over ``rows``, or the exact one if None."""
        if rows is None:
            return self.exact_loss(ids, reduction)
        return self.sampled_loss(ids, rows)

    def _next_signal(self, kept: list[torch.Tensor]) -> torch.Tensor:
        """The signal of the next step: the position-weighted sum of the outputs kept so far."""
        return memory_signal(self.positions, torch.stack(kept, 1))[0]

    def sampled_loss(self, ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Mean (1 + k)-way energy cross-entropy of sequences ``ids`` (B, T); ``rows`` (B, T-1, 1+k): candidate edges' rows, gold first."""
        d = self.hidden_size
        rows, offsets = compact_candidates(rows)
        B, steps, K = rows.shape
        uniq, inv = torch.unique(rows, return_inverse=True)
        w, b = self.weights(uniq).view(-1, d, d), self.biases(uniq)
        chunk = max(1, GATHER_BYTES // (B * K * d * d * w.element_size()))
        signal = start_signal(self.node_bias[ids[:, 0], 0], self.pe, 1.0 / d)
        kept: list[torch.Tensor] = []
        logits = []
        for start in range(0, steps, chunk):
            # One gather for several positions: its backward is a single scatter, not one per position.
            part = inv[:, start : start + chunk]
            for i, (w_i, b_i) in enumerate(zip(w[part].unbind(1), b[part].unbind(1)), start):
                out = edge_outputs(signal[:, None], w_i, b_i, step_pe(self.pe, i))
                logits.append(out.norm(dim=-1))
                kept.append(out[:, 0])
                signal = self._next_signal(kept)
        stacked = torch.stack(logits, dim=1) + offsets
        target = torch.zeros(stacked.shape[0] * stacked.shape[1], dtype=torch.int64, device=stacked.device)
        return F.cross_entropy(stacked.reshape(-1, stacked.shape[-1]), target)

    def exact_loss(self, ids: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Full-vocabulary cross-entropy of sequences ``ids`` (B, T): every node competes at every position.

        Two passes. The memory signal depends only on the gold path, so a sequential loop
        over the steps reads only the B gold rows per step and yields every position's
        signal and gold energy. Then all candidate energies at once, grouped by source:
        the positions with source s all read s's own rows, so each row is read once per
        batch, in one (n_s x d) @ (d x |R(s)| d) product per source (``OwnEnergies``).
        Targets on the shared row 0 all have one output per position, so the log-sum-exp
        over all V targets is taken over the own rows plus one shared term with offset
        log(number of shared-row targets). ``reduction`` "mean" or "sum" (summed NLL, for validation).
        """
        d, V = self.hidden_size, self.vocab_size
        B, T = ids.shape
        n = B * (T - 1)
        sources, targets = ids[:, :-1].T.reshape(-1), ids[:, 1:].T.reshape(-1)  # step-major: step i is i*B .. (i+1)*B - 1
        uniq, where, uses = torch.unique(sources, return_inverse=True, return_counts=True)
        own, count = own_row_ranges(self.edges, uniq)
        rows = torch.cat([own.new_zeros(1), own])  # sorted, unique (sparse gradients come coalesced) and holding every gold row
        w, b = self.weights(rows), self.biases(rows)
        gold = torch.searchsorted(rows, self.edges.rows(sources, targets))
        pe = torch.stack([step_pe(self.pe, i) for i in range(T - 1)]).repeat_interleave(B, 0)  # (n, d), step-major
        signal, gold_out = self._gold_path(ids[:, 0], w[gold].view(T - 1, B, d, d), b[gold].view(T - 1, B, d), pe.view(T - 1, B, d))
        (w_shared, w_own), (b_shared, b_own) = w.split([1, own.numel()]), b.split([1, own.numel()])
        shared = edge_outputs(signal, w_shared.view(d, d), b_shared, pe).norm(dim=-1)  # one (n x d) @ (d x d) product
        order = torch.argsort(where, stable=True)  # positions grouped by source, in ``uniq`` order
        energy = OwnEnergies.apply(signal[order], pe[order], w_own.view(-1, d, d), b_own, uses.tolist(), count.tolist())
        per_position = count[where[order]]  # own rows of each sorted position
        owner = torch.repeat_interleave(torch.arange(n, device=ids.device), per_position)  # sorted position of each energy
        shared = shared[order] + torch.log((V - per_position).to(shared.dtype))  # one term for all shared-row targets (-inf: none)
        top = shared.detach().scatter_reduce(0, owner, energy.detach(), "amax")
        mass = torch.exp(shared - top).index_add(0, owner, torch.exp(energy - top[owner]))
        total = top + torch.log(mass) - gold_out.norm(dim=-1)[order]
        return total.mean() if reduction == "mean" else total.sum()

    def _gold_path(self, first: torch.Tensor, w: torch.Tensor, b: torch.Tensor, pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Signals and gold outputs (steps * B, d), step-major, along the gold path of gold rows ``w`` (steps, B, d, d), ``b`` and ``pe`` (steps, B, d)."""
        signal = start_signal(self.node_bias[first, 0], self.pe, 1.0 / self.hidden_size)
        signals, kept = [], []
        for i, (w_i, b_i, pe_i) in enumerate(zip(w.unbind(0), b.unbind(0), pe.unbind(0))):
            if i:
                signal = self._next_signal(kept)
            signals.append(signal)
            kept.append(edge_outputs(signal, w_i, b_i, pe_i))
        return torch.cat(signals), torch.cat(kept)
