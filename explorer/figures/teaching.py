"""Teaching figures: one step's arithmetic as labelled terms, and its vectors stage by stage."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import torch

from brillm_core import StepExplanation

from .common import EXACT, MARGIN, TokenText, layout, token_label
from .signal import apply_frame, unit_shades

STAGES = (("signal", "x"), ("product", "x @ W"), ("bias", "b"), ("pe", "PE"), ("pre_activation", "z"), ("output", "o"))


@dataclass(frozen=True)
class Term:
    """One part of the mechanism: its formula in symbols and its labelled numbers (the engine's, unrounded)."""

    key: str
    title: str
    expression: str
    lines: tuple[tuple[str, tuple[float, ...]], ...]
    depends_on_target: bool
    matrix: tuple[tuple[float, ...], ...] = ()


def fmt(value: float) -> str:
    """How a number is printed: 5 significant digits but never fewer than 2 decimals, so energies near 5e4
    that differ by hundredths stay apart (the full value is in the hover title)."""
    whole = math.floor(math.log10(abs(value))) + 1 if math.isfinite(value) and value != 0 else 0
    return f"{value:.{max(5, whole + 2)}g}"


def _vec(tensor) -> tuple[float, ...]:
    """A tensor's values as Python floats."""
    return tuple(float(v) for v in tensor.reshape(-1).tolist())


def memory_term(ex: StepExplanation, limit: int | None = None) -> Term:
    """The memory x_i = Σ a_j·c_j, term by term; past ``limit`` terms only the ``limit`` largest weights are
    written out and the others are summed into 'the rest' (float64 sums of the engine's float32 numbers),
    so that a step's text stays the same size however long the path is."""
    i = ex.step
    if i == 0:
        return Term("memory", "Memory", "step 0 has no memory: x₀ = e₀ = GELU(r + node_bias[u₀] + PE[0])", (), False)
    expression = f"x{i} = Σⱼ aⱼ·cⱼ over the {i} earlier outputs cⱼ (weights from positions only)"
    if limit is None or i <= limit:
        lines = [(f"a = softmax(positions[0, :{i}])", _vec(ex.memory_weights))]
        lines += [(f"a{j}·c{j}", _vec(ex.memory_terms[j])) for j in range(i)]
        return Term("memory", "Memory", expression, tuple(lines), False)
    shown = sorted(torch.topk(ex.memory_weights, limit).indices.tolist())
    rest = sorted(set(range(i)) - set(shown))
    lines = [(f"a = softmax(positions[0, :{i}]) at j = {', '.join(map(str, shown))}",
              tuple(float(ex.memory_weights[j]) for j in shown))]
    lines += [(f"a{j}·c{j}", _vec(ex.memory_terms[j])) for j in shown]
    lines += [(f"the rest: Σ aⱼ over the other {len(rest)} j", (float(ex.memory_weights[rest].double().sum()),)),
              (f"the rest: Σ aⱼ·cⱼ over the other {len(rest)} j", _vec(ex.memory_terms[rest].double().sum(0)))]
    note = (f"; the {limit} largest weights term by term, the other {len(rest)} terms summed as the rest "
            "(the step's CSV and JSON list every term)")
    return Term("memory", "Memory", expression + note, tuple(lines), False)


def formula_terms(ex: StepExplanation, token: TokenText, memory_limit: int | None = None) -> list[Term]:
    """Step ``ex.step`` for edge source -> target, term by term, in the order the signal flows (the memory
    capped at ``memory_limit`` terms, see ``memory_term``)."""
    i = ex.step
    edge = f"{token_label(ex.source, token)} → {token_label(ex.target, token)}"
    memory = memory_term(ex, memory_limit)
    own = "its own row" if ex.row > 0 else "the shared row 0"
    pe = f"PE[{ex.pe_index}]"
    return [
        memory,
        Term("signal", "Signal", f"the signal arriving at {token_label(ex.source, token)} at step {i}",
             ((f"x{i}", _vec(ex.signal)),), False),
        Term("product", "Matrix", f"edge {edge} reads {own} (row {ex.row}): x{i} @ W",
             (("x @ W", _vec(ex.product)),), True, tuple(_vec(r) for r in ex.weight)),
        Term("bias", "Bias", f"+ biases[{ex.row}]", (("b", _vec(ex.bias)),), True),
        Term("pe", "Position", f"+ {pe}, the sinusoidal table at position {ex.pe_index}", ((pe, _vec(ex.pe)),), False),
        Term("pre_activation", "Sum", "z = x @ W + b + " + pe, (("z", _vec(ex.pre_activation)),), True),
        Term("output", "GELU", "o = GELU(z) = z·Φ(z), unit by unit", (("o", _vec(ex.output)),), True),
        Term("energy", "Energy", "E = ‖o‖₂ = √(Σ oₖ²)", (("E", (ex.energy,)),), True),
        Term("softmax", "Softmax", f"p = exp(E / T − log Z), T = {fmt(ex.temperature)}, "
             "log Z = log Σ exp(E′ / T) over every candidate",
             (("log Z", (ex.log_normaliser,)), ("p", (ex.probability,))), True),
    ]


def terms_frame(terms: list[Term]) -> pd.DataFrame:
    """Every number of the terms in long format: part, label, unit, value (W as label 'W[r]')."""
    rows = [(t.key, label, k, v) for t in terms for label, vec in t.lines for k, v in enumerate(vec)]
    rows += [(t.key, f"W[{r}]", k, v) for t in terms for r, vec in enumerate(t.matrix) for k, v in enumerate(vec)]
    return pd.DataFrame(rows, columns=["part", "label", "unit", "value"])


STAGE_COLOURS = "colour: each unit (column) as a share of its largest |value| over the stages; 0 is white"
# Blue for negative, white for 0, red for positive shares (ColorBrewer's RdBu): plotly's own "RdBu" is grey in the
# middle, which drew every small value grey and the whole chart washed out.
STAGE_SCALE = [[0.0, "#2166ac"], [0.25, "#92c5de"], [0.5, "#ffffff"], [0.75, "#f4a582"], [1.0, "#b2182b"]]


def stage_base() -> dict:
    """The stage heatmap without a step: rows x, x @ W, b, PE, z, o; each cell labelled with its value (``text``)
    and coloured within its unit's own range (``unit_shades``), since one unit can sit near 5e4."""
    heat = {"type": "heatmap", "y": [label for _, label in STAGES], "colorscale": STAGE_SCALE, "zmin": -1, "zmax": 1,
            "texttemplate": "%{text:.3g}",
            "hovertemplate": "%{y}, unit %{x}: %{text:" + EXACT + "}<br>%{z:+.3f} of the unit's largest |value|"
                             "<extra></extra>",
            "colorbar": {"title": {"text": "share of<br>the unit's<br>largest |v|"}, "tickvals": [-1, 0, 1],
                         "ticktext": ["−largest", "0", "+largest"]}}
    return {"data": [heat], "layout": layout("", 320, yaxis={"autorange": "reversed"},
                                             xaxis={"title": {"text": "unit"}, "dtick": 1}, margin={**MARGIN, "t": 64})}


def stage_frame(ex: StepExplanation, token: TokenText) -> dict:
    """One edge's stage heatmap as a patch of ``stage_base``: its d units at every stage (the engine's values)."""
    values = torch.stack([getattr(ex, name).reshape(-1) for name, _ in STAGES])  # (stages, d)
    title = (f"Step {ex.step}: {token_label(ex.source, token)} → {token_label(ex.target, token)}, "
             f"E = {fmt(ex.energy)}, p = {fmt(ex.probability)}"
             f"<br><sup>{STAGE_COLOURS}; hover for the exact value</sup>")
    return {"data": [{"z": unit_shades(values.T, centred=True).T.tolist(), "text": values.tolist(),
                      "x": list(range(values.shape[1]))}],
            "layout": {"title": {**stage_base()["layout"]["title"], "text": title}}}


def stage_heatmap(ex: StepExplanation, token: TokenText) -> go.Figure:
    """The d units of x, x @ W, b, PE, z and o for one edge, as one figure."""
    return apply_frame(stage_base(), stage_frame(ex, token))


def hidden_frame(message: str) -> dict:
    """A patch that empties a one-trace figure and says why (a step not yet revealed)."""
    note = {"text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper"}
    return {"data": [{"x": [], "y": [], "z": [], "text": [], "customdata": []}],
            "layout": {"annotations": [note], "xaxis": {"visible": False}, "yaxis": {"visible": False}}}
