"""Token graph: every node and its strongest own edges, the path and the energy landscape.

The server draws the figure when the checkpoint, the trace, k or the selected node changes, and
sends every step's landscape, path and labels once, as the page's step store (``stepping.layers``);
stepping (keys, buttons, slider, play) runs in the browser on the shared stepping mechanism, and
the edges and the step are drawn by the graph's canvas layers (``assets/graph_layers.js``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import dash
import numpy as np
from dash import ClientsideFunction, Dash, Input, Output, Patch, State, ctx, dcc, html, no_update

from brillm_core import Checkpoint, DecodeSettings, Trace

from .. import components as ui
from .. import pathview, stepping
from ..compute import graph_for, graph_key, settings_of
from ..context import Services
from ..figures import common, graph
from ..graphdata import GraphData
from ..pathview import Event, Meta, Progress
from ..state import MAX_GRAPH_K, ViewState, from_dict

NAME, PATH, ORDER = "Token graph", "/graph", 1
P = "tg"
DETAIL_K = 5
HELP = [
    html.P("Every node is a token. Drawn edges are those with a parameter row of their own (every other edge "
           "of a source shares one row and so one output); the slider keeps each node's k strongest, where "
           "an edge's strength is its energy at the first step of a path starting at its source "
           "(under the chosen decoder and start signal)."),
    html.P("Nodes are placed by a force layout (computed once per checkpoint): each node is pulled towards "
           "the targets of its strongest edges, so what a token tends to lead to lies around it."),
    html.P("With a prompt, the path so far is drawn as orange arrows numbered by step, and the nodes are "
           "painted with the energy every node would receive at the current step (the whole-vocabulary "
           "landscape); the path's nodes and the step's highest-energy nodes are labelled where the labels fit. "
           "Step with ← and → (in the browser, no waiting), zoom with the mouse wheel, drag to pan, "
           "'Zoom to path' frames the path; click a node to draw its strongest out- (red) and in-edges (blue). "
           "Click a legend entry to hide or show that layer."),
]
GRAPH_CONFIG = {"scrollZoom": True, "doubleClick": "reset"}
PREPARING = "Preparing the graph: the layout is computed once per checkpoint (a few seconds), then cached."


class ID:
    """The page's component ids, defined once."""

    frame = ui.frame_ids(P)
    graph, drawn, k, zoom, reset, details = (f"{P}-graph", f"{P}-drawn", f"{P}-k", f"{P}-zoom", f"{P}-reset",
                                             f"{P}-details")


def layout(**_query: Any) -> html.Div:
    """The page's components."""
    return html.Div([
        html.H2(NAME), ui.help_box(HELP), *pathview.page_frame(P), dcc.Store(id=ID.drawn),
        *stepping.components(P, 0),
        html.Div(ui.step_controls(P), id=ID.frame.views, style={"display": "none"}),
        html.Div([
            ui.labelled("Edges per node", html.Div(dcc.Slider(id=ID.k, min=1, max=MAX_GRAPH_K, step=1, value=3,
                                                              marks={1: "1", 5: "5", 10: "10", MAX_GRAPH_K: "20"}),
                                                   className="k-slider")),
            html.Button("Zoom to path", id=ID.zoom), html.Button("Whole graph", id=ID.reset),
        ], className="grid-controls"),
        html.Div([ui.figure_panel(ID.graph, "token graph", config=GRAPH_CONFIG,
                                  figure=common.placeholder(PREPARING, graph.HEIGHT)),
                  html.Div(id=ID.details, className="node-details")],
                 className="graph-layout"),
    ], className="page")


def graph_work(services: Services, checkpoint: Checkpoint, state: ViewState, progress: Progress) -> Meta:
    """Compute (or read) the layout, then the path."""
    progress(("1", "laying out the graph (once per checkpoint and decoder)…"))
    graph_for(services.cache, checkpoint, settings_of(state))
    return {"graph_key": graph_key(checkpoint, settings_of(state)),
            **pathview.trace_work(services, checkpoint, state, progress)}


def cached_graph(services: Services, checkpoint: Checkpoint, state: ViewState) -> Meta | None:
    """``graph_work``'s meta when the layout and the path are both cached, else None."""
    key = graph_key(checkpoint, settings_of(state))
    traced = pathview.cached_trace(services, checkpoint, state) if services.cache.get(key) is not None else None
    return None if traced is None else {"graph_key": key, **traced}


def request_settings(meta: Meta) -> DecodeSettings:
    """Decode settings of the request a page's meta was computed for (the graph's strengths follow them)."""
    return settings_of(from_dict(meta["request"])[0])


def node_event(state: ViewState, click: Any, _meta: Meta) -> ViewState:
    """A click on a node selects it."""
    try:
        point = click["points"][0]
    except (TypeError, KeyError, IndexError):
        return state
    if point.get("curveNumber") != graph.NODES:
        return state
    return state.with_(node=int(point["pointIndex"]))


def k_event(state: ViewState, k: Any, _meta: Meta) -> ViewState:
    """The edges-per-node slider."""
    return state.with_(graph_k=k if k is not None else state.graph_k)


def details(g: GraphData, checkpoint: Checkpoint, node: int) -> list[Any]:
    """Token, bias, own-edge counts, strongest out and in edges of one node."""
    token = checkpoint.token
    bias = checkpoint.model.node_bias[node, 0].detach().numpy()

    def table(idx: np.ndarray, other: np.ndarray, title: str) -> html.Table:
        shown = graph.energy_text(g.strength[idx])  # '–' for a self-loop the release's decoder bars
        rows = [html.Tr([html.Td(common.token_label(int(other[e]), token)), html.Td(value)])
                for e, value in zip(idx, shown)]
        return html.Table([html.Tr([html.Th(title), html.Th("strength")]), *rows])

    out_count = int((g.sources == node).sum())
    in_count = int((g.targets == node).sum())
    lines = [html.H4(common.token_label(node, token)),
             html.Div(f"own-row edges: {out_count} out, {in_count} in; "
                      f"shared-row strength from it: {graph.energy_text([g.shared_strength[node]])[0]}"),
             html.Div(f"node bias ‖b‖ = {np.linalg.norm(bias):.5g}: [{', '.join(f'{v:.3g}' for v in bias)}]")]
    lines += [table(g.out_edges(node, DETAIL_K), g.targets, "strongest out-edges"),
              table(g.in_edges(node, DETAIL_K), g.sources, "strongest in-edges")]
    return lines


def step_titles(trace: Trace, token: common.TokenText) -> list[str]:
    """'step i of 0–n: source → target' for every step of a trace, counted from 0 as on every page."""
    return [f"step {i} of 0–{trace.num_steps - 1}: {common.token_label(int(s), token)} → "
            f"{common.token_label(int(t), token)}" for i, (s, t) in enumerate(zip(trace.path[:-1], trace.path[1:]))]


def step_store(g: GraphData, labels: list[str], trace: Trace, token: common.TokenText) -> stepping.Store:
    """Every step of the trace as the graph's layers draw it, with the step titles as labels."""
    frames = graph.step_frames(g, labels, trace.energies.numpy(), trace.path.tolist())
    return stepping.store(step_titles(trace, token), [stepping.layers(ID.graph, frames)])


PAGE = pathview.PathPage(P, [
    Event(Input(ID.graph, "clickData"), node_event),
    Event(Input(ID.k, "value"), k_event, (Output(ID.k, "value"), lambda s: s.graph_k)),
], job=graph_work, cached=cached_graph)


def register(app: Dash, services: Services) -> None:
    """Register the page and its callbacks (stepping runs in the browser: explorer/stepping.py)."""
    dash.register_page(__name__, path=PATH, name=NAME, order=ORDER, layout=layout, title=f"BriLLM · {NAME}")
    pathview.register(app, services, PAGE)
    stepping.register(app, P, [])
    app.clientside_callback(
        ClientsideFunction("graph_layers", "attach"),
        Output(ID.graph, "className"), Input(ID.graph, "figure"), State(ID.graph, "id"))
    app.callback(
        Output(ID.graph, "figure"), Output(ID.drawn, "data"), Output(ID.frame.steps, "data"),
        Output(ID.details, "children"), Output(ID.frame.slider, "max"),
        Output(ID.frame.msg, "children"),
        Input(ID.frame.meta, "data"), Input(ID.graph, "clickData"), Input(ID.k, "value"),
        State(ID.frame.state, "data"), State(ID.drawn, "data"),
        prevent_initial_call=True,
    )(lambda *args: render(services, ctx.triggered_prop_ids, *args))
    app.callback(
        Output(ID.graph, "figure", allow_duplicate=True),
        Input(ID.zoom, "n_clicks"), Input(ID.reset, "n_clicks"),
        State(ID.frame.meta, "data"), State(ID.frame.state, "data"), State(ID.frame.slider, "value"),
        prevent_initial_call=True,
    )(lambda _zoom, _reset, *args: zoom(services, ctx.triggered_id, *args))


def render(services: Services, triggered: Collection[str], meta: Meta | None, click: Any, k: Any,
           state_data: dict | None, drawn: dict | None) -> tuple[Any, ...]:
    """Full figure when the checkpoint or k changes or the path is gone, else a patch of the
    selection; the step store when the trace changes (the browser draws the current step). A
    click or k is read from its event (the reducer updates the state in parallel); ``triggered``
    holds the 'id.property' of the inputs that fired."""
    state, _ = from_dict(state_data or {})
    if f"{ID.graph}.clickData" in triggered:
        state = node_event(state, click, meta or {})
    if f"{ID.k}.value" in triggered:
        state = k_event(state, k, meta or {})
    if not meta or not meta.get("graph_key"):
        errors = pathview.meta_errors(meta)
        figure = common.placeholder(PREPARING if not errors else "No graph: see the message above.", graph.HEIGHT)
        return figure, None, stepping.no_steps(0), [], 1, ui.messages(errors)
    checkpoint = services.registry.load(meta["request"]["model"])
    g = graph_for(services.cache, checkpoint, request_settings(meta))
    labels = [common.token_label(n, checkpoint.token) for n in range(checkpoint.config.vocab_size)]
    mark = state.node if 0 <= state.node < checkpoint.config.vocab_size else -1
    key = {"graph": meta["graph_key"], "k": state.graph_k}
    steps: Any = no_update
    slider_max: Any = no_update
    if f"{ID.frame.meta}.data" in triggered:
        result = pathview.load_path(services, meta)
        steps = stepping.no_steps(0) if result is None else step_store(g, labels, result.trace, checkpoint.token)
        slider_max = max(result.trace.num_steps - 1, 1) if result else 1
    if drawn == key:
        fig: Any = Patch()
        graph.selection_patch(fig, g, mark, DETAIL_K, labels[mark] if mark >= 0 else "")
    else:
        fig = graph.token_graph(g, labels, state.graph_k, mark, DETAIL_K)
    info = details(g, checkpoint, mark) if mark >= 0 else [html.P("Click a node for its details.")]
    return fig, key, steps, info, slider_max, ui.messages(pathview.meta_errors(meta))


def zoom(services: Services, triggered: str | None, meta: Meta | None, state_data: dict | None,
         slider: int | None) -> Patch:
    """Frame the path so far (up to the step on screen), or the whole graph (``triggered``: the button's id)."""
    fig = Patch()
    result = pathview.load_path(services, meta)
    if triggered == ID.reset or result is None:
        fig["layout"]["xaxis"]["range"], fig["layout"]["yaxis"]["range"] = graph.axis_ranges()
        return fig
    state, _ = from_dict({**(state_data or {}), "step": slider or 0})
    step = pathview.clamp_step(state, meta)
    g = graph_for(services.cache, services.registry.load(meta["request"]["model"]), request_settings(meta))
    xr, yr = graph.path_range(g, result.trace.path[: step + 2].tolist())
    fig["layout"]["xaxis"]["range"], fig["layout"]["yaxis"]["range"] = xr, yr
    return fig
