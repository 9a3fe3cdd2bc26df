"""Model card figures: own rows per node, the memory's weight by distance, and loss curves found in the metadata."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from .common import base_layout

MAX_CURVE_POINTS = 20_000


def own_rows_histogram(own_per_source: np.ndarray) -> go.Figure:
    """How many own-row out-edges each node has."""
    fig = go.Figure(go.Histogram(x=own_per_source, nbinsx=50, marker_color="#1f77b4",
                                 hovertemplate="%{x} own edges: %{y} nodes<extra></extra>"))
    fig.update_xaxes(title="out-edges with their own parameter row")
    fig.update_yaxes(title="nodes")
    return base_layout(fig, "Own rows per node (every other edge reads the shared row 0)", 280)


def memory_by_distance(by_distance: list[float], entropy: float, length: int) -> go.Figure:
    """Mean memory weight of the output k steps back (k = 1: the previous output) over a path of ``length`` nodes."""
    distance = list(range(1, len(by_distance) + 1))
    fig = go.Figure(go.Bar(x=distance, y=by_distance, marker_color="#6a51a3",
                           hovertemplate="%{x} steps back: mean weight %{y:.6g}<extra></extra>"))
    fig.update_xaxes(title="steps back (1 = the previous output)")
    fig.update_yaxes(title="mean memory weight", rangemode="tozero")
    return base_layout(fig, f"Memory by distance over a path of {length} nodes (mean entropy {entropy:.2f} nats)", 280)


def numeric_series(metadata: Any, prefix: str = "") -> dict[str, list[float]]:
    """Every list of at least two numbers in the metadata whose key mentions 'loss' or 'ppl'."""
    found: dict[str, list[float]] = {}
    if isinstance(metadata, dict):
        for key, value in metadata.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, list) and len(value) >= 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
            ) and any(word in str(key).lower() for word in ("loss", "ppl", "perplexity")):
                found[name] = [float(v) for v in value[:MAX_CURVE_POINTS]]
            elif isinstance(value, (dict, list)):
                found.update(numeric_series(value, name))
    elif isinstance(metadata, list):
        for i, value in enumerate(metadata[:100]):
            found.update(numeric_series(value, f"{prefix}[{i}]"))
    return found


def loss_curves(series: dict[str, list[float]]) -> go.Figure:
    """One line per metadata series, by index."""
    fig = go.Figure([go.Scatter(y=values, mode="lines", name=name) for name, values in series.items()])
    fig.update_xaxes(title="record")
    return base_layout(fig, "Training curves from metadata.json", 300)
