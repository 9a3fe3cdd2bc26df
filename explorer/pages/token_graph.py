"""Token graph: every node and its strongest own edges (WebGL), the path and the energy landscape."""

from __future__ import annotations

from typing import Any

import dash
import numpy as np
from dash import Dash, Input, Output, Patch, State, ctx, dcc, html, no_update

from brillm_core import Checkpoint, DecodeSettings

from .. import components as ui
from .. import pathview
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
    html.P("With a prompt, the path so far is drawn in orange and the nodes are painted with the energy "
           "every node would receive at the current step (the whole-vocabulary landscape). Step with ← and →, "
           "zoom with the mouse or 'Zoom to path', click a node for its strongest edges and bias."),
]


def layout(**_query: Any) -> html.Div:
    """The page's components."""
    return html.Div([
        html.H2(NAME), ui.help_box(HELP), *pathview.page_frame(P), dcc.Store(id=f"{P}-drawn"),
        ui.step_controls(P),
        html.Div([
            ui.labelled("Edges per node", html.Div(dcc.Slider(id=f"{P}-k", min=1, max=MAX_GRAPH_K, step=1, value=3,
                                                              marks={1: "1", 5: "5", 10: "10", MAX_GRAPH_K: "20"}),
                                                   className="k-slider")),
            html.Button("Zoom to path", id=f"{P}-zoom"), html.Button("Whole graph", id=f"{P}-reset"),
        ], className="grid-controls"),
        html.Div([ui.figure_panel(f"{P}-graph", "token graph"), html.Div(id=f"{P}-details", className="node-details")],
                 className="graph-layout"),
    ], className="page")


def graph_work(services: Services, checkpoint: Checkpoint, state: ViewState, progress: Progress) -> Meta:
    """Compute (or read) the layout, then the path."""
    progress(("1", "laying out the graph (once per checkpoint and decoder)…"))
    graph_for(services.cache, checkpoint, settings_of(state))
    key = graph_key(checkpoint, settings_of(state))
    return {"graph_key": key, **pathview.trace_work(services, checkpoint, state, progress)}


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


def details(g: GraphData, checkpoint: Checkpoint, node: int, energies: np.ndarray | None) -> list[Any]:
    """Token, bias, own-edge counts, strongest out and in edges of one node."""
    token = checkpoint.token
    bias = checkpoint.model.node_bias[node, 0].detach().numpy()

    def table(idx: np.ndarray, other: np.ndarray, title: str) -> html.Table:
        shown = graph.energy_text(g.strength[idx], len(idx))  # '–' for a self-loop the release's decoder bars
        rows = [html.Tr([html.Td(common.token_label(int(other[e]), token)), html.Td(value)])
                for e, value in zip(idx, shown)]
        return html.Table([html.Tr([html.Th(title), html.Th("strength")]), *rows])

    out_count = int((g.sources == node).sum())
    in_count = int((g.targets == node).sum())
    lines = [html.H4(common.token_label(node, token)),
             html.Div(f"own-row edges: {out_count} out, {in_count} in; "
                      f"shared-row strength from it: {g.shared_strength[node]:.5g}"),
             html.Div(f"node bias ‖b‖ = {np.linalg.norm(bias):.5g}: [{', '.join(f'{v:.3g}' for v in bias)}]")]
    if energies is not None:
        e = energies[node]
        lines.append(html.Div(f"energy at this step: {'not a candidate' if not np.isfinite(e) else f'{e:.5g}'}"))
    lines += [table(g.out_edges(node, DETAIL_K), g.targets, "strongest out-edges"),
              table(g.in_edges(node, DETAIL_K), g.sources, "strongest in-edges")]
    return lines


def register(app: Dash, services: Services) -> None:
    """Register the page and its callbacks."""
    dash.register_page(__name__, path=PATH, name=NAME, order=ORDER, layout=layout, title=f"BriLLM · {NAME}")
    pathview.register(app, services, pathview.PathPage(P, [
        Event(Input(f"{P}-graph", "clickData"), node_event),
        Event(Input(f"{P}-k", "value"), k_event, (Output(f"{P}-k", "value"), lambda s: s.graph_k)),
    ], job=graph_work))

    @app.callback(
        Output(f"{P}-graph", "figure"), Output(f"{P}-drawn", "data"), Output(f"{P}-details", "children"),
        Output(f"{P}-slider", "max"), Output(f"{P}-step-label", "children"), Output(f"{P}-msg", "children"),
        Output(f"{P}-note", "children", allow_duplicate=True),
        Input(f"{P}-meta", "data"), Input(f"{P}-state", "data"), State(f"{P}-drawn", "data"),
        prevent_initial_call=True,
    )
    def render(meta: Meta | None, state_data: dict | None, drawn: dict | None):
        """Full figure when the checkpoint or k changes; otherwise patch colours, path and marks."""
        state, _ = from_dict(state_data or {})
        if not meta or not meta.get("graph_key"):
            errors = pathview.meta_errors(meta)
            return common.placeholder("Loading…" if not errors else "No graph"), None, [], 1, "", \
                ui.messages(errors), no_update
        checkpoint = services.registry.load(meta["request"]["model"])
        g = graph_for(services.cache, checkpoint, request_settings(meta))
        result = pathview.load_path(services, meta)
        step = pathview.clamp_step(state, meta)
        energies = result.trace.energies[step].numpy() if result else None
        path = result.trace.path[: step + 2].tolist() if result else []
        mark = state.node if 0 <= state.node < checkpoint.config.vocab_size else -1
        key = {"graph": meta["graph_key"], "k": state.graph_k}
        if drawn == key:
            fig = Patch()
            colours = graph.landscape_colours(energies, len(g.positions))
            for name, value in colours.items():
                fig["data"][graph.NODES]["marker"][name] = value
            fig["data"][graph.NODES]["customdata"] = graph.energy_text(energies, len(g.positions))
            px, py = graph.path_xy(g, path)
            fig["data"][graph.PATH_TRACE]["x"], fig["data"][graph.PATH_TRACE]["y"] = px, py
            mx, my = graph.path_xy(g, [mark] if mark >= 0 else [])
            fig["data"][graph.MARKS]["x"], fig["data"][graph.MARKS]["y"] = mx, my
        else:
            labels = [common.token_label(n, checkpoint.token) for n in range(checkpoint.config.vocab_size)]
            fig = graph.token_graph(g, labels, state.graph_k, energies, path, mark)
        label = ""
        if result:
            s = result.trace.step(step)
            label = (f"step {step + 1} of {result.trace.num_steps}: "
                     f"{common.token_label(s.source, checkpoint.token)} → {common.token_label(s.target, checkpoint.token)}")
        info = details(g, checkpoint, mark, energies) if mark >= 0 else [html.P("Click a node for its details.")]
        slider_max = max(result.trace.num_steps - 1, 1) if result else 1
        return fig, key, info, slider_max, label, ui.messages(pathview.meta_errors(meta)), ""

    @app.callback(
        Output(f"{P}-graph", "figure", allow_duplicate=True),
        Input(f"{P}-zoom", "n_clicks"), Input(f"{P}-reset", "n_clicks"),
        State(f"{P}-meta", "data"), State(f"{P}-state", "data"),
        prevent_initial_call=True,
    )
    def zoom(_zoom, _reset, meta, state_data):
        """Frame the path so far, or the whole graph."""
        fig = Patch()
        result = pathview.load_path(services, meta)
        if ctx.triggered_id == f"{P}-reset" or result is None:
            fig["layout"]["xaxis"]["autorange"] = True
            fig["layout"]["yaxis"]["autorange"] = True
            return fig
        state, _ = from_dict(state_data or {})
        step = pathview.clamp_step(state, meta)
        g = graph_for(services.cache, services.registry.load(meta["request"]["model"]), request_settings(meta))
        xr, yr = graph.path_range(g, result.trace.path[: step + 2].tolist())
        fig["layout"]["xaxis"]["range"], fig["layout"]["yaxis"]["range"] = xr, yr
        return fig
