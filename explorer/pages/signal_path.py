"""Signal path: the prompt's path step by step, candidate energies, memory, signal; re-route."""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Dash, Input, Output, ctx, html, no_update

from .. import components as ui
from .. import pathview
from ..compute import PathResult
from ..context import Services
from ..figures import common, signal
from ..pathview import Event, Meta
from ..state import ViewState, from_dict

NAME, PATH, ORDER = "Signal path", "/", 0
P = "sp"
TOP_K = 12
HELP = [
    html.P("A path starts at the prompt's first token. At each step the signal arriving at the current node "
           "is multiplied by the matrix of every outgoing edge; the energy of a candidate is the norm of that "
           "edge's output, and the next node is the one with the most energy (greedy) or a sample."),
    html.P("Prompt steps are teacher-forced (grey): the model's energies are shown, but the prompt decides. "
           "Click a candidate bar to re-route the path through it; everything after that step is recomputed "
           "exactly. The memory ribbon shows which earlier outputs make up this step's signal, with their exact "
           "weights (they depend on positions only). Keys ← and → step; the link in the address bar reopens "
           "this exact view."),
]


def layout(**_query: Any) -> html.Div:
    """The page's components."""
    return html.Div([
        html.H2(NAME), ui.help_box(HELP), *pathview.page_frame(P),
        html.Div(id=f"{P}-chips", className="chips"),
        html.Div([html.Div(id=f"{P}-original", className="chips original"),
                  html.Button("Undo last re-route", id=f"{P}-undo", className="undo")],
                 id=f"{P}-reroute-box", style={"display": "none"}),
        ui.step_controls(P),
        html.Div([ui.figure_panel(f"{P}-energy", "candidate energies"),
                  ui.figure_panel(f"{P}-memory", "memory ribbon")], className="grid2"),
        ui.figure_panel(f"{P}-heat", "signal heatmap"),
        ui.export_row(P, [("csv", "Steps CSV"), ("json", "Trace JSON (with view state)")]),
    ], className="page")


def reroute_event(state: ViewState, click: Any, meta: Meta) -> ViewState:
    """A click on a candidate bar forces that node at the current step."""
    try:
        node = int(click["points"][0]["customdata"][0])
    except (TypeError, KeyError, IndexError, ValueError):
        return state
    step = pathview.clamp_step(state, meta)
    path = meta.get("path") or []
    if step + 1 < len(path) and path[step + 1] == node:
        return state
    return state.with_(reroutes=[*state.reroutes, (step, node)])


def undo_event(state: ViewState, _clicks: Any, _meta: Meta) -> ViewState:
    """Drop the last re-route."""
    return state.with_(reroutes=list(state.reroutes[:-1]))


def chip_event(state: ViewState, _clicks: Any, meta: Meta) -> ViewState:
    """A click on token chip i shows the step that arrived at it."""
    if not ctx.triggered or not ctx.triggered[0]["value"] or not isinstance(ctx.triggered_id, dict):
        return state
    return state.with_(step=max(int(ctx.triggered_id["index"]) - 1, 0))


def chips(result: PathResult, step: int) -> list[html.Button]:
    """One chip per path node: prompt (forced) or generated; the current edge highlighted."""
    trace = result.trace
    out = []
    for i, node in enumerate(trace.path.tolist()):
        kind = "prompt" if i == 0 or bool(trace.forced[i - 1]) else "generated"
        if i == step:
            kind += " source"
        elif i == step + 1:
            kind += " target"
        out.append(html.Button(common.show_token(trace.tokens[i] if trace.tokens else str(node)),
                               id={"type": f"{P}-chip", "index": i}, className=f"chip {kind}",
                               title=f"node {node}"))
    return out


def original_chips(result: PathResult) -> list[Any]:
    """The path before re-routing, from the first re-routed step on."""
    if result.original is None:
        return []
    before, after = result.original.path.tolist(), result.trace.path.tolist()
    tokens = result.original.tokens or [str(n) for n in before]
    items: list[Any] = [html.Span("Before re-routing: ", className="label")]
    for i, node in enumerate(before):
        changed = i >= len(after) or after[i] != node
        items.append(html.Span(common.show_token(tokens[i]), className="chip old" + (" changed" if changed else "")))
    return items


def step_label(result: PathResult, step: int, token: Any) -> str:
    """'step i of n: a → b, chosen, rank r, p = ...'."""
    s = result.trace.step(step)
    how = "forced by the prompt" if s.forced else "chosen"
    return (f"step {step + 1} of {result.trace.num_steps}: {common.token_label(s.source, token)} → "
            f"{common.token_label(s.target, token)} ({how}; rank {s.chosen_rank}, p = {s.chosen_probability:.4g})")


def register(app: Dash, services: Services) -> None:
    """Register the page, its state machinery and its callbacks."""
    dash.register_page(__name__, path=PATH, name=NAME, order=ORDER, layout=layout, title=f"BriLLM · {NAME}")
    pathview.register_export(app, P, "signal-path", lambda meta, _state: export_data(services, meta),
                             "brillm-steps.csv", "brillm-trace.json")
    pathview.register(app, services, pathview.PathPage(P, [
        Event(Input(f"{P}-energy", "clickData"), reroute_event),
        Event(Input(f"{P}-undo", "n_clicks"), undo_event),
        Event(Input({"type": f"{P}-chip", "index": ALL}, "n_clicks"), chip_event),
    ]))

    @app.callback(
        Output(f"{P}-chips", "children"), Output(f"{P}-original", "children"),
        Output(f"{P}-reroute-box", "style"), Output(f"{P}-energy", "figure"), Output(f"{P}-memory", "figure"),
        Output(f"{P}-heat", "figure"), Output(f"{P}-slider", "max"), Output(f"{P}-step-label", "children"),
        Output(f"{P}-msg", "children"), Output(f"{P}-note", "children", allow_duplicate=True),
        Input(f"{P}-meta", "data"), Input(f"{P}-state", "data"),
        prevent_initial_call=True,
    )
    def render(meta: Meta | None, state_data: dict | None):
        """Draw the current step of the current trace."""
        state, _ = from_dict(state_data or {})
        empty = common.placeholder("Type a prompt and press Generate.")
        try:
            result = pathview.load_path(services, meta)
        except Exception as exc:  # noqa: BLE001 - a failed reload must not break the page
            return [], [], {"display": "none"}, empty, empty, empty, 1, "", ui.messages([str(exc)]), ""
        if result is None:
            errors = pathview.meta_errors(meta)
            return [], [], {"display": "none"}, empty, empty, empty, 1, "", ui.messages(errors), no_update
        trace = result.trace
        token = services.registry.load(meta["request"]["model"]).token
        step = pathview.clamp_step(state, meta)
        warnings = [f"{len(trace.unknown)} piece(s) of the prompt map to the unknown node: "
                    + ", ".join(repr(u.get("text", "")) for u in trace.unknown[:10])] if trace.unknown else []
        return (chips(result, step), original_chips(result),
                {"display": "flex"} if result.original is not None else {"display": "none"},
                signal.energy_bars(trace, step, token, TOP_K), signal.memory_ribbon(trace, step, token),
                signal.signal_heatmap(trace, step), max(trace.num_steps - 1, 1), step_label(result, step, token),
                ui.messages([], warnings), "")


def export_data(services: Services, meta: Meta) -> tuple[Any, dict[str, Any]] | None:
    """The steps table, and the trace (with the one before re-routing) for the JSON export."""
    result = pathview.load_path(services, meta)
    if result is None:
        return None
    return result.trace.to_frame(), {"trace": result.trace.to_dict(),
                                     "original": result.original.to_dict() if result.original is not None else None}
