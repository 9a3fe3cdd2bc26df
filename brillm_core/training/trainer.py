"""The trainer: optimisers, the learning-rate schedule, one optimisation step, and the optimiser state.

Sparse mode updates the rows a step read with RowAdamW (AdamW's exact formula on the
touched rows; see ``optim``) and ``node_bias``/``positions`` with dense AdamW. Dense mode
updates every row with AdamW, as the release. The state is saved as tensors plus JSON
scalars, never pickled.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.distributed as dist
from torch import nn

from ..data import BigramCounts, drop_gold, hard_negative_table, random_negatives, step_generator
from ..errors import TrainingError
from ..model import BriLLM
from .distributed import DistInfo, average_gradients
from .objective import Objective
from .optim import RowAdamW
from .settings import BETAS, TrainSettings

class Trainer:
    """Parameters, optimisers and one training step of a model (sparse or dense gradients)."""

    def __init__(self, model: BriLLM, settings: TrainSettings, counts: BigramCounts, info: DistInfo = DistInfo()) -> None:
        self.model, self.settings, self.info = model, settings, info
        self.params = Objective(model, settings.sparse)
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
        value = loss.detach().clone()
        if self.info.active:
            dist.all_reduce(value)
            value /= self.info.world
        for opt in self.optimizers.values():
            opt.step()
        return float(value)

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
