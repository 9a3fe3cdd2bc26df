"""Token graph figure: plotly holds the legend, the axes (wheel zoom, drag pan) and the figure's
data; the page's canvas layers (``assets/graph_layers.js``) draw the edges, the nodes, the step and
the selected node's strongest edges, and find the node under the mouse for hover and click.

Plotly's first draw of 4,000 nodes costs about half a second on a software renderer (WebGL or SVG
alike), and its WebGL scatter redraws every trace whenever anything changes (16,000 edges: about a
second a draw); so every trace holds at most one gap point (its legend entry) and carries its data
in ``meta`` for the layers: the edges' (source, target) pairs, the nodes' float32 positions and
texts, the selection's coordinates. The layers draw the edges and grey nodes again only when the
view moves. What changes with the step (node colours = the energy landscape, the path so far as
numbered arrows, labels) is computed here for every step at once by ``step_frames`` and drawn by
the step layer in the browser, so stepping never asks the server. Trace order is fixed (see the
constants): the layers and the page address traces by it.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..graphdata import GraphData
from .common import CANDIDATE, CHOSEN, PATH, layout

EDGES, NODES, PATH_TRACE, OUT_EDGES, IN_EDGES, MARKS = range(6)
NODE_GREY = "#9e9e9e"
HEIGHT = 600
MARGIN = {"l": 10, "r": 90, "t": 70, "b": 10}  # the right margin holds the step layer's colour bar and ticks of up to 8 digits
AXIS_PAD = 0.04  # the layout fills [-1, 1]; the axes show a little more so border nodes are whole
# Labels are placed for the whole graph seen in a plot area of at least this size (the
# panel at a 1,440 px wide window); a wider panel or zooming in only moves them apart.
PLOT_PX = (760, HEIGHT - MARGIN["t"] - MARGIN["b"])
LABEL_FONT = 11
CHAR_PX = 0.62 * LABEL_FONT  # average glyph width of the sans-serif label font
LABEL_GAP = 6  # px between a node and its label, and around each label
MAX_LABELS = 40
ENERGY_LABELS = 30  # highest-energy nodes of a step that compete for a label after the path's


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


def axis_ranges() -> tuple[list[float], list[float]]:
    """The whole graph's x and y ranges."""
    edge = 1.0 + AXIS_PAD
    return [-edge, edge], [-edge, edge]


def to_pixels(positions: np.ndarray) -> np.ndarray:
    """Layout coordinates -> pixels of the assumed plot area (y downwards), whole graph in view."""
    (x0, x1), (y0, y1) = axis_ranges()
    w, h = PLOT_PX
    return np.stack([(positions[:, 0] - x0) / (x1 - x0) * w, (y1 - positions[:, 1]) / (y1 - y0) * h], axis=1)


def label_box(pixel: np.ndarray, text: str) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) in pixels of a label written centred above its node."""
    width = len(text) * CHAR_PX + LABEL_GAP
    height = LABEL_FONT + LABEL_GAP
    x, y = float(pixel[0]), float(pixel[1])
    return x - width / 2, y - LABEL_GAP / 2 - height, x + width / 2, y - LABEL_GAP / 2


def overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two (left, top, right, bottom) boxes intersect."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def choose_labels(positions: np.ndarray, labels: list[str], priority: list[int],
                  limit: int = MAX_LABELS) -> list[int]:
    """Nodes to label, in ``priority`` order, skipping any whose label would overlap one already
    chosen (screen distance at the whole-graph view), at most ``limit``."""
    pixels = to_pixels(positions)
    chosen: list[int] = []
    boxes: list[tuple[float, float, float, float]] = []
    for node in dict.fromkeys(priority):
        box = label_box(pixels[node], labels[node])
        if not any(overlaps(box, other) for other in boxes):
            chosen.append(node)
            boxes.append(box)
            if len(chosen) == limit:
                break
    return chosen


def label_priority(path: list[int], step: int, energies: np.ndarray) -> list[int]:
    """The step's source and target, the earlier path back to its start, then the step's highest energies."""
    shown = path[: step + 2]
    finite = np.nonzero(np.isfinite(energies))[0]
    strongest = finite[np.argsort(-energies[finite], kind="stable")[:ENERGY_LABELS]]
    return [*reversed(shown), *(int(n) for n in strongest)]


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


def step_frames(graph: GraphData, labels: list[str], energies: np.ndarray, path: list[int]) -> dict[str, Any]:
    """Everything that changes with the step, for every step: the whole-vocabulary energies
    (float32, NaN = not a candidate) and their colour range, the path, and the nodes to label
    (the step layer writes them, and numbers step i's arrow i, as the step label counts)."""
    energies = np.asarray(energies, dtype=np.float32)
    steps, vocab = energies.shape
    return {
        "steps": steps, "vocab": vocab, "energies": encode_float32(energies),
        "range": [energy_range(row) for row in energies], "path": [int(n) for n in path],
        "labels": [choose_labels(graph.positions, labels, label_priority(path, step, energies[step]))
                   for step in range(steps)],
    }


def selection_edges(graph: GraphData, node: int, k: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Line coordinates of a node's k strongest own out-edges and in-edges, NaN between edges (none for -1)."""
    if node < 0:
        empty = np.array([], dtype=np.int64)
        return edge_segments(graph.positions, empty, empty), edge_segments(graph.positions, empty, empty)
    out, into = graph.out_edges(node, k), graph.in_edges(node, k)
    return (edge_segments(graph.positions, graph.sources[out], graph.targets[out]),
            edge_segments(graph.positions, graph.sources[into], graph.targets[into]))


def marks_xy(graph: GraphData, node: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of the selected node (empty for -1)."""
    nodes = [node] if node >= 0 else []
    return graph.positions[nodes, 0], graph.positions[nodes, 1]


def selection_patch(fig: Any, graph: GraphData, node: int, k: int, label: str) -> None:
    """Write a node's selection (ring, strongest out- and in-edges, legend names) into ``fig``
    (a figure dict or a ``dash.Patch``): the coordinates in each trace's meta, for the step layer
    to draw over the nodes; the trace itself has a gap point (its legend entry) or, when it has
    nothing to draw, no point (no entry)."""
    (ox, oy), (ix, iy) = selection_edges(graph, node, k)
    mx, my = marks_xy(graph, node)
    suffix = f" of {label}" if node >= 0 else " of the clicked node"
    for trace, (x, y), name in ((OUT_EDGES, (ox, oy), f"strongest out-edges{suffix}"),
                                (IN_EDGES, (ix, iy), f"strongest in-edges{suffix}"),
                                (MARKS, (mx, my), "selected node")):
        fig["data"][trace]["x"] = fig["data"][trace]["y"] = np.full(min(len(x), 1), np.nan, dtype=np.float32)
        fig["data"][trace]["meta"] = {"x": encode_float32(x), "y": encode_float32(y)}
        fig["data"][trace]["name"] = name


def token_graph(graph: GraphData, labels: list[str], k: int, selected: int = -1, detail_k: int = 5) -> go.Figure:
    """The whole graph, for the layers to draw: k strongest own edges per node, the nodes (grey until
    ``step_frames`` paints them), an empty path trace, and the selected node's ``detail_k`` strongest edges."""
    idx = thinned_edges(graph, k)
    pairs = np.stack([graph.sources[idx], graph.targets[idx]], axis=1)
    vocab = graph.positions.shape[0]
    # one gap point: plotly hides a trace with no points, legend entry included
    layer_xy: dict[str, Any] = {"x": np.array([np.nan], dtype=np.float32), "y": np.array([np.nan], dtype=np.float32)}
    nodes = {"x": encode_float32(graph.positions[:, 0]), "y": encode_float32(graph.positions[:, 1]), "text": labels}
    x_range, y_range = axis_ranges()
    title = f"{vocab} nodes, {len(idx)} edges (the {k} strongest own edges per node)"
    # one dict, validated once (each update_layout validates the template again: ~40 ms a call); hovermode
    # off: the layers find the node under the mouse (plotly would clear their tooltip)
    fig_layout = {**layout(title, HEIGHT), "margin": MARGIN, "dragmode": "pan", "uirevision": "graph",
                  "hovermode": False, "showlegend": True, "xaxis": {"visible": False, "range": x_range},
                  "yaxis": {"visible": False, "range": y_range},
                  "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 11},
                             "itemclick": "toggle", "itemdoubleclick": "toggleothers"}}
    fig = go.Figure([
        go.Scatter(**layer_xy, mode="lines", line={"width": 0.5, "color": "rgba(120,120,120,0.3)"},
                   hoverinfo="skip", name=f"{k} strongest own edges per node", showlegend=True,
                   meta={"pairs": encode_int32(pairs)}),
        go.Scatter(**layer_xy, mode="markers", name="nodes (colour: energy at this step)", hoverinfo="skip",
                   marker={"size": 5 if vocab > 500 else 11, "color": NODE_GREY}, meta=nodes),
        go.Scatter(**layer_xy, mode="markers", name="path so far", hoverinfo="skip",
                   marker={"size": 11, "color": "rgba(0,0,0,0)", "line": {"color": PATH, "width": 2.5}}),
        # the selection: selection_patch writes its points and names
        go.Scatter(mode="lines", line={"width": 2.2, "color": CHOSEN}, hoverinfo="skip"),
        go.Scatter(mode="lines", line={"width": 2.2, "color": CANDIDATE}, hoverinfo="skip"),
        go.Scatter(mode="markers", hoverinfo="skip",
                   marker={"size": 18, "color": "rgba(0,0,0,0)", "line": {"color": CHOSEN, "width": 3}}),
    ], fig_layout)
    selection_patch(fig, graph, selected, detail_k, labels[selected] if selected >= 0 else "")
    return fig


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
