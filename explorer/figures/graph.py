"""Token graph figure: plotly holds the legend, the axes (wheel zoom, drag pan) and the figure's
data; the page's canvas layers (``assets/graph_layers.js``) draw the edges, the nodes, the step and
the selected node's strongest edges, place the labels at the zoom on screen, and find the node under
the mouse for hover and click.

Plotly's first draw of 4,000 nodes costs about half a second on a software renderer (WebGL or SVG
alike), and its WebGL scatter redraws every trace whenever anything changes (16,000 edges: about a
second a draw); so every trace holds at most one gap point (its legend entry) and carries its data
in ``meta`` for the layers: the edges' (source, target) pairs, the nodes' float32 positions, texts
and label ranking, the selection's node and its strongest edges' other ends. The layers draw the
edges and grey nodes again only when the view moves. What changes with the step (node colours = the
energy landscape, the path so far as numbered arrows, the ranking of labels) is computed here for
every step at once by ``step_frames`` and drawn by the step layer in the browser, so stepping never
asks the server. Every part carries the picture's identity (``picture_id``: a hash of the node
positions), and the layers draw a step or a selection only over the picture it was made for. Trace
order is fixed (see the constants): the layers and the page address traces by it.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..graphdata import GraphData, set_aside
from .common import CANDIDATE, CHOSEN, PATH, layout

EDGES, NODES, PATH_TRACE, OUT_EDGES, IN_EDGES, MARKS = range(6)
NODE_GREY = "#9e9e9e"
HEIGHT = 600
MARGIN = {"l": 10, "r": 90, "t": 70, "b": 10}  # the right margin holds the step layer's colour bar and ticks of up to 8 digits
AXIS_PAD = 0.04  # the layout fills [-1, 1]; the axes show a little more so border nodes are whole
ENERGY_LABELS = 40  # highest-energy nodes of a step ranked for a label after the path's


def thinned_edges(graph: GraphData, k: int) -> np.ndarray:
    """Indices of every node's k strongest own edges (self-loops left out of the drawing)."""
    idx = graph.top_out[:, :k].ravel()
    idx = idx[idx >= 0]
    return idx[graph.sources[idx] != graph.targets[idx]]


def axis_ranges() -> tuple[list[float], list[float]]:
    """The whole graph's x and y ranges."""
    edge = 1.0 + AXIS_PAD
    return [-edge, edge], [-edge, edge]


def label_ranking(path: list[int], step: int, energies: np.ndarray) -> list[int]:
    """Nodes in the order they get a label at a step: its target and source, the earlier path back to
    its start (the layers label all of these), then the step's ``ENERGY_LABELS`` highest energies."""
    shown = list(dict.fromkeys(reversed(path[: step + 2])))
    finite = np.nonzero(np.isfinite(energies))[0]
    strongest = finite[np.argsort(-energies[finite], kind="stable")[:ENERGY_LABELS]]
    return list(dict.fromkeys([*shown, *(int(n) for n in strongest)]))


def node_ranking(graph: GraphData) -> np.ndarray:
    """Every node, those with the most own edges to other tokens first (the frequent tokens): the
    order in which nodes off the path get a label when zooming in leaves room for more."""
    between = graph.sources != graph.targets
    count = np.bincount(np.concatenate([graph.sources[between], graph.targets[between]]),
                        minlength=len(graph.positions))
    return np.argsort(-count, kind="stable")


def picture_id(graph: GraphData) -> str:
    """The identity of a graph's picture: a hash of its node positions (a new checkpoint, or new
    strengths, moves them)."""
    return hashlib.sha256(np.ascontiguousarray(graph.positions, dtype="<f4").tobytes()).hexdigest()[:16]


def aside_caption(graph: GraphData) -> dict[str, Any] | None:
    """Where the layers write the caption of the set-aside tokens (the top left of their block, in
    layout coordinates) and what it says; None when there are none."""
    aside = np.nonzero(set_aside(len(graph.positions), graph.sources, graph.targets))[0]
    if not len(aside):
        return None
    block = graph.positions[aside]
    count = f"{len(aside)} token{'s' if len(aside) > 1 else ''}"
    return {"x": float(block[:, 0].min()), "y": float(block[:, 1].max()),
            "text": f"set aside: {count} with no own edge to another token"}


def encode_int32(values: np.ndarray) -> str:
    """Base64 of int32 bytes (little-endian), the way the browser script reads them."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<i4").tobytes()).decode("ascii")


def encode_float32(values: np.ndarray) -> str:
    """Base64 of the float32 bytes (little-endian), the way the browser script reads them."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


def energy_range(energies: np.ndarray) -> list[float]:
    """[cmin, cmax] of a step's finite energies (a flat landscape gets a tiny span)."""
    finite = energies[np.isfinite(energies)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return [lo, hi if hi > lo else lo + 1e-6]


def step_frames(graph: GraphData, energies: np.ndarray, path: list[int]) -> dict[str, Any]:
    """Everything that changes with the step, for every step: the whole-vocabulary energies
    (float32, NaN = not a candidate) and their colour range, the path, and the nodes ranked for a
    label (the step layer places them at the zoom on screen, and numbers step i's arrow i, as the
    step label counts); for the picture ``picture_id(graph)``."""
    energies = np.asarray(energies, dtype=np.float32)
    steps, vocab = energies.shape
    return {
        "picture": picture_id(graph), "steps": steps, "vocab": vocab, "energies": encode_float32(energies),
        "range": [energy_range(row) for row in energies], "path": [int(n) for n in path],
        "labels": [label_ranking(path, step, energies[step]) for step in range(steps)],
    }


def legend_names(label: str) -> list[str]:
    """The legend names of the selection's traces (out-edges, in-edges, ring) for a node's label ('': none)."""
    of = f" of {label}" if label else " of the clicked node"
    return [f"strongest out-edges{of}", f"strongest in-edges{of}", "selected node"]


def selection(graph: GraphData, node: int, k: int, label: str) -> dict[str, Any]:
    """The selected node (-1: none), the other ends of its k strongest own out-edges and in-edges, and
    the legend names of the selection's traces, for the layers to draw over the picture it names."""
    if node < 0:
        return {"picture": picture_id(graph), "node": -1, "out": [], "in": [], "names": legend_names("")}
    return {"picture": picture_id(graph), "node": int(node),
            "out": [int(t) for t in graph.targets[graph.out_edges(node, k)]],
            "in": [int(s) for s in graph.sources[graph.in_edges(node, k)]], "names": legend_names(label)}


def token_graph(graph: GraphData, labels: list[str], k: int, selected: int = -1) -> go.Figure:
    """The whole graph, for the layers to draw: k strongest own edges per node, the nodes (grey until
    ``step_frames`` paints them), an empty path trace, and the selection's legend entries (the
    layers draw the selection from the page's selection store; a legend entry only with a node)."""
    idx = thinned_edges(graph, k)
    pairs = np.stack([graph.sources[idx], graph.targets[idx]], axis=1)
    vocab = graph.positions.shape[0]
    # one gap point: plotly hides a trace with no points, legend entry included
    layer_xy: dict[str, Any] = {"x": np.array([np.nan], dtype=np.float32), "y": np.array([np.nan], dtype=np.float32)}
    names = legend_names(labels[selected] if selected >= 0 else "")
    gap = [None] if selected >= 0 else []  # as the layers write it (graph_layers.js, withLegend)
    nodes = {"picture": picture_id(graph), "x": encode_float32(graph.positions[:, 0]),
             "y": encode_float32(graph.positions[:, 1]), "text": labels, "rank": encode_int32(node_ranking(graph)),
             "aside": aside_caption(graph)}
    x_range, y_range = axis_ranges()
    title = f"{vocab} nodes, {len(idx)} edges (the {k} strongest own edges per node)"
    # one dict, validated once (each update_layout validates the template again: ~40 ms a call); hovermode
    # off: the layers find the node under the mouse (plotly would clear their tooltip); a new picture
    # (another checkpoint) opens on the whole graph, a new k keeps the zoom
    fig_layout = {**layout(title, HEIGHT), "margin": MARGIN, "dragmode": "pan", "uirevision": nodes["picture"],
                  "hovermode": False, "showlegend": True, "xaxis": {"visible": False, "range": x_range},
                  "yaxis": {"visible": False, "range": y_range},
                  "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 11},
                             "itemclick": "toggle", "itemdoubleclick": "toggleothers"}}
    return go.Figure([
        go.Scatter(**layer_xy, mode="lines", line={"width": 0.5, "color": "rgba(120,120,120,0.3)"},
                   hoverinfo="skip", name=f"{k} strongest own edges per node", showlegend=True,
                   meta={"pairs": encode_int32(pairs)}),
        go.Scatter(**layer_xy, mode="markers", name="nodes (colour: energy at this step)", hoverinfo="skip",
                   marker={"size": 5 if vocab > 500 else 11, "color": NODE_GREY}, meta=nodes),
        go.Scatter(**layer_xy, mode="markers", name="path so far", hoverinfo="skip",
                   marker={"size": 11, "color": "rgba(0,0,0,0)", "line": {"color": PATH, "width": 2.5}}),
    ] + [go.Scatter(x=gap, y=gap, name=name, hoverinfo="skip", **style) for name, style in zip(names, (
        {"mode": "lines", "line": {"width": 2.2, "color": CHOSEN}},
        {"mode": "lines", "line": {"width": 2.2, "color": CANDIDATE}},
        {"mode": "markers", "marker": {"size": 18, "color": "rgba(0,0,0,0)", "line": {"color": CHOSEN, "width": 3}}},
    ))], fig_layout)


def energy_text(values: np.ndarray) -> list[str]:
    """Numbers as shown in tables: the float32 value in its shortest exact form (energies near 5e4 differ in
    the fourth decimal, so fewer digits would hide them), '–' where there is none (a barred self-loop)."""
    return ["–" if not np.isfinite(v) else np.format_float_positional(v, trim="-")
            for v in np.asarray(values, dtype=np.float32)]


def path_range(graph: GraphData, path: list[int], margin: float = 0.15) -> tuple[list[float], list[float]]:
    """Axis ranges framing the path's nodes with a margin."""
    x, y = graph.positions[path, 0], graph.positions[path, 1]
    pad_x = max(float(x.max() - x.min()), 0.1) * margin + 0.05
    pad_y = max(float(y.max() - y.min()), 0.1) * margin + 0.05
    return [float(x.min()) - pad_x, float(x.max()) + pad_x], [float(y.min()) - pad_y, float(y.max()) + pad_y]
