"""Shared figure helpers: readable token labels, colours and the empty-figure placeholder."""

from __future__ import annotations

from typing import Callable

import plotly.graph_objects as go

TokenText = Callable[[int], str]
CHOSEN = "#d62728"
CANDIDATE = "#1f77b4"
FORCED = "#7f7f7f"
PATH = "#ff7f0e"
MARGIN = {"l": 50, "r": 20, "t": 40, "b": 40}
_AXIS = {"gridcolor": "#ebebeb", "zerolinecolor": "#d5d5d5", "linecolor": "#d5d5d5", "automargin": True}
# A small white template: plotly's named templates are deep-copied on every use (about 50 ms).
LIGHT_TEMPLATE = {"layout": {"plot_bgcolor": "white", "paper_bgcolor": "white", "font": {"color": "#2a3f5f"},
                             "hoverlabel": {"align": "left"}, "xaxis": _AXIS, "yaxis": _AXIS,
                             "colorway": ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]}}


def show_token(text: str) -> str:
    """Token text with invisible characters made visible (space as ␣, newline as ⏎)."""
    shown = text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥")
    return shown if shown else "∅"


def token_label(node: int, token: TokenText) -> str:
    """'text #id': unique even when two nodes print alike."""
    return f"{show_token(token(node))} #{node}"


def base_layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    """Common margins, template and title."""
    fig.update_layout(title={"text": title, "x": 0.01, "font": {"size": 14}}, template=LIGHT_TEMPLATE,
                      margin=MARGIN, height=height)
    return fig


def placeholder(message: str, height: int = 240) -> go.Figure:
    """An empty figure that says why it is empty."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return base_layout(fig, "", height)
