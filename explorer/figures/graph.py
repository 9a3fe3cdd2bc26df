"""Token graph figure: WebGL edges (float32, NaN-separated), nodes painted by the energy
landscape, the path so far, and the current/selected node. Trace order is fixed
(EDGES, NODES, PATH, MARKS) so pages can update parts with ``dash.Patch``."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..graphdata import GraphData
from .common import CHOSEN, PATH, base_layout

EDGES, NODES, PATH_TRACE, MARKS = 0, 1, 2, 3
LABELLED_NODES = 60  # up to this many nodes, their tokens are written next to them
NODE_GREY = "#9e9e9e"


def edge_segments(positions: np.ndarray, sources: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y float32 arrays [s, t, NaN] per edge, for one line trace."""
    n = len(sources)
    x = np.full(3 * n, np.nan, dtype=np.float32)
    y = np.full(3 * n, np.nan, dtype=np.float32)
    x[0::3], x[1::3] = positions[sources, 0], positions[targets, 0]
    y[0::3], y[1::3] = positions[sources, 1], positions[targets, 1]
    return x, y


def thinned_edges(graph: GraphData, k: int) -> np.ndarray:
    """Indices of every node's k strongest own edges (self-loops left out of the drawing)."""
    idx = graph.top_out[:, :k].ravel()
    idx = idx[idx >= 0]
    return idx[graph.sources[idx] != graph.targets[idx]]


def landscape_colours(energies: np.ndarray | None, vocab_size: int) -> dict:
    """Marker colour settings for a whole-vocabulary energy vector (NaN = not a candidate)."""
    if energies is None:
        return {"color": NODE_GREY}
    e = np.asarray(energies, dtype=np.float32)
    finite = e[np.isfinite(e)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return {"color": np.where(np.isfinite(e), e, lo).astype(np.float32), "colorscale": "Viridis", "cmin": lo,
            "cmax": hi if hi > lo else lo + 1e-6, "showscale": True, "colorbar": {"title": "energy", "thickness": 12}}


def path_xy(graph: GraphData, path: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of path nodes in order."""
    p = np.asarray(path, dtype=np.int64)
    return graph.positions[p, 0], graph.positions[p, 1]


def token_graph(graph: GraphData, labels: list[str], k: int, energies: np.ndarray | None = None,
                path: list[int] | None = None, selected: int = -1) -> go.Figure:
    """The whole graph: k strongest own edges per node, nodes coloured by ``energies``."""
    idx = thinned_edges(graph, k)
    ex, ey = edge_segments(graph.positions, graph.sources[idx], graph.targets[idx])
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=ex, y=ey, mode="lines", line={"width": 0.5, "color": "rgba(120,120,120,0.35)"},
                               hoverinfo="skip", name="edges"))
    vocab = graph.positions.shape[0]
    fig.add_trace(go.Scattergl(
        x=graph.positions[:, 0], y=graph.positions[:, 1], name="nodes", text=labels, textposition="top center",
        mode="markers+text" if vocab <= LABELLED_NODES else "markers",
        customdata=energy_text(energies, vocab), hovertemplate="%{text}<br>energy %{customdata}<extra></extra>",
        marker={"size": 6 if vocab > 500 else 12, **landscape_colours(energies, vocab)},
    ))
    px, py = path_xy(graph, path or [])
    fig.add_trace(go.Scattergl(x=px, y=py, mode="lines+markers", name="path", hoverinfo="skip",
                               line={"color": PATH, "width": 3}, marker={"size": 9, "color": PATH}))
    mx, my = path_xy(graph, [selected] if selected >= 0 else [])
    fig.add_trace(go.Scattergl(x=mx, y=my, mode="markers", name="selected", hoverinfo="skip",
                               marker={"size": 18, "color": "rgba(0,0,0,0)", "line": {"color": CHOSEN, "width": 3}}))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(showlegend=False, dragmode="pan", uirevision="graph", hovermode="closest")
    return base_layout(fig, f"{vocab} nodes, {len(idx)} edges (the {k} strongest own edges per node)", 640)


def energy_text(energies: np.ndarray | None, vocab: int) -> list[str]:
    """Hover text of each node's energy ('–' where not a candidate)."""
    if energies is None:
        return ["–"] * vocab
    return ["–" if not np.isfinite(v) else f"{v:.5g}" for v in np.asarray(energies, dtype=float)]


def path_range(graph: GraphData, path: list[int], margin: float = 0.15) -> tuple[list[float], list[float]]:
    """Axis ranges framing the path's nodes with a margin."""
    x, y = path_xy(graph, path)
    pad_x = max(float(x.max() - x.min()), 0.1) * margin + 0.05
    pad_y = max(float(y.max() - y.min()), 0.1) * margin + 0.05
    return [float(x.min()) - pad_x, float(x.max()) + pad_x], [float(y.min()) - pad_y, float(y.max()) + pad_y]
