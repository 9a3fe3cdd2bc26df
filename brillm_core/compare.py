"""Two checkpoints of one vocabulary, side by side: paths, divergence, what changed and why.

Both models continue the same prompt on their own (their paths and the first step where
they diverge), and model B is also teacher-forced along A's path, so that every step
compares the two distributions over the same history: the rank and probability each
gives A's chosen token, and the Jensen-Shannon divergence (base 2, in [0, 1]).

What changed is measured where it matters for the prompt: the edges of A's path whose
probability B moved most, each with its energy under both models and the shares of that
energy change due to the arriving signal, the edge's matrix and its bias; and each
parameter group's change relative to its size (a bias near 5e4 that moved by 1,000 moved
less than a matrix near 0.01 that moved by 0.02). The training record (loss and validation
history) comes from each checkpoint's metadata, with the reason when there is none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from . import decode
from .checkpoint import Checkpoint
from .errors import BriLLMError
from .model import BriLLM, edge_outputs
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


def _shared_or_own(a: BriLLM, b: BriLLM) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every edge that owns a row in A or in B (source, target) and the row each model reads for it."""
    keys = torch.unique(torch.cat([a.edge_keys.cpu(), b.edge_keys.cpu()]))
    V = a.vocab_size
    s, t = keys // V, keys % V
    rows_a = a.edges.rows(s.to(a.device), t.to(a.device)).cpu()
    rows_b = b.edges.rows(s.to(b.device), t.to(b.device)).cpu()
    return s, t, rows_a, rows_b


@torch.no_grad()
def _row_norms(
    a: BriLLM, b: BriLLM, rows_a: torch.Tensor, rows_b: torch.Tensor, chunk: int = 65536
) -> dict[str, torch.Tensor]:
    """Per pair of rows: ||W_b - W_a||_F, ||W_a||_F, ||b_b - b_a|| and ||b_a||, in chunks (release scale fits)."""
    out = {name: torch.empty(rows_a.numel(), dtype=torch.float64)
           for name in ("weight_change", "weight_size", "bias_change", "bias_size")}
    for i in range(0, rows_a.numel(), chunk):
        ra, rb = rows_a[i : i + chunk].to(a.device), rows_b[i : i + chunk].to(b.device)
        wa, wb = a.weights[ra].cpu().double().flatten(1), b.weights[rb].cpu().double().flatten(1)
        ba, bb = a.biases[ra, 0].cpu().double(), b.biases[rb, 0].cpu().double()
        out["weight_change"][i : i + chunk] = (wb - wa).norm(dim=1)
        out["weight_size"][i : i + chunk] = wa.norm(dim=1)
        out["bias_change"][i : i + chunk] = (bb - ba).norm(dim=1)
        out["bias_size"][i : i + chunk] = ba.norm(dim=1)
    return out


def relative(change: np.ndarray | float, size: np.ndarray | float) -> np.ndarray:
    """change / size, with 0 for no change of nothing and inf for a change of something that was all zeros."""
    change, size = np.asarray(change, dtype=float), np.asarray(size, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(size > 0, change / np.where(size > 0, size, 1.0), np.where(change > 0, np.inf, 0.0))


def _check_same_shape(a: BriLLM, b: BriLLM) -> None:
    """Raise BriLLMError unless both models have one vocabulary size and one width."""
    if a.vocab_size != b.vocab_size or a.hidden_size != b.hidden_size:
        raise BriLLMError(
            f"parameter changes need two models of one vocabulary and width (A: {a.vocab_size} nodes of "
            f"width {a.hidden_size}, B: {b.vocab_size} of width {b.hidden_size})"
        )


def edge_changes(a: BriLLM, b: BriLLM, top: int | None = 50) -> pd.DataFrame:
    """Edges whose parameters changed most from A to B, relative to their size.

    Per edge: ||dW||_F and ||db|| with the sizes ||W_A||_F and ||b_A|| of the row A reads, and
    each change relative to that size; edges are ranked by the larger of the two relative
    changes (a bias near 5e4 that moved by 1,000 changed less than a matrix near 0.01 that
    moved by 0.02). Covers every edge that owns a row in A or B; all other edges read row 0 in
    both and appear once as source = target = -1 ("shared row"). Also flags edges that gained
    or lost a row of their own.
    """
    _check_same_shape(a, b)
    s, t, rows_a, rows_b = _shared_or_own(a, b)
    shared = torch.zeros(1, dtype=torch.long)
    norms = _row_norms(a, b, torch.cat([rows_a, shared]), torch.cat([rows_b, shared]))
    frame = pd.DataFrame({
        "source": np.append(s.numpy(), -1), "target": np.append(t.numpy(), -1),
        "row_a": np.append(rows_a.numpy(), 0), "row_b": np.append(rows_b.numpy(), 0),
        **{name: values.numpy() for name, values in norms.items()},
        "gained_own_row": np.append(((rows_a == 0) & (rows_b > 0)).numpy(), False),
        "lost_own_row": np.append(((rows_a > 0) & (rows_b == 0)).numpy(), False),
    })
    frame["weight_relative"] = relative(frame["weight_change"], frame["weight_size"])
    frame["bias_relative"] = relative(frame["bias_change"], frame["bias_size"])
    frame["relative_change"] = frame[["weight_relative", "bias_relative"]].max(axis=1)
    frame = frame.sort_values(["relative_change", "source", "target"], ascending=[False, True, True], kind="stable")
    frame = frame.reset_index(drop=True)
    return frame if top is None else frame.head(top)


GROUPS = {  # parameter group: what it does in a step
    "edge matrices W": "x @ W of every edge with a row of its own (as the edge reads it)",
    "edge biases b": "+ b of every edge with a row of its own (as the edge reads it)",
    "shared matrix W[0]": "x @ W of every edge without a row of its own",
    "shared bias b[0]": "+ b of every edge without a row of its own",
    "node biases": "the start signal e0 = GELU(r + node_bias[u0] + PE[0])",
    "memory position logits": "the memory weights a = softmax(positions)",
}


def parameter_groups(a: BriLLM, b: BriLLM, edges: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each parameter group's change from A to B relative to its size, largest first.

    Columns: group, role (what the group does in a step), parameters (count), size_a
    (||A||), change (||B - A||) and relative_change (change / size_a). The edge groups cover
    every edge that owns a row in A or B, each as it reads its row (``edges``: the full
    ``edge_changes(a, b, None)``, computed here when not given).
    """
    _check_same_shape(a, b)
    edges = edge_changes(a, b, None) if edges is None else edges
    own = edges[edges["source"] >= 0]
    shared = edges[edges["source"] < 0].iloc[0]
    d = a.hidden_size

    def total(column: str, rows: pd.DataFrame) -> float:
        return float(np.sqrt((rows[column].to_numpy(dtype=float) ** 2).sum()))

    def whole(name: str) -> tuple[int, float, float]:
        pa, pb = getattr(a, name).detach().cpu().double(), getattr(b, name).detach().cpu().double()
        change = float((pb - pa).norm()) if pa.shape == pb.shape else math.nan
        return pa.numel(), float(pa.norm()), change

    rows = [
        ("edge matrices W", len(own) * d * d, total("weight_size", own), total("weight_change", own)),
        ("edge biases b", len(own) * d, total("bias_size", own), total("bias_change", own)),
        ("shared matrix W[0]", d * d, float(shared["weight_size"]), float(shared["weight_change"])),
        ("shared bias b[0]", d, float(shared["bias_size"]), float(shared["bias_change"])),
        ("node biases", *whole("node_bias")),
        ("memory position logits", *whole("positions")),
    ]
    frame = pd.DataFrame(rows, columns=["group", "parameters", "size_a", "change"])
    frame.insert(1, "role", [GROUPS[g] for g in frame["group"]])
    frame["relative_change"] = relative(frame["change"], frame["size_a"])
    frame = frame.sort_values("relative_change", ascending=False, kind="stable", na_position="last")
    return frame.reset_index(drop=True)


PARTS = ("signal", "matrix", "bias")  # what an edge's energy is made of besides the fixed PE row
_SHAPLEY = {0: 1 / 3, 1: 1 / 6, 2: 1 / 3}  # weight of a coalition of k other parts (3 parts in all)


def _energies(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor, pe: torch.Tensor) -> torch.Tensor:
    """||GELU(x @ W + b + PE)|| of N edges (x, bias, pe: (N, d); w: (N, d, d)), by the model's edge output."""
    return edge_outputs(x, w, bias, pe).norm(dim=-1)


@torch.no_grad()
def _energy_shares(
    comparison: PathComparison, a: BriLLM, b: BriLLM, steps: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Shapley shares (N, 3) of the signal, the matrix and the bias in E_B - E_A of each edge
    (steps[k]: source -> targets[k]) on A's path: the energy recomputed with every mix of A's and
    B's parts (8 corners); the three shares add up to the corners' E_B - E_A."""
    ta, tb = comparison.trace_a, comparison.b_on_a
    sources = ta.sources[steps]
    rows = {"a": a.edges.rows(sources.to(a.device), targets.to(a.device)).cpu(),
            "b": b.edges.rows(sources.to(b.device), targets.to(b.device)).cpu()}
    pe = a.pe.cpu()[torch.tensor([decode.pe_index(int(i), ta.settings) for i in steps], dtype=torch.long)]
    parts = {"signal": {"a": ta.signals_in[steps], "b": tb.signals_in[steps]},
             "matrix": {"a": a.weights.cpu()[rows["a"]], "b": b.weights.cpu()[rows["b"]]},
             "bias": {"a": a.biases.cpu()[rows["a"], 0], "b": b.biases.cpu()[rows["b"], 0]}}
    corner = {}
    for mask in range(8):  # bit k set: part k taken from B
        pick = ["b" if mask >> k & 1 else "a" for k in range(3)]
        corner[mask] = _energies(*(parts[p][m] for p, m in zip(PARTS, pick)), pe).double()
    shares = torch.zeros(steps.numel(), 3, dtype=torch.float64)
    for k in range(3):
        for mask in range(8):
            if not mask >> k & 1:
                shares[:, k] += _SHAPLEY[bin(mask).count("1")] * (corner[mask | 1 << k] - corner[mask])
    return shares


def edge_effects(
    comparison: PathComparison, a: BriLLM, b: BriLLM, cells: Sequence[tuple[int, int]]
) -> pd.DataFrame:
    """What B changed on edges of A's path (``cells``: (step, target) pairs, B forced along A's path).

    Per edge: its energy and probability under A and under B (the traces' numbers) and their
    changes, the row each model reads, and how much of the energy change comes from the signal
    arriving at the source, from the edge's matrix and from its bias (Shapley shares, adding up
    to the energy change; NaN when the models differ in width).
    """
    ta, tb = comparison.trace_a, comparison.b_on_a
    steps = torch.tensor([c[0] for c in cells], dtype=torch.long)
    targets = torch.tensor([c[1] for c in cells], dtype=torch.long)
    sources = ta.sources[steps] if len(cells) else torch.zeros(0, dtype=torch.long)
    ea, eb = ta.energies[steps, targets].double(), tb.energies[steps, targets].double()
    pa, pb = ta.probabilities[steps, targets].double(), tb.probabilities[steps, targets].double()
    frame = pd.DataFrame({
        "step": steps.numpy(), "source": sources.numpy(), "target": targets.numpy(),
        "forced": ta.forced[steps].numpy(),
        "energy_a": ea.numpy(), "energy_b": eb.numpy(), "energy_change": (eb - ea).numpy(),
        "probability_a": pa.numpy(), "probability_b": pb.numpy(), "probability_change": (pb - pa).numpy(),
        "row_a": a.edges.rows(sources.to(a.device), targets.to(a.device)).cpu().numpy(),
        "row_b": b.edges.rows(sources.to(b.device), targets.to(b.device)).cpu().numpy(),
    })
    if a.hidden_size == b.hidden_size and len(cells):
        shares = _energy_shares(comparison, a, b, steps, targets).numpy()
    else:
        shares = np.full((len(cells), 3), np.nan)
    for k, part in enumerate(PARTS):
        frame[f"from_{part}"] = shares[:, k]
    return frame


def path_energy_changes(comparison: PathComparison, a: BriLLM, b: BriLLM, top: int = 30) -> pd.DataFrame:
    """The ``top`` edges of A's path whose probability B changed most (|p_B - p_A| at the same step,
    over every candidate of every step, B forced along A's path), with ``edge_effects``' columns."""
    change = (comparison.b_on_a.probabilities.double() - comparison.trace_a.probabilities.double()).abs()
    flat = torch.nan_to_num(change, nan=-1.0).flatten()
    order = torch.sort(flat, descending=True, stable=True).indices  # ties: earlier step, lower node first
    order = order[flat[order] >= 0][:top]
    V = change.shape[1]
    return edge_effects(comparison, a, b, [(int(k) // V, int(k) % V) for k in order])


@dataclass(frozen=True)
class ProbabilityShift:
    """Where B moved probability on A's path: at ``step`` (A and B after the same history), from the
    candidate whose probability fell most (``lost``) to the one whose probability rose most (``gained``)."""

    step: int
    source: int
    lost: int
    gained: int
    divergence: float  # JS(A, B) at that step, bits


def largest_shift(comparison: PathComparison) -> ProbabilityShift | None:
    """The shift at the first step where the paths part, or, when they never do, at the step with the
    largest JS divergence; None when B gives A's distribution at every step."""
    ta, tb = comparison.trace_a, comparison.b_on_a
    divergences = [js_divergence(ta.probabilities[i], tb.probabilities[i]) for i in range(ta.num_steps)]
    if not divergences or max(divergences) <= 0:
        return None
    step = comparison.first_divergence
    if step is None:
        step = int(np.argmax(divergences))
    change = tb.probabilities[step].double() - ta.probabilities[step].double()
    lost = int(torch.nan_to_num(change, nan=math.inf).argmin())
    gained = int(torch.nan_to_num(change, nan=-math.inf).argmax())
    return ProbabilityShift(step, int(ta.path[step]), lost, gained, divergences[step])


@dataclass(frozen=True)
class TrainingRecord:
    """What a checkpoint's metadata says of its training: the loss per step, the validation perplexity,
    the step it was taken at, its run, and why there is no loss curve ('' when there is one)."""

    loss: pd.DataFrame  # step, loss
    validation: pd.DataFrame  # step, perplexity
    step: int | None
    run_id: str
    missing: str


def loss_history(checkpoint: Checkpoint) -> pd.DataFrame:
    """Training loss curve from the metadata written by ``brillm train`` (columns step, loss).

    ``metadata["training"]["loss_history"]`` holds one loss per optimiser step, from step 1;
    a checkpoint that was never trained here gives an empty frame.
    """
    training = checkpoint.metadata.get("training")
    losses = training.get("loss_history") if isinstance(training, dict) else None
    if not isinstance(losses, list):
        return pd.DataFrame(columns=["step", "loss"])
    rows = [(i + 1, float(v)) for i, v in enumerate(losses) if _finite(v)]
    return pd.DataFrame(rows, columns=["step", "loss"])


def _finite(value: object) -> bool:
    """Whether a metadata value is a finite number."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def training_record(checkpoint: Checkpoint) -> TrainingRecord:
    """The checkpoint's training record (see ``TrainingRecord``), read from its metadata.json."""
    training = checkpoint.metadata.get("training")
    if not isinstance(training, dict):
        empty = pd.DataFrame(columns=["step", "loss"])
        return TrainingRecord(empty, pd.DataFrame(columns=["step", "perplexity"]), None, "",
                              "its metadata.json records no training run (it was not made by brillm train)")
    loss = loss_history(checkpoint)
    history = training.get("validation_history")
    points = [(int(p[0]), float(p[1])) for p in history if isinstance(p, list) and len(p) == 2
              and _finite(p[0]) and _finite(p[1])] if isinstance(history, list) else []
    step = int(training["step"]) if _finite(training.get("step")) else None
    settings = training.get("settings")
    init = settings.get("init") if isinstance(settings, dict) else None
    if not loss.empty:
        missing = ""
    elif step == 0:
        missing = ("it took no gradient step: its parameters are the start of a run"
                   + (f" (--init {init})" if isinstance(init, str) else ""))
    else:
        missing = "its metadata.json's training record holds no loss history"
    return TrainingRecord(loss, pd.DataFrame(points, columns=["step", "perplexity"]), step,
                          str(training.get("run_id") or ""), missing)
