"""Stepping in the browser: a page's step store and the clientside callbacks that draw from it.

Once a trace is on the page, the server sends every step of it at once (``{prefix}-steps``);
moving the step (keys, buttons, slider, play, a chip click) then redraws the figures, the
step label and the chips in the browser (``assets/stepping.js``) with no request, and keeps
the step in the address bar. The store::

    {"n": steps, "labels": [label per step], "chips": [class of path chip i], "chip_starts": [0, ...],
     "figures": [{"kind": "frames", "base": figure, "frames": [patch per step]}
                 | {"kind": "cursor", "graph": graph id, "base": figure, "frames": [shapes per step]}
                 | {"kind": "ribbon", "element": element id, "empty": note, "caption": [line, ...],
                    "labels": [...], "texts": [...], "weights": [[a_j per step]], "scale": ["#rrggbb", ...]}
                 | {"kind": "graph", "graph": graph id, ...}
                 | {"kind": "html", "element": element id, "steps": [markup per step]}]}

``figures`` lines up with the graph ids given to ``register``, except "graph", "html" and "ribbon"
entries, which name their element themselves (the ribbon is drawn as page elements into it): "graph" entries are the token graph's layers
(``assets/graph_layers.js``, data from ``figures.graph.step_frames``), drawn over a figure the
page's server callback owns; "html" entries are a text block per step (escaped markup, written
into an element whose children Dash never renders).
A step of the trace on screen is drawn in place (``Plotly.react`` / ``relayout`` of the plot, the
label's text), not through Dash's renderer; see ``assets/stepping.js``.
"""

from __future__ import annotations

from typing import Any

from dash import ALL, ClientsideFunction, Dash, Input, Output, State, dcc

from .components import frame_ids

Store = dict[str, Any]


def frames(base: dict[str, Any], patches: list[dict[str, Any]]) -> dict[str, Any]:
    """A figure drawn as ``base`` (a figure dict) merged with one patch per step."""
    return {"kind": "frames", "base": base, "frames": patches}


def cursor(graph_id: str, base: dict[str, Any], patches: list[dict[str, Any]]) -> dict[str, Any]:
    """A figure whose steps differ only in ``layout.shapes`` (a cursor): the browser moves the shapes
    in place instead of redrawing the figure."""
    return {"kind": "cursor", "graph": graph_id, "base": base, "frames": patches}


def ribbon(element_id: str, memory: dict[str, Any]) -> dict[str, Any]:
    """A memory ribbon drawn into element ``element_id`` from per-step weights (see ``figures.signal.memory_steps``)."""
    return {"kind": "ribbon", "element": element_id, **memory}


def layers(graph_id: str, frames: dict[str, Any]) -> dict[str, Any]:
    """The token graph's step layers over graph ``graph_id`` (``frames`` from ``figures.graph.step_frames``)."""
    return {"kind": "graph", "graph": graph_id, **frames}


def text(element_id: str, steps: list[str]) -> dict[str, Any]:
    """A text block per step (escaped markup), written into element ``element_id``."""
    return {"kind": "html", "element": element_id, "steps": steps}


def store(labels: list[str], figures: list[dict[str, Any]], chips: list[str] | None = None,
          chip_starts: list[int] | None = None) -> Store:
    """Everything the browser needs to draw any step of one trace (``chip_starts``: where each path's
    chips begin when the page shows several paths)."""
    return {"n": len(labels), "labels": labels, "chips": chips or [], "chip_starts": chip_starts or [0],
            "figures": figures}


def no_steps(figures: int) -> Store:
    """The store when no trace is on screen (its figures are hidden; the page says what to do)."""
    return {"n": 0, "labels": [], "chips": [], "figures": [None] * figures}


def components(prefix: str, figures: int) -> list[Any]:
    """The page-local step store, empty."""
    return [dcc.Store(id=frame_ids(prefix).steps, data=no_steps(figures))]


def register_keys(app: Dash, prefix: str) -> None:
    """Play ticks move the slider in the browser, and so do previous / next while no trace is on screen
    (once one is, ``assets/stepping.js`` draws previous / next on the click itself)."""
    ids = frame_ids(prefix)
    app.clientside_callback(
        ClientsideFunction("explorer", "step"),
        Output(ids.slider, "value", allow_duplicate=True),
        Input(ids.prev, "n_clicks"), Input(ids.next, "n_clicks"), Input(ids.interval, "n_intervals"),
        State(ids.slider, "value"), State(ids.slider, "max"),
        prevent_initial_call=True,
    )


def cursor_frames(base: dict[str, Any], steps: int) -> list[dict[str, Any]]:
    """Layout patches that add a cursor at each step (x = step) to a figure's own shapes."""
    own = list(base.get("layout", {}).get("shapes", []))
    def cursor(i: int) -> dict[str, Any]:
        return {"type": "rect", "xref": "x", "yref": "paper", "x0": i - 0.5, "x1": i + 0.5, "y0": 0, "y1": 1,
                "fillcolor": "rgba(255, 127, 14, 0.18)", "line": {"width": 0}, "layer": "below"}

    return [{"layout": {"shapes": [*own, cursor(i)]}} for i in range(steps)]


def register(app: Dash, prefix: str, graph_ids: list[str]) -> None:
    """The clientside callbacks of a page that steps in the browser: draw a step from the store,
    play / pause, and a click on a path chip."""
    ids = frame_ids(prefix)
    chip = {"type": ids.chip, "index": ALL}
    app.clientside_callback(  # the chips' classes are written by the browser alone (assets/stepping.js)
        ClientsideFunction("stepping", "draw"),
        *(Output(g, "figure") for g in graph_ids), Output(ids.step_label, "children"), Output(ids.views, "style"),
        Input(ids.slider, "value"), Input(ids.steps, "data"),
        State(ids.steps, "id"), *(State(g, "id") for g in graph_ids),
    )
    app.clientside_callback(
        ClientsideFunction("stepping", "play"),
        Output(ids.interval, "disabled"), Output(ids.play, "children"),
        Output(ids.slider, "value", allow_duplicate=True),
        Input(ids.play, "n_clicks"), Input(ids.slider, "value"),
        State(ids.interval, "disabled"), State(ids.slider, "max"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("stepping", "chip"),
        Output(ids.slider, "value", allow_duplicate=True),
        Input(chip, "n_clicks"),
        prevent_initial_call=True,
    )
