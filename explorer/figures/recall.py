"""Recall figures: the explored spread as a layered graph, and the reverse view's sources."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from brillm_core import RecallResult

from .common import CANDIDATE, CHOSEN, TokenText, base_layout, placeholder, token_label

WIDTHS = (0.6, 1.6, 3.2)


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


def recall_graph(result: RecallResult, token: TokenText, max_nodes: int = 40) -> go.Figure:
    """Nodes by hop and activation; explored edges with width by the mass they carried."""
    pos = recall_positions(result, max_nodes)
    mass: dict[tuple[int, int], float] = defaultdict(float)
    for _, s, t, m in result.edges:
        if s in pos and t in pos and s != t:
            mass[(s, t)] += m
    fig = go.Figure()
    if mass:
        cuts = np.quantile(list(mass.values()), [1 / 3, 2 / 3])
        for level, width in enumerate(WIDTHS):
            xs: list[float | None] = []
            ys: list[float | None] = []
            for (s, t), m in mass.items():
                if int(np.searchsorted(cuts, m, side="right")) == level:
                    xs += [pos[s][0], pos[t][0], None]
                    ys += [pos[s][1], pos[t][1], None]
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip",
                                     line={"width": width, "color": "rgba(90,90,90,0.5)"}))
    nodes = list(pos)
    act = result.activation.numpy()
    fig.add_trace(go.Scatter(
        x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers+text",
        text=[token_label(n, token) for n in nodes], textposition="top center",
        customdata=[[n, float(act[n]), int(result.first_hop[n])] for n in nodes],
        hovertemplate="node %{customdata[0]}: %{text}<br>activation %{customdata[1]:.6g}"
        "<br>first hop %{customdata[2]}<extra></extra>",
        marker={"size": [10 + 30 * min(float(act[n]), 1.0) ** 0.5 for n in nodes],
                "color": [CHOSEN if n == result.context[-1] else CANDIDATE for n in nodes]},
    ))
    fig.update_xaxes(title="hop at which the node first lights up", dtick=1)
    fig.update_yaxes(visible=False)
    fig.update_layout(showlegend=False)
    return base_layout(fig, f"Recall from {token_label(result.context[-1], token)}: {len(nodes) - 1} strongest nodes", 480)


def reverse_bars(frame: pd.DataFrame, target: int, token: TokenText, k: int = 15) -> go.Figure:
    """The k sources sending most energy into ``target``, own-row edges darker."""
    top = frame.dropna(subset=["energy"]).head(k)
    if top.empty:
        return placeholder("No source sends energy into this node.")
    fig = go.Figure(go.Bar(
        x=[token_label(int(s), token) for s in top["source"]], y=top["energy"],
        marker_color=[CANDIDATE if own else "#9ecae1" for own in top["own_row"]],
        customdata=np.stack([top["source"], top["probability"], top["own_row"].astype(int)], axis=1),
        hovertemplate="source %{customdata[0]}: %{x}<br>energy %{y:.6g}<br>share of its mass %{customdata[1]:.6g}"
        "<br>own row %{customdata[2]}<extra></extra>",
    ))
    fig.update_yaxes(title="energy into the node")
    fig.update_xaxes(tickangle=-30)
    return base_layout(fig, f"Who sends energy into {token_label(target, token)} (dark: own row, light: shared row)")
