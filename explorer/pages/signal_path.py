"""Signal path: the prompt's path step by step, candidate energies, memory, signal; re-route."""

from __future__ import annotations

from typing import Any

import dash
from dash import Dash, Input, Output, dcc, html, no_update

from brillm_core import BriLLMError

from .. import components as ui
from .. import pathview, stepping
from ..compute import PathResult
from ..context import Services
from ..figures import common, signal
from ..pathview import Event, Meta
from ..state import ViewState

NAME, PATH, ORDER = "Signal path", "/", 0
P = "sp"
TOP_K = 12
FLAGSHIP = "kjv-final"  # the landing page opens it (when it is listed) with a ready example and its trace
EXAMPLE = "And God said, Let there be"
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




class ID:
    """The page's component ids, defined once."""

    frame = ui.frame_ids(P)
    energy, memory, heat = f"{P}-energy", f"{P}-memory", f"{P}-heat"
    click = f"{P}-click"  # the last click on a candidate bar, relayed (see ``register``)
    chips, original, reroute_box, undo, empty = (f"{P}-chips", f"{P}-original", f"{P}-reroute-box", f"{P}-undo",
                                                 f"{P}-empty")


FIGURES = [ID.energy, ID.heat]  # plotly charts; the memory ribbon is drawn as page elements into ID.memory
EMPTY = "Type a prompt and press Generate: the path, its candidate energies, memory and signal appear here."
# What the charts show until the first trace arrives (they are hidden then): plotly draws a graph as it mounts,
# and an empty figure's default axes took it twice as long as none, on every opened link.
BLANK = {"data": [], "layout": {"xaxis": {"visible": False}, "yaxis": {"visible": False}}}


def layout(**_query: Any) -> html.Div:
    """The page's components."""
    return html.Div([
        html.H2(NAME), ui.help_box(HELP), *pathview.page_frame(P), *stepping.components(P, len(FIGURES)),
        html.P(EMPTY, id=ID.empty, className="empty-state"), dcc.Store(id=ID.click), pathview.render_store(P),
        html.Div([
            html.Div(id=ID.chips, className="chips"),
            html.Div([html.Div(id=ID.original, className="chips original"),
                      html.Button("Undo last re-route", id=ID.undo, className="undo")],
                     id=ID.reroute_box, style={"display": "none"}),
            ui.step_controls(P),
            html.Div([ui.figure_panel(ID.energy, "candidate energies", figure=BLANK),
                      html.Div(id=ID.memory, className="ribbon")], className="grid2"),
            ui.figure_panel(ID.heat, "signal heatmap", figure=BLANK),
            ui.export_row(P, [("csv", "Steps CSV"), ("json", "Trace JSON (with view state)")]),
        ], id=ID.frame.views, style={"display": "none"}),
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


def chip_classes(result: PathResult, rerouted: dict[int, str]) -> list[str]:
    """The class of each path chip: prompt (forced), generated or re-routed (the browser marks the current edge)."""
    trace = result.trace
    return ["chip " + ("prompt" if i == 0 or (bool(trace.forced[i - 1]) and i - 1 not in rerouted)
                       else "rerouted" if i - 1 in rerouted else "generated")
            for i in range(trace.num_steps + 1)]


def chips(result: PathResult, token: Any, classes: list[str]) -> list[html.Button]:
    """One chip per path node (the token's decoded text; node id and raw token on hover)."""
    return [html.Button(common.show_token(token(node)), id={"type": ID.frame.chip, "index": i}, className=cls,
                        title=common.token_hover(node, token))
            for i, (node, cls) in enumerate(zip(result.trace.path.tolist(), classes))]


def rerouted_steps(result: PathResult, reroutes: list[list[int]]) -> dict[int, str]:
    """Steps whose node the user chose by re-routing (still taken on the path shown), labelled as such."""
    path = result.trace.path.tolist()
    return {s: signal.REROUTED_HOW for s, node in reroutes if s + 1 < len(path) and path[s + 1] == node}


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


def step_label(result: PathResult, step: int, token: Any, how: str = "") -> str:
    """'step i of 0–n: a → b (chosen; rank r, p = ...)', steps counted from 0 as in every chart and export."""
    s = result.trace.step(step)
    how = how or (signal.FORCED_HOW if s.forced else signal.CHOSEN_HOW)
    return (f"step {step} of 0–{result.trace.num_steps - 1}: {common.token_label(s.source, token)} → "
            f"{common.token_label(s.target, token)} ({how}; rank {s.chosen_rank}, p = {s.chosen_probability:.4g})")


def step_store(result: PathResult, token: Any, reroutes: list[list[int]]) -> stepping.Store:
    """Every step of the trace as the browser draws it: labels, candidate bars, memory ribbon, heatmap cursor."""
    trace = result.trace
    how = rerouted_steps(result, reroutes)
    return stepping.store(
        [step_label(result, i, token, how.get(i, "")) for i in range(trace.num_steps)],
        [stepping.frames(signal.energy_base(), signal.energy_frames(trace, token, TOP_K, how)),
         stepping.ribbon(ID.memory, signal.memory_steps(trace, token)),
         stepping.cursor(ID.heat, signal.signal_heatmap(trace), signal.heat_frames(trace))],
        chip_classes(result, how))


RENDERED = [(ID.frame.steps, "data"), (ID.chips, "children"), (ID.original, "children"), (ID.reroute_box, "style"),
            (ID.frame.slider, "max"), (ID.frame.msg, "children"), (ID.empty, "style")]


def register(app: Dash, services: Services) -> None:
    """Register the page, and wire the shared reducer and job, its render and its export to its ids."""
    dash.register_page(__name__, path=PATH, name=NAME, order=ORDER, layout=layout, title=f"BriLLM · {NAME}")
    pathview.register_export(app, P, "signal-path", lambda meta, _state: export_data(services, meta),
                             "brillm-steps.csv", "brillm-trace.json", steps=True)
    pathview.register(app, services, PAGE)
    stepping.register(app, P, FIGURES)
    # Bar clicks reach the reducer through a store: Dash holds back a callback until the graphs among its
    # inputs have loaded plotly.js, and a reopened link's reducer need not wait for that (it loads meanwhile).
    app.clientside_callback("function (click) { return click; }", Output(ID.click, "data"),
                            Input(ID.energy, "clickData"), prevent_initial_call=True)


def render(services: Services, meta: Meta | None) -> tuple[Any, ...]:
    """Once per trace: its step store (the browser draws each step from it), chips, messages and the empty
    state's style (order of ``RENDERED``)."""
    hidden, shown = {"display": "none"}, {}
    try:
        result = pathview.load_path(services, meta)
    except BriLLMError as exc:  # the checkpoint was removed or corrupted since the job ran
        return stepping.no_steps(len(FIGURES)), [], [], hidden, 1, ui.messages([str(exc)]), shown
    if result is None:
        return (stepping.no_steps(len(FIGURES)), [], [], hidden, 1, ui.messages(pathview.meta_errors(meta)),
                shown)
    trace = result.trace
    token = services.registry.identity(meta["request"]["model"]).token  # its weights need not be loaded here
    store = step_store(result, token, meta["request"].get("reroutes", []))
    warnings = [f"{len(trace.unknown)} piece(s) of the prompt map to the unknown node: "
                + ", ".join(repr(u.get("text", "")) for u in trace.unknown[:10])] if trace.unknown else []
    return (store, chips(result, token, store["chips"]), original_chips(result),
            {"display": "flex"} if result.original is not None else hidden, max(trace.num_steps - 1, 1),
            ui.messages([], warnings), hidden)


PAGE = pathview.PathPage(P, [Event(Input(ID.click, "data"), reroute_event),
                             Event(Input(ID.undo, "n_clicks"), undo_event)], needs_prompt=True,
                             default_model=FLAGSHIP, default_prompt=EXAMPLE, holds_unknown=True,
                             cached=pathview.cached_trace, render=pathview.Render(RENDERED, render))


def export_data(services: Services, meta: Meta) -> tuple[Any, dict[str, Any]] | None:
    """The steps table, and the trace (with the one before re-routing) for the JSON export."""
    result = pathview.load_path(services, meta)
    if result is None:
        return None
    return result.trace.to_frame(), {"trace": result.trace.to_dict(),
                                     "original": result.original.to_dict() if result.original is not None else None}
