"""Recall figures: the explored spread as a layered graph, and the reverse view's sources.

The layered graph keeps its labels apart by construction: each hop is a column, each node
a row of at least ``ROW_PX`` pixels (the figure grows with the fullest column), and each
label is written to the right of its node, cut to the width of a column (the whole token
is in the hover)."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pandas as pd

from brillm_core import RecallResult

from .common import (CANDIDATE, CHOSEN, EXACT, TokenText, axis_note, difference_range, layout, placeholder,
                     relative_texts, token_label)
from .signal import label_margin

WIDTHS = (0.6, 1.6, 3.2)
HEIGHT = 480
MARGIN = {"l": 20, "r": 20, "t": 40, "b": 40}
ROW_PX = 20  # vertical room of one node and its label
PLOT_WIDTH_PX = 560  # the narrowest plot area the page gives the figure (half of a 1,440 px window)
LABEL_FONT = 11
CHAR_PX = 0.62 * LABEL_FONT  # average glyph width of the sans-serif label font
LABEL_OFFSET_PX = 10  # from a node's centre to the start of its label
X_PAD = (0.25, 0.95)  # x range around the hops, in hops: room for the last column's labels
LABEL_HALO = "0 0 2px white, 0 0 2px white, 0 0 3px white"  # keeps a label readable over the edges
RING_PX = 9  # radius of the ring around the node chosen for the reverse view
REVERSE_LEFT_PX = 90  # the reverse view's left margin: its energy tick labels ("50,012.5") and the axis title


def recall_positions(result: RecallResult, max_nodes: int) -> dict[int, tuple[float, float]]:
    """x = hop at which a node first lights up (the start at 0), y = its rank within that hop."""
    start = result.context[-1]
    reached = ranked_nodes(result)[:max_nodes]
    layers: dict[int, list[int]] = defaultdict(list)
    layers[0].append(start)
    for n in reached:
        if n != start:
            layers[int(result.first_hop[n])].append(n)
    pos = {}
    for hop, nodes in layers.items():
        for r, n in enumerate(nodes):
            pos[n] = (float(hop), (len(nodes) - 1) / 2.0 - r)
    return pos


def ranked_nodes(result: RecallResult) -> list[int]:
    """Reached nodes by activation, highest first (ties by id)."""
    reached = np.nonzero(result.first_hop.numpy() > 0)[0]
    act = result.activation.numpy()
    return [int(n) for n in sorted(reached, key=lambda n: (-act[n], n))]


def layout_size(pos: dict[int, tuple[float, float]]) -> tuple[list[float], list[float], int]:
    """x range, y range and figure height that give every row ``ROW_PX`` pixels."""
    hops = max(x for x, _ in pos.values())
    rows = max(Counter(x for x, _ in pos.values()).values())
    half = (rows - 1) / 2 + 0.6
    height = max(HEIGHT, int(2 * half * ROW_PX) + MARGIN["t"] + MARGIN["b"])
    return [-X_PAD[0], hops + X_PAD[1]], [-half, half], height


def fitted_label(text: str, x_range: list[float]) -> str:
    """A label cut (with '…') to the room between its node and the next column."""
    column_px = PLOT_WIDTH_PX / (x_range[1] - x_range[0])
    room = max(3, int((column_px - LABEL_OFFSET_PX - 6) / CHAR_PX))
    return text if len(text) <= room else text[: room - 1] + "…"


def selection_ring(result: RecallResult, node: int | None, max_nodes: int = 40) -> list[dict]:
    """The layout shapes that mark ``node`` on ``recall_graph``: a ring of fixed size around it, or none when
    no node is chosen or it is not drawn (a page patches ``layout.shapes`` with these on a new choice)."""
    pos = recall_positions(result, max_nodes)
    if node is None or node not in pos:
        return []
    x, y = pos[node]
    return [{"type": "circle", "xref": "x", "yref": "y", "xsizemode": "pixel", "ysizemode": "pixel",
             "xanchor": x, "yanchor": y, "x0": -RING_PX, "x1": RING_PX, "y0": -RING_PX, "y1": RING_PX,
             "line": {"color": CHOSEN, "width": 2.5}, "layer": "above"}]


def recall_graph(result: RecallResult, token: TokenText, max_nodes: int = 40, selected: int | None = None) -> dict:
    """Nodes by hop and activation; explored edges with width by the mass they carried; the ``selected`` node
    ringed (see ``selection_ring``). A figure dict, not a validated plotly figure: every recall answer carries
    it, and validating took most of that answer."""
    pos = recall_positions(result, max_nodes)
    x_range, y_range, height = layout_size(pos)
    mass: dict[tuple[int, int], float] = defaultdict(float)
    for _, s, t, m in result.edges:
        if s in pos and t in pos and s != t:
            mass[(s, t)] += m
    data: list[dict] = []
    if mass:
        cuts = np.quantile(list(mass.values()), [1 / 3, 2 / 3])
        for level, width in enumerate(WIDTHS):
            xs: list[float | None] = []
            ys: list[float | None] = []
            for (s, t), m in mass.items():
                if int(np.searchsorted(cuts, m, side="right")) == level:
                    xs += [pos[s][0], pos[t][0], None]
                    ys += [pos[s][1], pos[t][1], None]
            data.append({"type": "scatter", "x": xs, "y": ys, "mode": "lines", "hoverinfo": "skip",
                         "line": {"width": width, "color": "rgba(90,90,90,0.5)"}})
    nodes = list(pos)
    act = result.activation.numpy()
    names = [token_label(n, token) for n in nodes]
    data.append({
        "type": "scatter", "x": [pos[n][0] for n in nodes], "y": [pos[n][1] for n in nodes], "mode": "markers+text",
        "text": [fitted_label(name, x_range) for name in names], "textposition": "middle right",
        "textfont": {"size": LABEL_FONT, "color": "#111", "shadow": LABEL_HALO}, "hovertext": names,
        "customdata": [[n, float(act[n]), int(result.first_hop[n])] for n in nodes],
        "hovertemplate": "node %{customdata[0]}: %{hovertext}<br>activation %{customdata[1]:.6g}"
                         "<br>first hop %{customdata[2]}<extra></extra>",
        "marker": {"size": [6 + 10 * min(float(act[n]), 1.0) ** 0.5 for n in nodes],
                   "color": [CHOSEN if n == result.context[-1] else CANDIDATE for n in nodes]},
    })
    title = f"Recall from {token_label(result.context[-1], token)}: {len(nodes) - 1} strongest nodes"
    return {"data": data, "layout": {
        **layout(title, height, showlegend=False, shapes=selection_ring(result, selected, max_nodes),
                 xaxis={"title": {"text": "hop at which the node first lights up"}, "dtick": 1, "range": x_range},
                 yaxis={"visible": False, "range": y_range}),
        "margin": MARGIN}}


def reverse_bars(frame: pd.DataFrame, target: int, token: TokenText, k: int = 15) -> dict:
    """The k sources sending most energy into ``target``, own-row edges darker. A figure dict, not a validated
    plotly figure: a page draws it on every choice of a node, and validating it took most of that answer."""
    top = frame.dropna(subset=["energy"]).head(k)
    if top.empty:
        return placeholder("No source sends energy into this node.").to_plotly_json()
    energies = top["energy"].astype(float).tolist()
    best = max(energies)
    axis = difference_range(energies)
    bars = {
        "type": "bar", "x": [token_label(int(s), token) for s in top["source"]], "y": energies,
        "marker": {"color": [CANDIDATE if own else "#9ecae1" for own in top["own_row"]]},
        "text": relative_texts(energies, best), "textposition": "outside", "cliponaxis": False,
        "customdata": np.stack([top["source"], top["probability"], top["own_row"].astype(int),
                                np.array(energies) - best], axis=1).tolist(),
        "hovertemplate": f"source %{{customdata[0]}}: %{{x}}<br>energy %{{y:{EXACT}}} (%{{customdata[3]:+.4~f}} from "
                         "the strongest)<br>share of its mass %{customdata[1]:.6g}<br>own row %{customdata[2]}"
                         "<extra></extra>",
    }
    title = (f"Who sends energy into {token_label(target, token)} (dark: own row, light: shared row)"
             f"<br><sup>bar labels: energy − the strongest{axis_note(axis)}</sup>")
    frame_layout = layout(title, yaxis={"title": {"text": "energy into the node"}, "range": axis, "tickformat": ",~r"},
                          xaxis={"tickangle": -30})
    # margins that fit the labels already: plotly's automargin would otherwise lay the chart out twice
    margin = {**frame_layout["margin"], "t": 64, "l": REVERSE_LEFT_PX, "b": label_margin(bars["x"])}
    return {"data": [bars], "layout": {**frame_layout, "margin": margin}}
