"""Signal path figures: candidate energies of a step, the memory ribbon, the signal heatmap.

Stepping happens in the browser, so each figure comes as a base figure plus per-step data:
``energy_frames`` and ``heat_frames`` are figure patches (``{"data": [...], "layout": {...}}``
merged into the base by ``apply_frame`` here and by ``assets/stepping.js`` in the browser),
and ``memory_steps`` holds the memory weights from which the browser draws the ribbon (page
elements, not a plotly chart: redrawing one took about 40 ms of each step).
Every number is the engine's float32 value, written exactly; the only derived ones are the bars'
differences from the step's best and the heatmap's per-unit shades (its hover has the value).
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import torch

from brillm_core import Trace

from .common import (CANDIDATE, CHOSEN, EXACT, FORCED, MARGIN, REROUTED, TokenText, axis_note, difference_range, layout,
                     relative_texts, token_hover, token_label)

Frame = dict[str, Any]
FORCED_HOW, CHOSEN_HOW, REROUTED_HOW = "forced by the prompt", "chosen", "re-routed by you"
TAKEN = {FORCED_HOW: (FORCED, "grey"), CHOSEN_HOW: (CHOSEN, "red"), REROUTED_HOW: (REROUTED, "purple")}


def apply_frame(base: Frame, frame: Frame) -> go.Figure:
    """The base figure with a step's patch: trace k's properties and top-level layout keys replaced
    (the same merge ``assets/stepping.js`` does in the browser)."""
    data = [{**trace, **patch} for trace, patch in zip(base["data"], frame.get("data", []))]
    data += base["data"][len(data):]
    return go.Figure({"data": data, "layout": {**base["layout"], **frame.get("layout", {})}})


ENERGY_AXIS = "energy ‖o‖₂"
TICK_ANGLE = 30.0  # the candidate labels' tilt (degrees)


def energy_base(height: int = 320) -> Frame:
    """The candidate bar chart without a step: axes, hover and the click-to-re-route data slot."""
    bar = {"type": "bar", "textposition": "outside", "cliponaxis": False,
           "hovertemplate": f"node %{{customdata[0]}}: %{{customdata[3]}}<br>energy %{{y:{EXACT}}} "
                            "(%{customdata[4]:+.4~f} from the step's best)<br>probability %{customdata[1]:.6g}"
                            "<br>rank %{customdata[2]}<extra></extra>"}
    # the margins are fixed once per trace (``one_margin``): plotly's automargin measured the tick labels and
    # could draw the chart a second time, on every step, and took half of a key press
    return {"data": [bar], "layout": layout("", height, yaxis={"title": {"text": ENERGY_AXIS}, "automargin": False},
                                            xaxis={"tickangle": -TICK_ANGLE, "automargin": False},
                                            margin={**MARGIN, "t": 64})}


def energy_frame(trace: Trace, i: int, token: TokenText, k: int = 10, how: str = "") -> Frame:
    """Top-k candidate energies at step i; the taken node marked by its colour (added if outside the top k).

    Each bar's customdata is (node, probability, rank, raw token, energy minus the step's best) so a
    click can re-route through it. The bars keep the true energies; when they all sit near 5e4 the axis
    starts just below them (and says so) and each bar is labelled with its difference from the best.
    ``how`` names the way the taken node was decided (default: forced by the prompt, or chosen); the
    title says it, with the taken bar's colour (a note over the bar covered its neighbours' labels).
    """
    step = trace.step(i)
    top = step.top(k)
    nodes = [n for n, _, _ in top]
    if step.target not in nodes:
        nodes.append(step.target)
    energies = [float(step.energies[n]) for n in nodes]
    probs = [float(step.probabilities[n]) for n in nodes]
    order = np.argsort(-np.nan_to_num(np.array(energies, dtype=float), nan=-np.inf), kind="stable")
    ranks = {n: r + 1 for r, n in enumerate(nodes[j] for j in order)}
    how = how or (FORCED_HOW if step.forced else CHOSEN_HOW)
    taken, colour = TAKEN[how]
    added = f" and the {colour} one (rank {step.chosen_rank})" if len(nodes) > len(top) else ""
    candidates = int((~step.energies.isnan()).sum())
    target = token_label(step.target, token)
    best = float(np.nanmax(np.array(energies, dtype=float))) if candidates else float("nan")
    axis = difference_range(energies)
    return {
        "data": [{"x": [token_label(n, token) for n in nodes], "y": energies,
                  "text": relative_texts(energies, best),
                  "marker": {"color": [taken if n == step.target else CANDIDATE for n in nodes]},
                  "customdata": [[n, p, step.chosen_rank if n == step.target else ranks[n], token_hover(n, token),
                                  e - best] for n, p, e in zip(nodes, probs, energies)]}],
        "layout": {"yaxis": {"title": {"text": ENERGY_AXIS}, "range": axis, "tickformat": ",~r"},
                   "title": {"text": f"Step {i}: {token_label(step.source, token)} → {target}, {how} (the {colour} "
                                     f"bar)<br><sup>top {len(top)} of {candidates} candidates{added}; bar labels: "
                                     f"energy − the step's best{axis_note(axis)}</sup>",
                             "x": 0.01, "font": {"size": 14}}},
    }


def energy_frames(trace: Trace, token: TokenText, k: int = 10, how: dict[int, str] | None = None) -> list[Frame]:
    """``energy_frame`` of every step (``how`` overrides the label of some steps, e.g. re-routed ones), with
    one bottom margin (``one_margin``)."""
    return one_margin([energy_frame(trace, i, token, k, (how or {}).get(i, "")) for i in range(trace.num_steps)])


def one_margin(frames: list[Frame]) -> list[Frame]:
    """Candidate frames with one bottom margin, the one their longest bar label needs, and one left margin,
    the one their widest energy needs: plotly's automargin would otherwise measure the labels and move the
    margins at most steps, and each move draws the chart a second time."""
    ranges = [f["layout"]["yaxis"]["range"] for f in frames if "range" in f["layout"].get("yaxis", {})]
    margin = {**MARGIN, "t": 64, "b": label_margin([x for f in frames for x in f["data"][0].get("x", [])]),
              "l": value_margin(ranges)}
    return [{**frame, "layout": {**frame["layout"], "margin": margin}} for frame in frames]


def value_margin(ranges: list[list[float]], font: float = 12.0) -> int:
    """A left margin (px) that fits the energy axis' tick labels (",~r": the digits with thousands commas, and
    decimals when an axis spans under 10) beside its title, at 0.6 of the font a character, generously."""
    widest = max((len(f"{max(abs(lo), abs(hi)):,.0f}") + (3 if hi - lo < 10 else 0) for lo, hi in ranges),
                 default=1)
    return max(MARGIN["l"], math.ceil(widest * 0.6 * font + 2 * font + 12))


def label_margin(labels: list[str], angle: float = TICK_ANGLE, font: float = 12.0) -> int:
    """A bottom margin (px) that fits x tick labels tilted by ``angle`` degrees: a generous estimate of
    their width (wide characters a font size, others 0.6 of it); automargin still widens it if short."""
    def width(label: str) -> float:
        return sum(font if unicodedata.east_asian_width(c) in "WF" else 0.6 * font for c in label)

    longest = max((width(label) for label in labels), default=0.0)
    tilt = math.radians(angle)
    return max(MARGIN["b"], math.ceil(longest * math.sin(tilt) + font * math.cos(tilt) + 18))


def energy_bars(trace: Trace, i: int, token: TokenText, k: int = 10, how: str = "") -> go.Figure:
    """Step i's candidate bars as one figure (for pages that draw a single step on the server)."""
    return apply_frame(energy_base(), energy_frame(trace, i, token, k, how))


def memory_steps(trace: Trace, token: TokenText) -> dict[str, Any]:
    """What the browser needs to draw every step's memory ribbon (as page elements, see ``assets/stepping.js``):
    the step-0 note, the caption's lines, a hover label and a segment text per memory term c_j, each step's
    weights a (float32, exact), the colour scale the segments take in order (as "#rrggbb" colours), and the
    line said when a segment is drawn wider than its weight."""
    path = trace.path.tolist()
    weights = [m.tolist() for m in trace.memory]
    caption = ["share of the signal x_i = Σ a_j c_j (weights from positions only)", last_output_note(weights)]
    return {
        "empty": "Step 0 reads the start signal e₀ = GELU(r + node_bias + PE[0]); there is no memory yet.",
        "caption": [line for line in caption if line],
        "labels": [f"c{j}: output of step {j}, {token_label(path[j], token)} → {token_label(path[j + 1], token)}"
                   for j in range(trace.num_steps)],
        "texts": [token_label(path[j + 1], token).rsplit(" #", 1)[0] for j in range(trace.num_steps)],
        "weights": weights, "scale": list(plotly.colors.sequential.Viridis),
        "widened": "the thinnest segments are drawn wider than their weight, so that each can be hovered",
    }


def last_output_note(weights: list[list[float]], share: float = 0.99) -> str:
    """A line saying so when every step's memory is (nearly) only its last output: the other segments
    are then too thin to see. The least such weight is rounded down, so the note never overstates it."""
    last = [w[-1] for w in weights if w]
    if not last or min(last) < share:
        return ""
    least = math.floor(min(last) * 1e4) / 1e4
    weight = "a = 1 (float32)" if least >= 1 else f"a ≥ {least:.4f}"
    return f"at every step the last output has {weight}; hover a segment for the others' weights"


def unit_shades(x: torch.Tensor, centred: bool = False) -> torch.Tensor:
    """Heatmap colours with each row of ``x`` (one unit) scaled within its own range, so that a unit near 5e4
    (the KJV models' energy channel) does not flatten the others to one colour: from 0 at the row's lowest
    value to 1 at its highest, or (``centred``) its values divided by its largest |value|, from -1 to 1 with
    0 and the signs kept. A constant row gets the middle colour: 0.5 (min to max), or 0 for a row of zeros (centred)."""
    x = x.double()
    if centred:
        top = x.abs().max(dim=1, keepdim=True).values
        return (x / top.where(top > 0, torch.ones_like(top))).where(top > 0, torch.zeros_like(x))
    lo, hi = x.min(dim=1, keepdim=True).values, x.max(dim=1, keepdim=True).values
    spread = (hi - lo).where(hi > lo, torch.ones_like(hi))
    return ((x - lo) / spread).where(hi > lo, torch.full_like(x, 0.5))


def signal_heatmap(trace: Trace) -> Frame:
    """The d units of the input signal at every step (the browser outlines the current step).

    Each unit is coloured within its own range over the steps: one unit can sit near 5e4 (the energy
    channel) while the others move by tens, and a shared colour scale would show only that one.
    The hover gives the true value x (float32, exact)."""
    shade = unit_shades(trace.signals_in.T)  # (d, n): one row per unit
    n, d = (int(v) for v in trace.signals_in.shape)
    heat = {"type": "heatmap", "z": shade.tolist(), "customdata": trace.signals_in.T.tolist(), "x": list(range(n)),
            "y": list(range(d)), "colorscale": "Viridis", "zmin": 0, "zmax": 1,
            "colorbar": {"title": {"text": "within<br>the unit's<br>range"}, "tickvals": [0, 1],
                         "ticktext": ["its lowest", "its highest"]},
            "hovertemplate": f"step %{{x}}, unit %{{y}}<br>signal x %{{customdata:{EXACT}}}<extra></extra>"}
    title = "Input signal x_i of every step (d units, each coloured within its own range); the current step outlined"
    return {"data": [heat], "layout": layout(title, 300, xaxis={"title": {"text": "step"}},
                                             yaxis={"title": {"text": "unit"}})}


def heat_frames(trace: Trace) -> list[Frame]:
    """The cursor rectangle of every step, as layout patches of ``signal_heatmap``."""
    d = int(trace.signals_in.shape[1])
    return [{"layout": {"shapes": [{"type": "rect", "x0": i - 0.5, "x1": i + 0.5, "y0": -0.5, "y1": d - 0.5,
                                    "line": {"color": CHOSEN, "width": 2}}]}} for i in range(trace.num_steps)]
