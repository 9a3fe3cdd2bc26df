"""Training: the exact full-vocabulary energy cross-entropy (or the release's sampled one), sparse rows, checkpoints, resume, DDP.

Per sequence u_0..u_{T-1} and position i, each candidate target's logit is its energy
||o_i(t)|| computed with the gold path's memory, and the loss is the mean cross-entropy
over positions. The exact objective (the default) lets all V targets compete
(``StepParameters.exact_loss``): the gold path alone gives every position's memory
signal, then every own row's energy comes from one product per source over all its
positions (``OwnEnergies``), so each row is read once per batch, and the targets on the
shared row enter as one term weighted by their number. The release's sampled objective
makes the gold edge class 0 among 1 + k candidate edges.

Sparse mode gathers only the parameter rows a batch uses, through sparse
``nn.Embedding`` modules over flat views of ``weights``/``biases`` (``StepParameters``),
and updates them with RowAdamW (AdamW's exact formula on the touched rows; see ``optim``);
``node_bias``/``positions`` use dense AdamW. Dense mode indexes the full tensors
instead, so their gradients are dense and AdamW updates every row, as in the release.
Negatives that read the shared row 0 are merged into one logit weighted by their
number (``compact_candidates``), which changes nothing but the work.

Run directory layout: ``DIR/checkpoints/step-NNNNNNNN/`` are complete checkpoints
(engine files + ``bigram_counts.safetensors`` + ``training_state.safetensors``), each
written under a temporary name and renamed into place, so an interruption never damages
an earlier one. ``--resume`` restarts from the newest one; the data order and negatives
are functions of (seed, step), so the continuation is bit-for-bit the uninterrupted run.

Under ``torchrun`` (WORLD_SIZE > 1) each process trains on its own slice of every
global batch, with ``StepParameters`` wrapped in DistributedDataParallel (NCCL on GPUs,
Gloo on CPU). Its communication hook ``average_gradients`` all-reduces dense buckets and
averages sparse row gradients by all_gather of (row indices, values) and a coalescing
sum: NCCL has no sparse all-reduce, so GPUs and CPUs run this same, tested code, and
every rank applies the identical averaged gradient.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .checkpoint import Checkpoint, load_checkpoint
from .contextinit import context_initialise, fit_context
from .countinit import count_initialise
from .config import ModelConfig
from .data import (
    COUNTS_FILE,
    BigramCounts,
    CorpusFile,
    SequenceBatches,
    build_tokenizer,
    corpus_lines,
    drop_gold,
    hard_negative_table,
    random_negatives,
    read_corpus,
    reuse_tokenizer,
    step_generator,
    tokenize_lines,
)
from .decode import training_pe_index
from .edges import EdgeTable
from .errors import BriLLMError
from .evaluate import windows
from .model import BriLLM, default_device, gelu, memory_signal
from .optim import RowAdamW
from .tokenizer import CharTokenizer, NodeTokenizer, load_tokenizer

TRAIN_FORMAT = "brillm-train"
TRAIN_VERSION = 1
CHECKPOINTS = "checkpoints"
STATE_FILE = "training_state.safetensors"
STEP_DIR = re.compile(r"^step-(\d{8})$")
GATHER_BYTES = 512 * 2**20  # memory for the rows gathered at once (positions per gather follow)
BETAS = (0.9, 0.999)
EPS = 1e-8
# Settings that may change when resuming; every other one must match the original run.
RESUMABLE = ("max_steps", "save_every", "keep_checkpoints", "patience", "threads")


class TrainingError(BriLLMError):
    """Training cannot start, resume or save; the message says what to change."""


OBJECTIVES = ("exact", "sampled")
INITS = ("random", "counts", "context")
SCHEDULES = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class TrainSettings:
    """Everything that defines a run (defaults: the release's, except where noted)."""

    tokenizer: str = "bpe"
    vocab_size: int | None = 2000  # the release: 4,000
    hidden_size: int = 32
    max_positions: int = 512
    seq_len: int = 32
    batch_size: int = 32
    objective: str = "exact"  # the release: "sampled" ((1 + k)-way with k negatives)
    negatives: int = 400
    hard_negatives: bool = True
    min_count: int = 1
    init: str = "random"  # "counts": the Kneser-Ney bigram set into the biases (see countinit)
    init_code: float = 0.0  # with init "counts": scale of the random code in the other bias channels
    context_l2: float = 1.0  # with init "context": L2 penalty of the trigram fit (see contextinit)
    context_iterations: int = 100  # with init "context": full-batch Adam iterations of the trigram fit
    lr: float = 5e-2
    lr_weights: float | None = None  # None: --lr (edge matrices W)
    lr_biases: float | None = None  # None: --lr (edge and node biases)
    lr_positions: float | None = None  # None: --lr (position logits)
    weight_decay: float = 0.0  # decoupled (AdamW) decay of the edge matrices W only
    adam_eps: float = EPS  # AdamW's epsilon; larger values keep tiny gradients from full-size steps
    schedule: str = "constant"
    warmup: int = 0  # steps of linear warm-up before the schedule
    max_steps: int = 1000
    save_every: int = 100
    keep_checkpoints: int = 2  # newest checkpoints kept; 0 keeps all
    patience: int = 0  # stop after this many validations without a new best (0: never)
    seed: int = 0
    sparse: bool = True
    threads: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.seq_len > self.max_positions:
            problems.append(f"--seq-len {self.seq_len} exceeds the position table ({self.max_positions})")
        if self.negatives < 1:
            problems.append(f"--negatives must be >= 1, got {self.negatives}")
        for name in ("lr", "lr_weights", "lr_biases", "lr_positions"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                problems.append(f"--{name.replace('_', '-')} must be a positive number, got {value}")
        if not (self.adam_eps > 0 and math.isfinite(self.adam_eps)):
            problems.append(f"--adam-eps must be a positive number, got {self.adam_eps}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            problems.append(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if self.max_steps < 0 or self.save_every < 1:
            problems.append("--max-steps must be >= 0 (0: save the start only) and --save-every >= 1")
        if not (self.context_l2 >= 0 and math.isfinite(self.context_l2)) or self.context_iterations < 0:
            problems.append("--context-l2 and --context-iterations must be >= 0")
        if self.init == "context" and self.hidden_size < 2:
            problems.append("--init context needs --hidden-size >= 2 (one energy channel plus the code)")
        if self.keep_checkpoints < 0 or self.patience < 0 or self.warmup < 0:
            problems.append("--keep, --patience and --warmup must be >= 0")
        for name, allowed in (("objective", OBJECTIVES), ("init", INITS), ("schedule", SCHEDULES)):
            if getattr(self, name) not in allowed:
                problems.append(f"--{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not 0 <= self.seed < 2**63:
            problems.append(f"--seed must be in 0..2**63-1, got {self.seed}")
        if self.threads is not None and self.threads < 1:
            problems.append(f"--threads must be >= 1, got {self.threads}")
        if problems:
            raise TrainingError("; ".join(problems))

    def fixed(self) -> dict[str, Any]:
        """The settings a resumed run must share with the original."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in RESUMABLE}

    def group_lr(self, group: str) -> float:
        """Base learning rate of a parameter group ("weights", "biases" or "positions")."""
        value = getattr(self, f"lr_{group}")
        return self.lr if value is None else value

    def lr_factor(self, step: int) -> float:
        """Multiplier of every base learning rate at ``step`` (0-based): linear warm-up, then the schedule."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.schedule == "constant":
            return 1.0
        progress = (step - self.warmup) / max(1, self.max_steps - self.warmup)
        if self.schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a torchrun job (world 1 when run alone)."""

    world: int = 1
    rank: int = 0

    @property
    def active(self) -> bool:
        """True under torchrun with more than one process."""
        return self.world > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the torchrun process group (NCCL on CUDA, Gloo on CPU) when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_world_size(), dist.get_rank())


def training_device() -> torch.device:
    """CUDA (this process's LOCAL_RANK GPU) when present, CPU otherwise."""
    device = default_device()
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def init_model(config: ModelConfig, edges: EdgeTable, seed: int) -> BriLLM:
    """A fresh model with the release's initialisation drawn from ``seed``."""
    model = BriLLM(config, edges)
    model.reset_parameters(torch.Generator().manual_seed(seed))
    return model


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


class StepParameters(nn.Module):
    """Everything a training step reads, as one module (what DistributedDataParallel wraps):
    the edge rows as embeddings over flat views of the model's tensors (sparse ones give
    sparse row gradients; dense ones index the full tensors as the release does), node
    biases and position logits. Updates show in the model: storage is shared."""

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

    def _next_signal(self, kept: list[torch.Tensor], step: int) -> torch.Tensor:
        """x_{step+1}: the position-weighted sum of the outputs kept so far."""
        return memory_signal(self.positions, torch.stack(kept, 1))[0]

    def sampled_loss(self, ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Mean (1 + k)-way energy cross-entropy of sequences ``ids`` (B, T); ``rows`` (B, T-1, 1+k): candidate edges' rows, gold first."""
        d = self.hidden_size
        rows, offsets = compact_candidates(rows)
        B, steps, K = rows.shape
        uniq, inv = torch.unique(rows, return_inverse=True)
        w, b = self.weights(uniq).view(-1, d, d), self.biases(uniq)
        chunk = max(1, GATHER_BYTES // (B * K * d * d * w.element_size()))
        signal = gelu(1.0 / d + self.node_bias[ids[:, 0], 0] + self.pe[0])
        kept: list[torch.Tensor] = []
        logits = []
        for start in range(0, steps, chunk):
            # One gather for several positions: its backward is a single scatter, not one per position.
            part = inv[:, start : start + chunk]
            for i, (w_i, b_i) in enumerate(zip(w[part].unbind(1), b[part].unbind(1)), start):
                out = gelu(torch.einsum("bd,bkde->bke", signal, w_i) + b_i + step_pe(self.pe, i))
                logits.append(out.norm(dim=-1))
                kept.append(out[:, 0])
                signal = self._next_signal(kept, i)
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
        shared = gelu(signal @ w_shared.view(d, d) + b_shared + pe).norm(dim=-1)
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
        signal = gelu(1.0 / self.hidden_size + self.node_bias[first, 0] + self.pe[0])
        signals, kept = [], []
        for i, (w_i, b_i, pe_i) in enumerate(zip(w.unbind(0), b.unbind(0), pe.unbind(0))):
            if i:
                signal = self._next_signal(kept, i - 1)
            signals.append(signal)
            kept.append(gelu(torch.einsum("bd,bde->be", signal, w_i) + b_i + pe_i))
        return torch.cat(signals), torch.cat(kept)


def allreduce_sparse(grad: torch.Tensor, world: int) -> torch.Tensor:
    """Average a sparse row gradient over ranks: all_gather (indices, values), coalesce, divide."""
    g = grad.coalesce()
    idx, val = g.indices()[0], g.values()
    count = torch.tensor([idx.numel()], device=idx.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    most = int(max(int(c) for c in counts))
    pad_idx = torch.zeros(most, dtype=idx.dtype, device=idx.device)
    pad_val = torch.zeros(most, *val.shape[1:], dtype=val.dtype, device=val.device)
    pad_idx[: idx.numel()], pad_val[: idx.numel()] = idx, val
    all_idx = [torch.empty_like(pad_idx) for _ in range(world)]
    all_val = [torch.empty_like(pad_val) for _ in range(world)]
    dist.all_gather(all_idx, pad_idx)
    dist.all_gather(all_val, pad_val)
    n = [int(c) for c in counts]
    idx = torch.cat([t[:k] for t, k in zip(all_idx, n)])
    val = torch.cat([t[:k] for t, k in zip(all_val, n)])
    return (torch.sparse_coo_tensor(idx[None], val, g.shape).coalesce() / world).coalesce()


def average_gradients(world, bucket):  # unannotated: DDP compares annotations as objects, ours are strings
    """DistributedDataParallel communication hook (world size, dist.GradBucket -> Future of the tensor):
    the bucket's gradient averaged over the ranks (all_reduce when dense; all_gather of rows
    when sparse, which NCCL cannot all-reduce)."""
    grad = bucket.buffer()
    if grad.is_sparse:
        done: torch.futures.Future[torch.Tensor] = torch.futures.Future()
        done.set_result(allreduce_sparse(grad, world))
        return done
    return dist.all_reduce(grad.div_(world), async_op=True).get_future().then(lambda f: f.value()[0])


def rank_checksums(model: BriLLM) -> list[list[float]]:
    """Every rank's parameter sums, gathered; raises if the ranks no longer hold identical parameters."""
    sums = torch.stack([p.detach().double().sum() for p in (model.weights, model.biases, model.node_bias, model.positions)])
    sums = torch.cat([sums, model.weights.detach().double().square().sum().unsqueeze(0)])
    gathered = [torch.empty_like(sums) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, sums)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise TrainingError("the processes no longer hold identical parameters (distributed gradients out of step); please report this")
    return [g.tolist() for g in gathered]


class Trainer:
    """Parameters, optimisers and one training step of a model (sparse or dense gradients)."""

    def __init__(self, model: BriLLM, settings: TrainSettings, counts: BigramCounts, info: DistInfo = DistInfo()) -> None:
        self.model, self.settings, self.info = model, settings, info
        self.params = StepParameters(model, settings.sparse)
        self.loss_fn: nn.Module = self.params
        if info.active:  # broadcast_buffers off: the module has no buffers, only the constant PE table
            device_ids = [model.device.index] if model.device.type == "cuda" else None
            self.loss_fn = nn.parallel.DistributedDataParallel(self.params, device_ids=device_ids, broadcast_buffers=False)
            self.loss_fn.register_comm_hook(info.world, average_gradients)
        self.k = min(settings.negatives, model.vocab_size - 1)
        sampled = settings.objective == "sampled"
        self.hard = hard_negative_table(counts, self.k).to(model.device) if sampled and settings.hard_negatives else None
        if self.hard is not None:  # rows of the hard candidates, looked up once
            self.hard_rows = model.edges.rows(torch.arange(model.vocab_size, device=model.device)[:, None], self.hard)
        w, b = self.params.weights.weight, self.params.biases.weight
        groups = [  # (parameters, lr group, weight decay): W, edge and node biases, position logits
            ([w], "weights", settings.weight_decay),
            ([b], "biases", 0.0),
            ([model.node_bias], "biases", 0.0),
            ([model.positions], "positions", 0.0),
        ]
        param_groups = [dict(params=ps, lr=settings.group_lr(g), base_lr=settings.group_lr(g), weight_decay=wd) for ps, g, wd in groups]
        if settings.sparse:
            self.optimizers = {
                "sparse": RowAdamW(param_groups[:2], lr=settings.lr, betas=BETAS, eps=settings.adam_eps),
                "dense": torch.optim.AdamW(param_groups[2:], lr=settings.lr, betas=BETAS, eps=settings.adam_eps),
            }
        else:
            self.optimizers = {"dense": torch.optim.AdamW(param_groups, lr=settings.lr, betas=BETAS, eps=settings.adam_eps)}
        self.names = {id(p): name for p, name in zip([w, b, model.node_bias, model.positions], ("weights", "biases", "node_bias", "positions"))}

    def candidate_rows(self, ids: torch.Tensor, step: int) -> torch.Tensor:
        """(B, T-1, 1+k) parameter rows of each position's candidate edges: gold first, then k negatives."""
        sources, gold = ids[:, :-1], ids[:, 1:]
        gold_rows = self.model.edges.rows(sources, gold).unsqueeze(-1)
        if self.hard is not None:
            pick = drop_gold(self.hard[sources], gold)
            neg_rows = self.hard_rows[sources].gather(-1, pick)
        else:
            gen = step_generator(self.settings.seed, step, self.info.rank)
            negs = random_negatives(gold.cpu(), self.model.vocab_size, self.k, gen).to(ids.device)
            neg_rows = self.model.edges.rows(sources.unsqueeze(-1), negs)
        return torch.cat([gold_rows, neg_rows], dim=-1)

    def loss(self, ids: torch.Tensor, step: int) -> torch.Tensor:
        """Training loss of one batch (differentiable; under torchrun its backward averages the gradients)."""
        if self.settings.objective == "exact":
            return self.loss_fn(ids)
        return self.loss_fn(ids, self.candidate_rows(ids, step))

    def set_learning_rates(self, step: int) -> None:
        """Every group's learning rate at ``step``: its base rate times the schedule's factor."""
        factor = self.settings.lr_factor(step)
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * factor

    @torch.no_grad()
    def validation_nll(self, chunks: Sequence[torch.Tensor]) -> tuple[float, int]:
        """Summed full-vocabulary NLL and number of predictions over held-out windows (the exact objective)."""
        total, predicted = 0.0, 0
        by_length: dict[int, list[torch.Tensor]] = {}
        for chunk in chunks:
            by_length.setdefault(chunk.numel(), []).append(chunk)
        for length, group in by_length.items():
            for start in range(0, len(group), 64):
                ids = torch.stack(group[start : start + 64]).to(self.model.device)
                total += float(self.params.exact_loss(ids, reduction="sum"))
                predicted += ids.shape[0] * (length - 1)
        return total, predicted

    def step(self, ids: torch.Tensor, step: int) -> float:
        """One optimisation step on this rank's batch; returns the loss averaged over ranks."""
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        self.set_learning_rates(step)
        loss = self.loss(ids.to(self.model.device), step)
        loss.backward()
        if self.settings.sparse and not self.info.active:  # rows were gathered as sorted unique indices: skip a needless coalesce
            for p in (self.params.weights.weight, self.params.biases.weight):
                g = p.grad
                p.grad = torch.sparse_coo_tensor(g._indices(), g._values(), g.shape, is_coalesced=True, check_invariants=False)
        if self.settings.init == "context" or (self.settings.init == "counts" and self.settings.init_code > 0):
            self._drop_energy_input_gradient()
        value = loss.detach().clone()
        if self.info.active:
            dist.all_reduce(value)
            value /= self.info.world
        for opt in self.optimizers.values():
            opt.step()
        return float(value)

    def _drop_energy_input_gradient(self) -> None:
        """Keep W's first input row at its count initialisation (0).

        After ``--init counts`` (with a code) or ``--init context`` channel 0 of every output is its energy, so the signal's
        channel 0 is a weighted sum of earlier energies, nearly the same at every step: W's
        first row would act as a second bias, one that learns 20-40 times faster than the
        biases and overfits the training bigrams. W learns only from the code channels.
        """
        d = self.model.hidden_size
        grad = self.params.weights.weight.grad
        if grad is None:
            return
        if grad.is_sparse:
            grad._values()[:, :d] = 0
        else:
            grad.view(-1, d, d)[:, 0, :] = 0

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Optimiser state as tensors (for safetensors) plus JSON scalars; never pickled."""
        tensors, scalars = {}, {}
        for oname, opt in self.optimizers.items():
            for group in opt.param_groups:
                for p in group["params"]:
                    for key, value in opt.state.get(p, {}).items():
                        name = f"{oname}/{self.names[id(p)]}/{key}"
                        if torch.is_tensor(value):
                            tensors[name] = value.detach().cpu().contiguous()
                        else:
                            scalars[name] = value
        return tensors, scalars

    def load_state(self, tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
        """Restore what ``state`` returned; a mismatch is a TrainingError."""
        expected = set()
        for oname, opt in self.optimizers.items():
            for group in opt.param_groups:
                for p in group["params"]:
                    prefix = f"{oname}/{self.names[id(p)]}/"
                    # Moments go to the parameter's device; AdamW keeps its 0-d step count on the CPU.
                    entry = {k[len(prefix) :]: v.to(p.device) if v.dim() else v for k, v in tensors.items() if k.startswith(prefix)}
                    entry.update({k[len(prefix) :]: v for k, v in scalars.items() if k.startswith(prefix)})
                    expected.update(prefix + k for k in entry)
                    for key, value in entry.items():
                        if torch.is_tensor(value) and value.dim() and value.shape != p.shape:
                            raise TrainingError(f"optimiser state {prefix}{key} has shape {tuple(value.shape)}, expected {tuple(p.shape)}")
                    if entry:
                        opt.state[p] = entry
        unknown = (set(tensors) | set(scalars)) - expected
        if unknown:
            raise TrainingError(f"optimiser state holds entries for another kind of run: {sorted(unknown)[:3]}")


def checkpoint_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run directory as (step, path), oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), root / name) for name in os.listdir(root) if (m := STEP_DIR.match(name))]
    return sorted(found)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory itself, or the newest checkpoint of a training run directory."""
    path = Path(path)
    if not path.is_dir() or (path / "config.json").exists():
        return path  # loading it says what is wrong with it, if anything
    found = checkpoint_dirs(path)
    if found:
        return found[-1][1]
    raise TrainingError(f"{path} is neither a checkpoint directory (no config.json) nor a training run (no {CHECKPOINTS}/step-*)")


def _fsync_tree(path: Path) -> None:
    """Flush every file of a directory and the directory entry itself."""
    for name in os.listdir(path):
        if not (path / name).is_file():
            continue
        with open(path / name, "rb") as handle:
            os.fsync(handle.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_writable(run_dir: Path) -> None:
    """Fail now, not at the first save after the training work, if checkpoints cannot be written."""
    root = Path(run_dir) / CHECKPOINTS
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise TrainingError(f"cannot write checkpoints into {root}: {exc.strerror or exc}") from exc


def write_checkpoint(run_dir: Path, step: int, checkpoint: Checkpoint, counts: BigramCounts, state: dict[str, torch.Tensor]) -> Path:
    """Write a complete checkpoint under a temporary name, then rename it to ``step-NNNNNNNN``.

    Earlier checkpoints are never opened for writing, so a failure (a full disk, say)
    leaves them intact; the half-written temporary directory is removed.
    """
    root = Path(run_dir) / CHECKPOINTS
    final = root / f"step-{step:08d}"
    staging = root / f".staging-step-{step:08d}"
    previous = checkpoint_dirs(run_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        checkpoint.save(staging, overwrite=True)
        counts.save(staging / COUNTS_FILE)
        save_file(state, str(staging / STATE_FILE))
        _fsync_tree(staging)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        _fsync_tree(root)
    except (OSError, SafetensorError, RuntimeError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        last = previous[-1][1] if previous else "none yet"
        raise TrainingError(f"could not write checkpoint {final}: {exc}; the last good checkpoint ({last}) is intact") from exc
    checkpoint.path = final
    return final


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (0 keeps all) and stale temporaries."""
    root = Path(run_dir) / CHECKPOINTS
    for name in os.listdir(root) if root.is_dir() else []:
        if name.startswith((".staging-", "..staging-")):  # the second: a save's own temporary, left by a kill
            shutil.rmtree(root / name, ignore_errors=True)
    if keep:
        for _, path in checkpoint_dirs(run_dir)[:-keep]:
            shutil.rmtree(path, ignore_errors=True)


@dataclass
class ResumePoint:
    """What a resumed run restores from its newest checkpoint."""

    checkpoint: Checkpoint
    training: dict[str, Any]
    state: dict[str, torch.Tensor]


def load_resume_point(run_dir: Path, fingerprint: dict[str, Any]) -> ResumePoint:
    """Newest checkpoint of ``run_dir``, checked to belong to a run with this fingerprint."""
    found = checkpoint_dirs(run_dir)
    if not found:
        raise TrainingError(f"nothing to resume: {run_dir} holds no {CHECKPOINTS}/step-* from `brillm train`; drop --resume to start a new run")
    path = found[-1][1]
    hint = "delete that directory to resume from the previous checkpoint, or start a new run without --resume"
    try:
        ck = load_checkpoint(path, device="cpu")
        state = load_file(str(path / STATE_FILE))
    except (BriLLMError, SafetensorError, OSError) as exc:
        raise TrainingError(f"checkpoint {path} is corrupt or incomplete ({exc}); {hint}") from exc
    training = ck.metadata.get("training")
    if not isinstance(training, dict) or training.get("format") != TRAIN_FORMAT:
        raise TrainingError(f"{path} was not written by `brillm train` (no training metadata); {hint}")
    if training.get("version") != TRAIN_VERSION:
        raise TrainingError(f"{path} has training format version {training.get('version')}, this build reads {TRAIN_VERSION}")
    theirs = training.get("fingerprint", {})
    diffs = [f"{k}: checkpoint {theirs.get(k)!r}, now {v!r}" for k, v in fingerprint.items() if theirs.get(k) != v]
    if diffs:
        raise TrainingError(f"{run_dir} belongs to another run (different data or settings): " + "; ".join(diffs) + ". Use the original corpus and settings, or a new -o directory")
    return ResumePoint(ck, training, state)


def make_fingerprint(files: Sequence[CorpusFile], settings: TrainSettings, info: DistInfo, tokenizer_file: str | None) -> dict[str, Any]:
    """What must be identical for a resumed run to be the same run."""
    return {
        "corpus_sha256": [f.sha256 for f in files],
        "settings": settings.fixed(),
        "world_size": info.world,
        "tokenizer_file": tokenizer_file,
    }


def shared_tokenizer(settings: TrainSettings, lines: list[str], run_dir: Path, info: DistInfo, tokenizer_file: str | None) -> NodeTokenizer:
    """Train (or load) the tokeniser on rank 0; other ranks read rank 0's copy so all agree."""
    staging = Path(run_dir) / ".tokenizer-rank0"
    if info.rank == 0:
        if tokenizer_file:
            tokenizer = reuse_tokenizer(tokenizer_file, settings.vocab_size if settings.tokenizer != "char" else None)
        else:
            tokenizer = build_tokenizer(settings.tokenizer, lines, settings.vocab_size)
        if info.active:
            staging.mkdir(parents=True, exist_ok=True)
            tokenizer.save(staging)
    if info.active:
        dist.barrier()
        if info.rank != 0:
            tokenizer = load_tokenizer(staging)
        dist.barrier()
        if info.rank == 0:
            shutil.rmtree(staging, ignore_errors=True)
    return tokenizer


def _new_model(settings: TrainSettings, tokenizer: NodeTokenizer, counts: BigramCounts, name: str) -> BriLLM:
    """A freshly initialised model whose own rows are the bigrams seen at least --min-count times."""
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
    return init_model(config, edges, settings.seed)


@dataclass
class Run:
    """What a training loop needs besides the trainer: data, provenance and history."""

    settings: TrainSettings
    info: DistInfo
    files: list[CorpusFile]
    fingerprint: dict[str, Any]
    stream: torch.Tensor
    unknown: int
    batches: SequenceBatches
    training: dict[str, Any]
    validation: list[torch.Tensor] = dataclasses.field(default_factory=list)

    def metadata(self, trainer: Trainer, step: int, history: list[float], seconds: float, rate: float) -> dict[str, Any]:
        """metadata.json of the checkpoint taken after ``step`` steps (optimiser scalars included)."""
        per_step = self.settings.batch_size * (self.settings.seq_len - 1) * self.info.world
        return {
            "source": "brillm train",
            "training": {
                "format": TRAIN_FORMAT,
                "version": TRAIN_VERSION,
                "run_id": self.training["run_id"],
                "step": step,
                "settings": dataclasses.asdict(self.settings),
                "fingerprint": self.fingerprint,
                "corpus": [f.describe() for f in self.files],
                "corpus_tokens": int(self.stream.numel()),
                "unknown_pieces": self.unknown,
                "sequences": self.batches.num_sequences,
                "negatives_per_position": trainer.k,
                "data_position": self.batches.position(step),
                "rng": {"seed": self.settings.seed, "scheme": "data order from (seed, epoch); negatives from (seed, step, rank)"},
                "loss_history": history,
                "validation_history": self.training.get("validation_history", []),
                "train_seconds": seconds,
                "init_seconds": self.training.get("init_seconds", 0.0),  # the start's own fit (--init context)
                "tokens_per_second": rate,
                "tokens_seen": step * per_step,
                "world_size": self.info.world,
                "distributed": type(trainer.loss_fn).__name__ if self.info.active else None,
                "device": str(trainer.model.device),
                "own_rows": trainer.model.config.own_rows,
                "optimizer_state_file": STATE_FILE,
                "optimizer_scalars": trainer.state()[1],
            },
        }


def train(
    corpus: Sequence[str | Path],
    run_dir: str | Path,
    settings: TrainSettings,
    *,
    resume: bool = False,
    tokenizer_file: str | None = None,
    validation: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Train (or resume) a run in ``run_dir``; returns the newest checkpoint's path.

    With a ``validation`` text, every checkpoint records its full-vocabulary perplexity
    on it (windows of --seq-len, as ``brillm eval`` scores), and --patience stops the
    run after that many checkpoints without a new best.
    """
    run_dir = Path(run_dir)
    device = training_device()
    info = init_distributed(device)
    if settings.threads or device.type == "cpu":
        # One thread by default on CPU: measured on a 2-core box with the other core busy,
        # a KJV step (V 1500, d 8, k 400, batch 32) took 0.36 s on one thread, 4.2 s on two.
        torch.set_num_threads(settings.threads or 1)
    files = read_corpus(corpus)
    check_writable(run_dir)
    lines = corpus_lines(files)
    fingerprint = make_fingerprint(files, settings, info, tokenizer_file)
    point = load_resume_point(run_dir, fingerprint) if resume else None
    if point is not None:
        model, tokenizer, training = point.checkpoint.model, point.checkpoint.tokenizer, point.training
    else:
        if checkpoint_dirs(run_dir):
            raise TrainingError(f"{run_dir} already holds checkpoints of a run; pass --resume to continue it or choose a new -o directory")
        tokenizer = shared_tokenizer(settings, lines, run_dir, info, tokenizer_file)
        training = {"run_id": uuid.uuid4().hex, "loss_history": [], "train_seconds": 0.0}
    stream, unknown = tokenize_lines(tokenizer, lines)
    counts = BigramCounts.from_stream(stream, tokenizer.vocab_size)
    batches = SequenceBatches(stream, settings.seq_len, settings.batch_size, settings.seed, info.world, info.rank)
    if point is None:
        model = _new_model(settings, tokenizer, counts, run_dir.name)
        if settings.init == "counts":
            count_initialise(model, counts, settings.min_count, code=settings.init_code, seed=settings.seed)
        elif settings.init == "context":
            fit_started = time.perf_counter()
            factors = fit_context(model.edges, counts, stream, settings.hidden_size - 1, settings.context_l2,
                                  settings.context_iterations, min_count=settings.min_count, seed=settings.seed,
                                  report=_fit_reporter(progress and info.rank == 0))
            context_initialise(model, counts, factors, settings.min_count, positions=settings.seq_len)
            training["init_seconds"] = time.perf_counter() - fit_started
    if info.active:  # every rank records rank 0's run id
        run_id = torch.tensor(list(bytes.fromhex(training["run_id"])), dtype=torch.uint8)
        dist.broadcast(run_id, src=0)
        training["run_id"] = bytes(run_id.tolist()).hex()
    model.to(device)
    model.train()
    trainer = Trainer(model, settings, counts, info)
    if point is not None:
        trainer.load_state(point.state, training.get("optimizer_scalars", {}))
    held = windows(tokenize_lines(tokenizer, corpus_lines(read_corpus([validation])))[0], settings.seq_len) if validation else []
    run = Run(settings, info, files, fingerprint, stream, unknown, batches, training, held)
    return _loop(run, trainer, Checkpoint(model, tokenizer, {}), counts, run_dir, progress)


def _fit_reporter(show: bool) -> Callable[[int, float], None] | None:
    """Progress lines of the --init context fit (trigram NLL per training trigram), or None when quiet."""
    if not show:
        return None
    return lambda iteration, nll: print(f"context fit, iteration {iteration}: trigram NLL {nll:.4f}", flush=True)


def _validate(run: Run, trainer: Trainer, step: int) -> bool:
    """Record the validation perplexity after ``step``; True when --patience says to stop."""
    nll, predicted = trainer.validation_nll(run.validation)
    history = run.training.setdefault("validation_history", [])
    history.append([step, math.exp(nll / predicted)])
    patience = run.settings.patience
    if not patience or len(history) <= patience:
        return False
    best_before = min(ppl for _, ppl in history[:-patience])
    return min(ppl for _, ppl in history[-patience:]) >= best_before


def _loop(run: Run, trainer: Trainer, checkpoint: Checkpoint, counts: BigramCounts, run_dir: Path, progress: bool) -> Path:
    """Steps from the run's position to --max-steps, checkpointing every --save-every steps."""
    from tqdm import tqdm

    settings, info = run.settings, run.info
    start = int(run.training.get("step", 0))
    history: list[float] = list(run.training.get("loss_history", []))
    seconds = float(run.training.get("train_seconds", 0.0))
    per_step = settings.batch_size * (settings.seq_len - 1) * info.world
    last = checkpoint_dirs(run_dir)[-1][1] if start else None
    bar = tqdm(total=settings.max_steps, initial=start, unit="step", disable=not progress or info.rank != 0, dynamic_ncols=True)
    if run.validation and start == 0:  # the starting point (e.g. the count initialisation) is part of the record
        _validate(run, trainer, 0)
        bar.write(f"step 0: validation perplexity {run.training['validation_history'][-1][1]:.2f}")
    started = time.perf_counter()
    if start == settings.max_steps == 0:  # --max-steps 0: the start itself is the result
        checkpoint.metadata = run.metadata(trainer, 0, history, seconds, 0.0)
        if info.rank == 0:
            last = write_checkpoint(run_dir, 0, checkpoint, counts, trainer.state()[0])
    for step in range(start, settings.max_steps):
        loss = trainer.step(run.batches.batch(step), step)
        if not math.isfinite(loss):
            raise TrainingError(f"the loss became {loss} at step {step + 1}; lower --lr and start again")
        history.append(loss)
        elapsed = time.perf_counter() - started
        rate = (step + 1 - start) * per_step / max(elapsed, 1e-9)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{rate:,.0f}", refresh=False)
        done = step + 1
        stop = False
        if done % settings.save_every == 0 or done == settings.max_steps:
            if run.validation:
                stop = _validate(run, trainer, done)
                bar.write(f"step {done}: validation perplexity {run.training['validation_history'][-1][1]:.2f}")
            checkpoint.metadata = run.metadata(trainer, done, history, seconds + elapsed, rate)
            if info.active:
                checkpoint.metadata["training"]["rank_checksums"] = rank_checksums(trainer.model)
            if info.rank == 0:
                last = write_checkpoint(run_dir, done, checkpoint, counts, trainer.state()[0])
                prune_checkpoints(run_dir, settings.keep_checkpoints)
            if info.active:
                dist.barrier()
        if stop:
            bar.write(f"early stop after step {done}: no better validation perplexity in {settings.patience} checkpoints")
            break
    bar.close()
    if info.active:
        dist.barrier()
    return last if last is not None else resolve_checkpoint(run_dir)
