"""Two checkpoints of one vocabulary, side by side: paths, divergence, and edge changes.

Both models continue the same prompt on their own (their paths and the first step where
they diverge), and model B is also teacher-forced along A's path, so that every step
compares the two distributions over the same history: the rank and probability each
gives A's chosen token, and the Jensen-Shannon divergence (base 2, in [0, 1]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import pandas as pd
import torch

from .checkpoint import Checkpoint
from .errors import BriLLMError
from .model import BriLLM
from .trace import DecodeSettings, Trace


def check_same_vocabulary(a: Checkpoint, b: Checkpoint) -> None:
    """Raise BriLLMError unless both checkpoints have the same node list."""
    ta, tb = a.tokenizer.tokens(), b.tokenizer.tokens()
    if ta != tb:
        where = next((i for i, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb)))
        raise BriLLMError(
            f"the checkpoints have different vocabularies ({len(ta)} vs {len(tb)} nodes, first difference at node {where}); "
            "only checkpoints of one vocabulary can be compared"
        )


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """Jensen-Shannon divergence in bits between two distributions (NaN counts as 0)."""
    p = torch.nan_to_num(p.double(), nan=0.0)
    q = torch.nan_to_num(q.double(), nan=0.0)
    m = 0.5 * (p + q)

    def kl(x: torch.Tensor) -> float:
        mask = x > 0
        return float((x[mask] * (x[mask] / m[mask]).log2()).sum())

    return 0.5 * kl(p) + 0.5 * kl(q)


@dataclass
class PathComparison:
    """Both models' own paths, B forced along A's path, and the per-step table."""

    trace_a: Trace
    trace_b: Trace
    b_on_a: Trace
    first_divergence: int | None  # first step whose chosen targets differ, None if never

    def to_frame(self) -> pd.DataFrame:
        """Per step of A's path: A's token, its rank and probability under A and B, JS(A, B)."""
        rows = []
        for i in range(self.trace_a.num_steps):
            sa, sb = self.trace_a.step(i), self.b_on_a.step(i)
            rows.append({
                "step": i,
                "forced": sa.forced,
                "target_a": sa.target,
                "target_b": int(self.trace_b.path[i + 1]) if i < self.trace_b.num_steps else None,
                "rank_a": sa.chosen_rank,
                "rank_b": sb.chosen_rank,
                "probability_a": sa.chosen_probability,
                "probability_b": sb.chosen_probability,
                "js_divergence": js_divergence(sa.probabilities, sb.probabilities),
            })
        return pd.DataFrame(rows)


def compare_paths(a: Checkpoint, b: Checkpoint, prompt: str | Sequence[int], settings: DecodeSettings) -> PathComparison:
    """Run both checkpoints on one prompt (see module docstring)."""
    check_same_vocabulary(a, b)
    trace_a = a.trace(prompt, settings)
    trace_b = b.trace(prompt, settings)
    b_on_a = b.trace(trace_a.path.tolist(), settings.with_new_tokens(0))
    differ = (trace_a.targets != trace_b.targets).nonzero().flatten()
    first = int(differ[0]) if differ.numel() else None
    return PathComparison(trace_a, trace_b, b_on_a, first)


@torch.no_grad()
def _row_differences(
    a: BriLLM, b: BriLLM, rows_a: torch.Tensor, rows_b: torch.Tensor, chunk: int = 65536
) -> tuple[torch.Tensor, torch.Tensor]:
    """||W_b[rows_b] - W_a[rows_a]||_F and the bias change, in chunks (release scale fits in memory)."""
    dw = torch.empty(rows_a.numel())
    db = torch.empty(rows_a.numel())
    for i in range(0, rows_a.numel(), chunk):
        ra, rb = rows_a[i : i + chunk].to(a.device), rows_b[i : i + chunk].to(b.device)
        dw[i : i + chunk] = (b.weights[rb].cpu() - a.weights[ra].cpu()).flatten(1).norm(dim=1)
        db[i : i + chunk] = (b.biases[rb, 0].cpu() - a.biases[ra, 0].cpu()).norm(dim=1)
    return dw, db


def edge_changes(a: BriLLM, b: BriLLM, top: int | None = 50) -> pd.DataFrame:
    """Edges whose parameters changed most from A to B: ||dW||_F and ||db|| per edge.

    Covers every edge that owns a row in A or B; all other edges read row 0 in both and
    appear once as source = target = -1 ("shared row"). Also flags edges that gained or
    lost a row of their own.
    """
    if a.vocab_size != b.vocab_size or a.hidden_size != b.hidden_size:
        raise BriLLMError("edge changes need two models of the same vocabulary and width")
    keys = torch.unique(torch.cat([a.edge_keys.cpu(), b.edge_keys.cpu()]))
    V = a.vocab_size
    s, t = keys // V, keys % V
    rows_a = a.edges.rows(s.to(a.device), t.to(a.device)).cpu()
    rows_b = b.edges.rows(s.to(b.device), t.to(b.device)).cpu()
    dw, db = _row_differences(a, b, rows_a, rows_b)
    with torch.no_grad():
        shared_dw = float((b.weights[0].cpu() - a.weights[0].cpu()).norm())
        shared_db = float((b.biases[0].cpu() - a.biases[0].cpu()).norm())
    frame = pd.DataFrame({
        "source": s.numpy(), "target": t.numpy(), "row_a": rows_a.numpy(), "row_b": rows_b.numpy(),
        "weight_change": dw.numpy(), "bias_change": db.numpy(),
        "gained_own_row": ((rows_a == 0) & (rows_b > 0)).numpy(), "lost_own_row": ((rows_a > 0) & (rows_b == 0)).numpy(),
    })
    shared = pd.DataFrame([{"source": -1, "target": -1, "row_a": 0, "row_b": 0, "weight_change": shared_dw,
                            "bias_change": shared_db, "gained_own_row": False, "lost_own_row": False}])
    frame = pd.concat([frame, shared], ignore_index=True)
    frame = frame.sort_values(["weight_change", "source", "target"], ascending=[False, True, True], kind="stable")
    frame = frame.reset_index(drop=True)
    return frame if top is None else frame.head(top)


def loss_history(checkpoint: Checkpoint) -> pd.DataFrame:
    """Training loss curve from the metadata written by ``brillm train`` (columns step, loss).

    ``metadata["training"]["loss_history"]`` holds one loss per optimiser step, from step 1;
    a checkpoint that was never trained here gives an empty frame.
    """
    training = checkpoint.metadata.get("training")
    losses = training.get("loss_history") if isinstance(training, dict) else None
    if not isinstance(losses, list):
        return pd.DataFrame(columns=["step", "loss"])
    rows = [(i + 1, float(v)) for i, v in enumerate(losses) if isinstance(v, (int, float)) and math.isfinite(v)]
    return pd.DataFrame(rows, columns=["step", "loss"])
