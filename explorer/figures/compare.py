"""Compare figures and tables: per-step rank/probability under A and B, JS divergence, what B changed on the
path and in each parameter group, the sentence that sums it up, and both training records."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from brillm_core import PathComparison, ProbabilityShift, TrainingRecord

from .common import (CANDIDATE, CHOSEN, FORCED, HEADROOM, PATH, TokenText, base_layout, layout, placeholder,
                     show_token, token_label)

SHARED_ROW = "(shared row 0)"
COLOUR = {"a": PATH, "b": CANDIDATE}  # A and B keep their colour in every chart and on their chips
NEUTRAL = "#7f7f7f"  # a measure of both (JS divergence)
HEADERS = {"source": "source", "source_token": "source token", "target": "target", "target_token": "target token",
           "weight_change": "‖ΔW‖ (matrix change)", "bias_change": "‖Δb‖ (bias change)",
           "weight_relative": "‖ΔW‖ / ‖W in A‖", "bias_relative": "‖Δb‖ / ‖b in A‖",
           "own_row_change": "own row (gained / lost)", "row_a": "row in A", "row_b": "row in B",
           "step": "step", "probability_a": "p under A", "probability_b": "p under B", "probability_change": "Δp",
           "energy_a": "energy under A", "energy_b": "energy under B", "energy_change": "ΔE",
           "from_signal": "ΔE from the signal", "from_matrix": "ΔE from the matrix", "from_bias": "ΔE from the bias",
           "group": "parameter group", "role": "what it does", "parameters": "parameters",
           "size_a": "size in A (‖A‖)", "change": "change (‖B − A‖)", "relative_change": "change / size"}
PART_NAMES = {"from_signal": "the signal", "from_matrix": "its matrix", "from_bias": "its bias"}


def step_table(comparison: PathComparison, token: TokenText) -> pd.DataFrame:
    """The engine's per-step table with the tokens of A's and B's targets added."""
    frame = comparison.to_frame()
    frame.insert(3, "token_a", [show_token(token(int(n))) for n in frame["target_a"]])
    frame.insert(5, "token_b", [None if pd.isna(n) else show_token(token(int(n))) for n in frame["target_b"]])
    return frame


def _divergence_lines(first: int | None, axes: list[str]) -> list[dict]:
    """A dashed vertical line at the first divergent step on each x axis of ``axes``."""
    if first is None:
        return []
    return [{"type": "line", "xref": x, "yref": f"{y} domain", "x0": first, "x1": first, "y0": 0, "y1": 1,
             "line": {"color": CHOSEN, "dash": "dash", "width": 1}} for x, y in axes]


def rank_probability(frame: pd.DataFrame, first: int | None) -> dict:
    """Rank (top) and probability (bottom) of A's chosen token under A and under B, per step. A figure dict, not
    a validated plotly figure: every comparison's answer carries it, and validating took most of that answer."""
    if frame.empty:
        return placeholder("No steps to compare.").to_plotly_json()
    rows = (("x", "y", "rank"), ("x2", "y2", "probability"))
    data = [{"type": "scatter", "x": frame["step"].tolist(), "y": frame[f"{column}_{model}"].tolist(),
             "xaxis": x, "yaxis": y, "mode": "lines+markers", "name": f"under {model.upper()}",
             "line": {"color": colour}, "customdata": frame["token_a"].tolist(), "legendgroup": model,
             "showlegend": x == "x", "hovertemplate": f"step %{{x}}: %{{customdata}}<br>{model.upper()}: %{{y:.6g}}"
                                                       "<extra></extra>"}
            for model, colour in COLOUR.items() for x, y, column in rows]
    forced = frame.loc[frame["forced"], "step"]
    shading = [] if forced.empty else [
        {"type": "rect", "xref": x, "yref": f"{y} domain", "x0": float(forced.min()) - 0.5,
         "x1": float(forced.max()) + 0.5, "y0": 0, "y1": 1, "fillcolor": FORCED, "opacity": 0.12, "line": {"width": 0}}
        for x, y, _ in rows]
    where = "never" if first is None else f"first at step {first}"
    return {"data": data, "layout": layout(
        f"A's path scored by A and by B (paths diverge: {where})", 460,
        xaxis={"anchor": "y", "domain": [0, 1], "matches": "x2", "showticklabels": False},
        yaxis={"anchor": "x", "domain": [0.54, 1], "autorange": "reversed",
               "title": {"text": "rank (1 = most energy)"}},
        xaxis2={"anchor": "y2", "domain": [0, 1], "title": {"text": "step (grey: forced by the prompt)"}},
        yaxis2={"anchor": "x2", "domain": [0, 0.46], "range": [0, 1.02], "title": {"text": "probability"}},
        shapes=shading + _divergence_lines(first, [(x, y) for x, y, _ in rows]))}


def js_bars(frame: pd.DataFrame, first: int | None) -> dict:
    """Jensen-Shannon divergence (bits) between A's and B's next-node distributions, per step (a figure dict, as
    ``rank_probability``)."""
    if frame.empty:
        return placeholder("No steps to compare.").to_plotly_json()
    bars = {"type": "bar", "x": frame["step"].tolist(), "y": frame["js_divergence"].tolist(),
            "marker": {"color": NEUTRAL}, "customdata": frame["token_a"].tolist(),
            "hovertemplate": "step %{x} (A takes %{customdata})<br>JS %{y:.6g} bits<extra></extra>"}
    return {"data": [bars], "layout": layout(
        "How far B's next-node distribution is from A's (same history: A's path)", 300,
        xaxis={"title": {"text": "step"}},
        yaxis={"title": {"text": "JS divergence (bits, at most 1)"}, "range": [0, js_top(frame["js_divergence"])]},
        shapes=_divergence_lines(first, [("x", "y")]))}


def js_top(values: pd.Series) -> float:
    """The JS axis's top: its largest value with room above, at most the bound of 1 bit (and at least
    0.01 bits), so that small divergences are not drawn as a flat line at the bottom of [0, 1]."""
    largest = values.max(skipna=True)
    return 1.0 if pd.isna(largest) else float(min(1.0, max(0.01, largest * (1 + HEADROOM))))


def with_tokens(frame: pd.DataFrame, token: TokenText) -> pd.DataFrame:
    """A frame of edges with the texts of their source and target beside them (the shared row named as such)."""
    def text(node: int) -> str:
        return SHARED_ROW if node < 0 else show_token(token(int(node)))

    out = frame.copy()
    at = list(out.columns).index("source") + 1
    out.insert(at, "source_token", [text(n) for n in frame["source"]])
    out.insert(at + 2, "target_token", [text(n) for n in frame["target"]])
    return out


def edge_table(frame: pd.DataFrame, token: TokenText) -> pd.DataFrame:
    """Edge changes with token texts; own-row changes in one column."""
    out = with_tokens(frame, token)
    out["own_row_change"] = ["gained" if g else "lost" if lost else ""
                             for g, lost in zip(frame["gained_own_row"], frame["lost_own_row"])]
    return out


def _shares(row: pd.Series) -> str:
    """'its bias +4.38, the signal −3.37, its matrix +1.86': the parts of an energy change, largest first."""
    parts = sorted(PART_NAMES, key=lambda c: -abs(row[c]))
    return ", ".join(f"{PART_NAMES[c]} {signed(row[c])}" for c in parts if pd.notna(row[c]))


def signed(value: float) -> str:
    """A change with its sign, 3 significant digits, a true minus sign."""
    return f"{value:+.3g}".replace("-", "−")


def quoted(node: int, token: TokenText) -> str:
    """A token as the sentence names it: its text in quotes."""
    return f"'{show_token(token(node))}'"


def shift_sentence(shift: ProbabilityShift | None, effects: pd.DataFrame, token: TokenText) -> str:
    """The comparison in one sentence: where B moved probability on A's path, between which nodes, and what in
    the two edges did it (``effects``: ``edge_effects`` of the lost and the gained edge, in that order)."""
    if shift is None:
        return "B gives the same next-node distribution as A at every step of A's path."
    lost, gained = effects.iloc[0], effects.iloc[1]
    source, to_lost, to_gained = (quoted(n, token) for n in (shift.source, shift.lost, shift.gained))

    def change(row: pd.Series) -> str:
        shares = _shares(row)
        return signed(row["energy_change"]) + (f" ({shares})" if shares else "")

    gap = gained["energy_change"] - lost["energy_change"]
    return (f"At step {shift.step}, after {source}, B moved probability from {to_lost} "
            f"(p {lost['probability_a']:.3g} → {lost['probability_b']:.3g}) to {to_gained} "
            f"(p {gained['probability_a']:.3g} → {gained['probability_b']:.3g}). The edges that did it: "
            f"{source} → {to_gained} changed its energy by {change(gained)} and {source} → {to_lost} by "
            f"{change(lost)}, so {to_gained} gained {gap:.3g} on {to_lost} (only energy differences set "
            "probabilities).")


def training_curves(records: dict[str, TrainingRecord]) -> go.Figure:
    """Both checkpoints' training loss by step (top) and validation perplexity (below), keyed "a" and "b";
    each checkpoint's own step marked. B is drawn first and A dashed on top, so A stays visible where it is a
    prefix of B's run (two checkpoints of one run). Empty histories are left out (``training_notes`` says why)."""
    kinds = [(column, title, {k: getattr(r, kind) for k, r in records.items() if not getattr(r, kind).empty})
             for kind, column, title in (("loss", "loss", "training loss"),
                                         ("validation", "perplexity", "validation perplexity"))]
    kinds = [k for k in kinds if k[2]]
    if not kinds:
        return placeholder("No training history to draw: " + " ".join(training_notes(records, {})))
    fig = make_subplots(rows=len(kinds), cols=1, shared_xaxes=True, vertical_spacing=0.1)
    for row, (column, title, curves) in enumerate(kinds, start=1):
        for key in sorted(curves, key=lambda k: k != "b"):
            name, f = key.upper(), curves[key]
            fig.add_trace(go.Scatter(
                x=f["step"], y=f[column], mode="lines" if column == "loss" else "lines+markers", name=name,
                legendgroup=key, showlegend=row == 1 or "loss" not in [k[0] for k in kinds],
                line={"color": COLOUR.get(key, NEUTRAL), "width": 3 if key == "a" else 2,
                      "dash": "dash" if key == "a" else "solid"},
                hovertemplate=f"{name}<br>step %{{x}}: {title} %{{y:.6g}}<extra></extra>"), row=row, col=1)
        fig.update_yaxes(title=title, row=row, col=1)
    for key, record in sorted(records.items()):
        if record.step is not None:
            fig.add_shape(type="line", xref="x", yref="paper", x0=record.step, x1=record.step, y0=0, y1=1,
                          line={"color": COLOUR.get(key, NEUTRAL), "dash": "dot", "width": 1})
            fig.add_annotation(x=record.step, y=1, yref="paper", yanchor="bottom", showarrow=False,
                               text=f"{key.upper()} taken here", font={"color": COLOUR.get(key, NEUTRAL), "size": 11},
                               xanchor="left" if key == "b" else "right")
    fig.update_xaxes(title="training step", row=len(kinds), col=1)
    return base_layout(fig, "Training record from metadata.json", 220 + 140 * len(kinds))


def training_notes(records: dict[str, TrainingRecord], names: dict[str, str]) -> list[str]:
    """Why a checkpoint has no loss curve, and whether the two come from one run (``names``: key -> checkpoint)."""
    def who(key: str) -> str:
        return key.upper() + (f" ({names[key]})" if key in names else "")

    notes = [f"No loss curve for {who(k)}: {r.missing}." for k, r in sorted(records.items()) if r.missing]
    runs = {k: r.run_id for k, r in records.items() if r.run_id}
    if len(runs) == 2 and len(set(runs.values())) == 1:
        steps = ", ".join(f"{k.upper()} at step {r.step}" for k, r in sorted(records.items()) if r.step is not None)
        notes.append(f"A and B are checkpoints of one training run ({steps}).")
    elif len(runs) == 2:
        notes.append("A and B come from different training runs: their curves are two runs, not one.")
    return notes
