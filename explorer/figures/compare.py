"""Compare figures and tables: per-step rank/probability under A and B, JS divergence, edge changes, losses."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from brillm_core import PathComparison

from .common import CANDIDATE, CHOSEN, FORCED, HEADROOM, PATH, TokenText, base_layout, placeholder, show_token

SHARED_ROW = "(shared row 0)"
COLOUR = {"a": PATH, "b": CANDIDATE}  # A and B keep their colour in every chart and on their chips
NEUTRAL = "#7f7f7f"  # a measure of both (JS divergence)
HEADERS = {"source": "source", "source_token": "source token", "target": "target", "target_token": "target token",
           "weight_change": "‖ΔW‖ (matrix change)", "bias_change": "‖Δb‖ (bias change)",
           "own_row_change": "own row (gained / lost)", "row_a": "row in A", "row_b": "row in B"}


def step_table(comparison: PathComparison, token: TokenText) -> pd.DataFrame:
    """The engine's per-step table with the tokens of A's and B's targets added."""
    frame = comparison.to_frame()
    frame.insert(3, "token_a", [show_token(token(int(n))) for n in frame["target_a"]])
    frame.insert(5, "token_b", [None if pd.isna(n) else show_token(token(int(n))) for n in frame["target_b"]])
    return frame


def _mark_divergence(fig: go.Figure, first: int | None, rows: int) -> None:
    """A dashed vertical line at the first divergent step on every row."""
    if first is None:
        return
    for row in range(1, rows + 1):
        fig.add_vline(x=first, line={"color": CHOSEN, "dash": "dash", "width": 1}, row=row, col=1)


def rank_probability(frame: pd.DataFrame, first: int | None) -> go.Figure:
    """Rank (top) and probability (bottom) of A's chosen token under A and under B, per step."""
    if frame.empty:
        return placeholder("No steps to compare.")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for model, colour in COLOUR.items():
        hover = (f"step %{{x}}: %{{customdata}}<br>{model.upper()}: %{{y:.6g}}<extra></extra>")
        for row, column in ((1, f"rank_{model}"), (2, f"probability_{model}")):
            fig.add_trace(go.Scatter(x=frame["step"], y=frame[column], mode="lines+markers", name=f"under {model.upper()}",
                                     line={"color": colour}, customdata=frame["token_a"], hovertemplate=hover,
                                     legendgroup=model, showlegend=row == 1), row=row, col=1)
    forced = frame.loc[frame["forced"], "step"]
    if not forced.empty:
        fig.add_vrect(x0=forced.min() - 0.5, x1=forced.max() + 0.5, fillcolor=FORCED, opacity=0.12, line_width=0,
                      row="all", col=1)
    _mark_divergence(fig, first, 2)
    fig.update_yaxes(autorange="reversed", title="rank (1 = most energy)", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], title="probability", row=2, col=1)
    fig.update_xaxes(title="step (grey: forced by the prompt)", row=2, col=1)
    where = "never" if first is None else f"first at step {first}"
    return base_layout(fig, f"A's path scored by A and by B (paths diverge: {where})", 460)


def js_bars(frame: pd.DataFrame, first: int | None) -> go.Figure:
    """Jensen-Shannon divergence (bits) between A's and B's next-node distributions, per step."""
    if frame.empty:
        return placeholder("No steps to compare.")
    fig = make_subplots(rows=1, cols=1)
    fig.add_trace(go.Bar(x=frame["step"], y=frame["js_divergence"], marker_color=NEUTRAL,
                         customdata=frame["token_a"],
                         hovertemplate="step %{x} (A takes %{customdata})<br>JS %{y:.6g} bits<extra></extra>"))
    _mark_divergence(fig, first, 1)
    fig.update_yaxes(title="JS divergence (bits, at most 1)", range=[0, js_top(frame["js_divergence"])])
    fig.update_xaxes(title="step")
    return base_layout(fig, "How far B's next-node distribution is from A's (same history: A's path)", 300)


def js_top(values: pd.Series) -> float:
    """The JS axis's top: its largest value with room above, at most the bound of 1 bit (and at least
    0.01 bits), so that small divergences are not drawn as a flat line at the bottom of [0, 1]."""
    largest = values.max(skipna=True)
    return 1.0 if pd.isna(largest) else float(min(1.0, max(0.01, largest * (1 + HEADROOM))))


def edge_table(frame: pd.DataFrame, token: TokenText) -> pd.DataFrame:
    """Edge changes with token texts; the shared row named as such, own-row changes in one column."""
    def text(node: int) -> str:
        return SHARED_ROW if node < 0 else show_token(token(int(node)))

    out = frame.copy()
    out.insert(2, "source_token", [text(n) for n in frame["source"]])
    out.insert(3, "target_token", [text(n) for n in frame["target"]])
    out["own_row_change"] = ["gained" if g else "lost" if lost else ""
                             for g, lost in zip(frame["gained_own_row"], frame["lost_own_row"])]
    return out


def loss_curves(curves: dict[str, pd.DataFrame]) -> go.Figure:
    """Training loss by step, one line per checkpoint, keyed "a" and "b" (those without a history are
    left out). B is drawn first and A dashed on top, so A stays visible where it is a prefix of B's run."""
    drawn = {key: f for key, f in curves.items() if not f.empty}
    if not drawn:
        return placeholder("Neither checkpoint's metadata.json records a training loss history.")
    fig = go.Figure()
    for key in sorted(drawn, key=lambda k: k != "b"):
        name, f = key.upper(), drawn[key]
        fig.add_trace(go.Scatter(x=f["step"], y=f["loss"], mode="lines", name=name,
                                 line={"color": COLOUR.get(key, NEUTRAL), "width": 3 if key == "a" else 2,
                                       "dash": "dash" if key == "a" else "solid"},
                                 hovertemplate=f"{name}<br>step %{{x}}: loss %{{y:.6g}}<extra></extra>"))
    fig.update_xaxes(title="training step")
    fig.update_yaxes(title="loss")
    return base_layout(fig, "Training loss from metadata.json", 300)
