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
           "the targets of its strongest edges, so what a token tends to lead to lies around it; nodes are kept "
           "apart so that none hides another. Tokens with no own edge to another token (unused pieces) have "
           "nothing to be placed by: they are set aside in a block below the graph, under a caption."),
    html.P("With a prompt, the path so far is drawn as orange arrows numbered by step, and the nodes are "
           "painted with the energy every node would receive at the current step (the whole-vocabulary "
           "landscape; hover a node for its exact energy and its difference to the step's best). Every node "
           "of the path so far is labelled, then the step's highest-energy nodes and the tokens with the most "
           "own edges, as many as fit without overlapping: zoom in and more get a label. "
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
    selection, edges = f"{P}-selection", f"{P}-edges"


def layout(**_query: Any) -> html.Div:
    """The page's components."""
    return html.Div([
        html.H2(NAME), ui.help_box(HELP), *pathview.page_frame(P), dcc.Store(id=ID.drawn),
        dcc.Store(id=ID.selection), dcc.Store(id=ID.edges),
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


def clicked_node(click: Any) -> int | None:
    """The node a graph click names (the layers send it as plotly would), or None."""
    try:
        point = click["points"][0]
        return int(point["pointIndex"]) if point.get("curveNumber") == graph.NODES else None
    except (TypeError, KeyError, IndexError, ValueError, AttributeError):
        return None


def node_event(state: ViewState, click: Any, _meta: Meta) -> ViewState:
    """A click on a node selects it."""
    node = clicked_node(click)
    return state if node is None else state.with_(node=node)


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


def step_store(g: GraphData, trace: Trace, token: common.TokenText) -> stepping.Store:
    """Every step of the trace as the graph's layers draw it, with the step titles as labels."""
    frames = graph.step_frames(g, trace.energies.numpy(), trace.path.tolist())
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
    # the edges-per-node slider, when it asks for another k than the figure's (the reducer writes it back
    # on every event: a click would otherwise cost a request and hold back the drawing of its answer)
    app.clientside_callback(
        ClientsideFunction("graph_layers", "another_k"),
        Output(ID.edges, "data"), Input(ID.k, "value"), State(ID.drawn, "data"), prevent_initial_call=True)
    app.callback(
        Output(ID.graph, "figure"), Output(ID.drawn, "data"), Output(ID.frame.steps, "data"),
        Output(ID.selection, "data"), Output(ID.details, "children"), Output(ID.frame.slider, "max"),
        Output(ID.frame.msg, "children"),
        Input(ID.frame.meta, "data"), Input(ID.edges, "data"),
        State(ID.frame.state, "data"), State(ID.drawn, "data"),
        prevent_initial_call=True,
    )(lambda *args: render(services, ctx.triggered_prop_ids, *args))
    # a click waits for nothing else (the reducer writes the node into the state and the link meanwhile),
    # and its answer is drawn by the layers at once; the legend names follow (assets/graph_layers.js)
    app.callback(
        Output(ID.selection, "data", allow_duplicate=True), Output(ID.details, "children", allow_duplicate=True),
        Input(ID.graph, "clickData"), State(ID.frame.meta, "data"), State(ID.drawn, "data"),
        prevent_initial_call=True,
    )(lambda *args: select(services, *args))
    app.clientside_callback(
        ClientsideFunction("graph_layers", "select"),
        Output(ID.graph, "figure", allow_duplicate=True), Input(ID.selection, "data"), State(ID.graph, "figure"),
        State(ID.graph, "id"), prevent_initial_call=True)
    app.callback(
        Output(ID.graph, "figure", allow_duplicate=True),
        Input(ID.zoom, "n_clicks"), Input(ID.reset, "n_clicks"),
        State(ID.frame.meta, "data"), State(ID.frame.state, "data"), State(ID.frame.slider, "value"),
        prevent_initial_call=True,
    )(lambda _zoom, _reset, *args: zoom(services, ctx.triggered_id, *args))


def render(services: Services, triggered: Collection[str], meta: Meta | None, k: Any,
           state_data: dict | None, drawn: dict | None) -> tuple[Any, ...]:
    """Full figure when the checkpoint or k changes or the path is gone, the step store and the
    selection when the trace changes (the browser draws the current step). k is read from its
    event (the reducer updates the state in parallel); ``triggered`` holds the 'id.property' of
    the inputs that fired."""
    state, _ = from_dict(state_data or {})
    if f"{ID.edges}.data" in triggered:
        state = k_event(state, k, meta or {})
    if not meta or not meta.get("graph_key"):
        errors = pathview.meta_errors(meta)
        figure = common.placeholder(PREPARING if not errors else "No graph: see the message above.", graph.HEIGHT)
        return figure, None, stepping.no_steps(0), None, [], 1, ui.messages(errors)
    key = {"graph": meta["graph_key"], "k": state.graph_k}
    new_result = f"{ID.frame.meta}.data" in triggered
    if drawn == key and not new_result:
        return (no_update,) * 7
    checkpoint = services.registry.load(meta["request"]["model"])
    g = graph_for(services.cache, checkpoint, request_settings(meta))
    mark = state.node if 0 <= state.node < checkpoint.config.vocab_size else -1
    steps: Any = no_update
    slider_max: Any = no_update
    if new_result:
        result = pathview.load_path(services, meta)
        steps = stepping.no_steps(0) if result is None else step_store(g, result.trace, checkpoint.token)
        slider_max = max(result.trace.num_steps - 1, 1) if result else 1
    fig: Any = no_update
    if drawn != key:
        labels = [common.token_label(n, checkpoint.token) for n in range(checkpoint.config.vocab_size)]
        fig = graph.token_graph(g, labels, state.graph_k, mark)
    return (fig, key, steps, graph.selection(g, mark, DETAIL_K, node_label(checkpoint, mark)),
            node_details(g, checkpoint, mark), slider_max, ui.messages(pathview.meta_errors(meta)))


def select(services: Services, click: Any, meta: Meta | None, drawn: dict | None) -> tuple[Any, Any]:
    """A clicked node's selection and details, in one request."""
    node = clicked_node(click)
    if node is None or not meta or not meta.get("graph_key") or not drawn or drawn.get("graph") != meta["graph_key"]:
        return no_update, no_update
    checkpoint = services.registry.load(meta["request"]["model"])
    if not 0 <= node < checkpoint.config.vocab_size:
        return no_update, no_update
    g = graph_for(services.cache, checkpoint, request_settings(meta))
    return graph.selection(g, node, DETAIL_K, node_label(checkpoint, node)), node_details(g, checkpoint, node)


def node_label(checkpoint: Checkpoint, node: int) -> str:
    """A node's label ('' for none)."""
    return common.token_label(node, checkpoint.token) if node >= 0 else ""


def node_details(g: GraphData, checkpoint: Checkpoint, node: int) -> list[Any]:
    """The side panel: a node's details, or how to get them."""
    return details(g, checkpoint, node) if node >= 0 else [html.P("Click a node for its details.")]


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
