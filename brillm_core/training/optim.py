"""RowAdamW: AdamW's exact update, applied only to the parameter rows present in a sparse gradient.

torch's SparseAdam puts eps outside the bias correction (m / (sqrt(v) + eps) * sqrt(bc2) / bc1),
which at step 1 acts like an eps 32 times larger than AdamW's; on rows with tiny
gradients that changed first-step weights by up to 2e-3 against the release's dense
AdamW. This optimiser uses AdamW's formula (denominator sqrt(v) / sqrt(bc2) + eps, decoupled
weight decay applied to the touched rows only) so a row touched at every step follows dense AdamW exactly; rows a step
does not touch keep their moments unchanged ("lazy" Adam, as SparseAdam). The state
(``step``, ``exp_avg``, ``exp_avg_sq``) has SparseAdam's layout.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch


class RowAdamW(torch.optim.Optimizer):
    """Lazy AdamW for parameters whose gradients are sparse COO row gradients (e.g. sparse embeddings)."""

    def __init__(
        self, params: Iterable, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None) -> None:  # type: ignore[override]
        """Update the rows named by each parameter's sparse gradient."""
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.coalesce()
                state = self.state[p]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                state["step"] += 1
                rows, g = grad.indices()[0], grad.values()
                m = state["exp_avg"].index_select(0, rows).lerp_(g, 1 - beta1)
                v = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(g, g, value=1 - beta2)
                state["exp_avg"].index_copy_(0, rows, m)
                state["exp_avg_sq"].index_copy_(0, rows, v)
                bias1 = 1 - beta1 ** state["step"]
                bias2 = 1 - beta2 ** state["step"]
                denom = v.sqrt_().div_(math.sqrt(bias2)).add_(group["eps"])
                if group["weight_decay"]:  # AdamW's decoupled decay, on the rows this step touches
                    p.index_copy_(0, rows, p.index_select(0, rows).mul_(1 - group["lr"] * group["weight_decay"]))
                p.index_add_(0, rows, m.div_(denom), alpha=-group["lr"] / bias1)
