"""Compare checkpoints: two checkpoints of one vocabulary on one prompt, their paths, divergence and edge changes."""

from __future__ import annotations

import json
from typing import Any

import dash
import pandas as pd
from dash import Dash, Input, Output, State, ctx, dash_table, dcc, html, no_update
from dash.dash_table.Format import Format, Scheme

from brillm_core import (BriLLMError, Checkpoint, PathComparison, Trace, check_same_vocabulary, compare_paths,
                         edge_changes, loss_history)

from .. import components as ui
from .. import pathview, stepping
from ..cache import ResultCache, cache_key
from ..compute import settings_of
from ..context import Services
from ..figures import common
from ..figures import compare as figs
from ..pathview import FORM, Meta
from ..state import ViewState, export_document, from_dict, from_hash, to_dict, to_hash

NAME, PATH, ORDER = "Compare", "/compare", 3
P = "cp"
FIGURES = [f"{P}-ranks", f"{P}-js"]
TOP_EDGES = 50
NUMBER = Format(precision=5, scheme=Scheme.decimal_or_exponent)
NUMERIC = ("weight_change", "bias_change")
EDGE_COLUMNS = ["source", "source_token", "target", "target_token", "weight_change", "bias_change",
                "own_row_change", "row_a", "row_b"]
HELP = [
    html.P("Two checkpoints of one vocabulary continue the same prompt with the same decoding settings. The chips "
           "show both paths; the first step where they choose different nodes is outlined in red."),
    html.P("The charts score A's path under both models: B is teacher-forced along A's path, so at every step both "
           "see the same history. Rank 1 means the node got the most energy. The Jensen-Shannon divergence (in "
           "bits, 0 = same distribution, 1 = disjoint) compares the two next-node distributions at each step."),
    html.P("The table lists the edges whose parameters changed most from A to B: the Frobenius norm of the change "
           "of the edge's matrix and the norm of its bias change (edges without a row of their own read the shared "
           "row 0, listed once). 'gained' marks an edge that has its own row in B but read the shared row in A. "
           "Loss curves come from each checkpoint's metadata.json. The link in the address bar reopens this view."),
]


def layout(**_query: Any) -> html.Div:
    """The page's components."""
    picker_b = ui.labelled("Checkpoint B", dcc.Dropdown(id=f"{P}-model-b", clearable=False, className="model-picker"))
    return html.Div([
        html.H2(NAME), ui.help_box(HELP), *pathview.stores(P),
        ui.message_box(f"{P}-msg-state"), ui.message_box(f"{P}-msg"),
        ui.prompt_row(P, "Compare"),
        html.Div([picker_b, html.Button("Swap A and B", id=f"{P}-swap")], className="controls"),
        ui.settings_panel(P), ui.progress_row(P), html.Div(id=f"{P}-note", className="note"),
        *stepping.components(P, len(FIGURES)),
        html.Div([
            html.Div(id=f"{P}-paths"),
            html.P(id=f"{P}-divergence", className="divergence"),
            ui.step_controls(P),
            html.Div([ui.figure_panel(f"{P}-ranks", "rank and probability"),
                      ui.figure_panel(f"{P}-js", "JS divergence")], className="grid2"),
        ], id=f"{P}-views", style={"display": "none"}),
        html.H3("Edges whose parameters changed most"),
        dash_table.DataTable(
            id=f"{P}-edges", page_size=15, sort_action="native",
            columns=edge_columns(EDGE_COLUMNS),
            style_cell={"fontFamily": "ui-monospace, monospace", "fontSize": "0.85em"},
            style_data_conditional=[{"if": {"filter_query": "{own_row_change} = gained"}, "backgroundColor": "#e8f5e9"},
                                    {"if": {"filter_query": "{own_row_change} = lost"}, "backgroundColor": "#ffebee"}]),
        ui.figure_panel(f"{P}-loss", "training loss"),
        ui.export_row(P, [("csv", "Steps CSV"), ("edges-csv", "Edges CSV"),
                          ("json", "Comparison JSON (with view state)")]),
    ], className="page")


def edge_columns(names: list[str]) -> list[dict[str, Any]]:
    """DataTable columns with readable headers."""
    return [{"name": figs.HEADERS[c], "id": c, **({"type": "numeric", "format": NUMBER} if c in NUMERIC else {})}
            for c in names]


def shown_edge_columns(records: list[dict[str, Any]]) -> list[str]:
    """The edge table's columns; the own-row column only when some edge gained or lost its own row."""
    return [c for c in EDGE_COLUMNS if c != "own_row_change" or any(r.get(c) for r in records)]


def parse_hash(url: str | None) -> tuple[ViewState, str, list[str]]:
    """The view state, checkpoint B's name and warnings from a URL hash."""
    state, warnings = from_hash(url)
    return state, state.model_b, warnings


def compare_hash(state: ViewState, model_b: str) -> str:
    """The URL hash of a state and checkpoint B."""
    return to_hash(state.with_(model_b=model_b)) or "#"


def resolve_b(model_b: str, model_a: str, names: list[str]) -> tuple[str, list[str]]:
    """An allow-listed name for B: as asked, else the first checkpoint other than A (with a message if asked)."""
    if model_b in names:
        return model_b, []
    other = next((n for n in names if n != model_a), model_a)
    if not model_b:
        return other, []
    shown = model_b if len(model_b) <= 60 else model_b[:60] + "..."
    return other, [f"The link names checkpoint B {shown!r}, which is not in the configured model folders; "
                   f"showing {other or 'nothing'} instead."]


def request_of(state: ViewState, model_b: str) -> dict[str, Any]:
    """What a comparison depends on."""
    return {**state.request(), "model_b": model_b}


def comparison_for(cache: ResultCache, a: Checkpoint, b: Checkpoint, state: ViewState) -> PathComparison:
    """Cached ``compare_paths`` on the state's prompt and settings."""
    key = cache_key("compare", f"{a.model_id}+{b.model_id}", state.request())
    return cache.get_or_compute(key, lambda: compare_paths(a, b, state.prompt, settings_of(state)))


def edges_for(cache: ResultCache, a: Checkpoint, b: Checkpoint) -> pd.DataFrame:
    """Cached ``edge_changes`` (the TOP_EDGES largest)."""
    key = cache_key("edge-changes", f"{a.model_id}+{b.model_id}", {"top": TOP_EDGES})
    return cache.get_or_compute(key, lambda: edge_changes(a.model, b.model, TOP_EDGES))


def path_chips(trace: Trace, first: int | None, label: str, colour: str, token: Any, offset: int) -> html.Div:
    """One model's path as chips (ids from ``offset`` on), the node chosen at the first divergent step outlined."""
    items: list[Any] = [html.Span(label, className="label", style={"color": colour})]
    for i, cls in enumerate(chip_classes(trace, first)):
        note = f"; first divergence (step {first})" if "diverge" in cls else ""
        items.append(html.Span(common.show_token(token(int(trace.path[i]))), className=cls,
                               id={"type": f"{P}-chip", "index": offset + i},
                               title=common.token_hover(int(trace.path[i]), token) + note))
    return html.Div(items, className="chips")


def chip_classes(trace: Trace, first: int | None) -> list[str]:
    """The class of each chip of a path: prompt or generated, the node chosen at the first divergence outlined."""
    return ["chip " + ("prompt" if i == 0 or bool(trace.forced[i - 1]) else "generated")
            + (" diverge" if first is not None and i == first + 1 else "") for i in range(trace.num_steps + 1)]


def step_labels(frame: pd.DataFrame, token: Any) -> list[str]:
    """'step i of 0–n: A takes x; A: rank r, p; B: rank r', p'' per step of A's path."""
    last = len(frame) - 1
    return [f"step {int(r.step)} of 0–{last}: A takes {common.token_label(int(r.target_a), token)}; "
            f"A: rank {int(r.rank_a)}, p = {r.probability_a:.3g}; B: rank {int(r.rank_b)}, p = {r.probability_b:.3g}"
            for r in frame.itertuples()]


def step_store(comparison: PathComparison, frame: pd.DataFrame, token: Any) -> stepping.Store:
    """Both charts with a cursor per step, the labels, and the classes of both paths' chips (A's chips first)."""
    first = comparison.first_divergence
    ranks = figs.rank_probability(frame, first).to_plotly_json()
    js = figs.js_bars(frame, first).to_plotly_json()
    steps = len(frame)
    return stepping.store(step_labels(frame, token),
                          [stepping.cursor(f"{P}-ranks", ranks, stepping.cursor_frames(ranks, steps)),
                           stepping.cursor(f"{P}-js", js, stepping.cursor_frames(js, steps))],
                          chip_classes(comparison.trace_a, first) + chip_classes(comparison.trace_b, first),
                          [0, comparison.trace_a.num_steps + 1])


def divergence_text(comparison: PathComparison, token: Any) -> str:
    """Where the two paths first part, in words."""
    first = comparison.first_divergence
    if first is None:
        return f"The two paths agree on all {comparison.trace_a.num_steps} steps."
    a, b = comparison.trace_a.step(first), comparison.trace_b.step(first)
    return (f"The paths diverge first at step {first}: from {common.token_label(a.source, token)} A takes "
            f"{common.token_label(a.target, token)}, B takes {common.token_label(b.target, token)}.")


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN -> null, full float precision)."""
    return json.loads(frame.to_json(orient="records", double_precision=15))


def register(app: Dash, services: Services) -> None:
    """Register the page, its reducer, its background job and its views."""
    dash.register_page(__name__, path=PATH, name=NAME, order=ORDER, layout=layout, title=f"BriLLM · {NAME}")
    form_ids = [f"{P}-{f}" for f in FORM]

    @app.callback(
        output={"state": Output(f"{P}-state", "data"), "request": Output(f"{P}-request", "data"),
                "hash": Output(f"{P}-url", "hash"), "a": Output(f"{P}-model", "value"),
                "b": Output(f"{P}-model-b", "value"), "options": Output(f"{P}-model", "options"),
                "options_b": Output(f"{P}-model-b", "options"), "form": [Output(i, "value") for i in form_ids],
                "msg": Output(f"{P}-msg-state", "children"), "slider": Output(f"{P}-slider", "value"),
                "locked": [Output(f"{P}-prompt", "disabled"), Output(f"{P}-go", "disabled")]},
        inputs={"url": Input(f"{P}-url", "hash"), "go": Input(f"{P}-go", "n_clicks"),
                "submit": Input(f"{P}-prompt", "n_submit"), "a": Input(f"{P}-model", "value"),
                "b": Input(f"{P}-model-b", "value"), "swap": Input(f"{P}-swap", "n_clicks"),
                "cancel": Input(f"{P}-cancel", "n_clicks"), "meta": State(f"{P}-meta", "data"),
                "step": State(f"{P}-slider", "value"),
                "current": State(f"{P}-state", "data"), "form": [State(i, "value") for i in form_ids]},
    )
    def reduce(url, a, b, current, form, meta, step, **_clicks):
        """Every user event -> one new (state, checkpoint B), written to the stores and the URL hash."""
        trigger = ctx.triggered_id
        names = services.registry.names()
        out: dict[str, Any] = {k: no_update for k in ("state", "request", "hash", "a", "b", "options", "options_b",
                                                      "msg", "slider")}
        out["form"] = [no_update] * len(form_ids)
        out["locked"] = [no_update] * 2
        # the step on screen is moved in the browser
        old = (from_dict({**current["view"], "step": step or 0})[0], current["model_b"]) if current else None
        if old is None or trigger == f"{P}-url":
            state, model_b, warnings = parse_hash(url)
            if old is not None and compare_hash(state, model_b) == compare_hash(*old):
                return out
            state, more = pathview.resolve_model(state, names, pathview.stand_in(services, state, names))
            model_b, more_b = resolve_b(model_b, state.model, names)
            options = [{"label": n, "value": n} for n in names]
            out.update(form=pathview.form_values(state), options=options, options_b=options, a=state.model,
                       b=model_b, msg=ui.messages([], warnings + more + more_b), locked=[False, False],
                       slider=state.step)
        elif trigger == f"{P}-cancel":
            # the job stopped: the form, both pickers and the link show what is on screen again
            state = pathview.shown_state(old[0].with_(model_b=old[1]), meta)
            model_b = state.model_b if meta else old[1]
            out.update(form=pathview.form_values(state), a=state.model, b=model_b)
        elif trigger in (f"{P}-go", f"{P}-prompt"):
            (state, warnings), model_b = pathview.apply_form(old[0], form), old[1]
            out["msg"] = ui.messages([], warnings)
        elif trigger == f"{P}-swap":
            state, model_b = old[0].with_(model=old[1]), old[0].model
            out.update(a=state.model, b=model_b)
        else:
            state = old[0].with_(model=a) if trigger == f"{P}-model" and a in names else old[0]
            model_b = b if trigger == f"{P}-model-b" and b in names else old[1]
        request = request_of(state, model_b)
        if trigger != f"{P}-cancel" and (old is None or request != request_of(*old)):
            out["request"] = {**request, "settings": pathview.settings(state.with_(model_b=model_b))}
        out.update(state={"view": to_dict(state), "model_b": model_b}, hash=compare_hash(state, model_b))
        return out

    stepping.register_keys(app, P)
    stepping.register(app, P, FIGURES)

    @pathview.background_job(app, P)
    def job(set_progress, request):
        """Load both checkpoints, check the vocabularies, compare the paths and the edges."""
        state, _ = from_dict(request or {})
        meta: Meta = {"request": request, "error": "", "edge_error": ""}
        try:
            set_progress(("0", "loading both checkpoints…"))
            a, b = services.registry.load(state.model), services.registry.load(request["model_b"])
            check_same_vocabulary(a, b)
            if state.prompt:
                set_progress(("2", "running both models on the prompt…"))
                meta["n_steps"] = comparison_for(services.cache, a, b, state).trace_a.num_steps
            set_progress(("2.5", "measuring edge changes…"))
            try:
                edges_for(services.cache, a, b)
            except BriLLMError as exc:
                meta["edge_error"] = str(exc)
        except BriLLMError as exc:
            meta["error"] = str(exc)
        set_progress(("3", "done"))
        return meta

    @app.callback(
        Output(f"{P}-paths", "children"), Output(f"{P}-divergence", "children"), Output(f"{P}-steps", "data"),
        Output(f"{P}-slider", "max"), Output(f"{P}-edges", "data"), Output(f"{P}-loss", "figure"),
        Output(f"{P}-msg", "children"), Output(f"{P}-note", "children", allow_duplicate=True),
        Output(f"{P}-edges", "columns"),
        Input(f"{P}-meta", "data"),
        prevent_initial_call=True,
    )
    def render(meta: Meta | None):
        """Both paths, the per-step charts, the edge table and the loss curves."""
        empty = common.placeholder("Choose two checkpoints, type a prompt and press Compare.")
        if not meta or meta.get("error"):
            return ([], "", stepping.no_steps(len(FIGURES)), 1, [], empty, ui.messages(pathview.meta_errors(meta)),
                    no_update, no_update)
        state, _ = from_dict(meta["request"])
        names = (state.model, meta["request"]["model_b"])
        try:
            a, b = (services.registry.load(n) for n in names)
        except BriLLMError as exc:  # removed or corrupted since the job ran
            return [], "", stepping.no_steps(len(FIGURES)), 1, [], empty, ui.messages([str(exc)]), no_update, no_update
        errors = [meta["edge_error"]] if meta.get("edge_error") else []
        edges = [] if errors else \
            figs.edge_table(edges_for(services.cache, a, b), a.token)[EDGE_COLUMNS].to_dict("records")
        loss = figs.loss_curves({"a": loss_history(a), "b": loss_history(b)})
        columns = edge_columns(shown_edge_columns(edges))
        if not state.prompt:
            return ([], "Type a prompt to compare the paths.", stepping.no_steps(len(FIGURES)), 1, edges, loss,
                    ui.messages(errors), "", columns)
        comparison = comparison_for(services.cache, a, b, state)
        frame = figs.step_table(comparison, a.token)
        first = comparison.first_divergence
        unknown = comparison.trace_a.unknown
        warnings = [f"{len(unknown)} piece(s) of the prompt map to the unknown node: "
                    + ", ".join(repr(u.get("text", "")) for u in unknown[:10])] if unknown else []
        paths = [path_chips(comparison.trace_a, first, f"A · {names[0]}", figs.COLOUR["a"], a.token, 0),
                 path_chips(comparison.trace_b, first, f"B · {names[1]}", figs.COLOUR["b"], a.token,
                            comparison.trace_a.num_steps + 1)]
        return (paths, divergence_text(comparison, a.token), step_store(comparison, frame, a.token),
                max(len(frame) - 1, 1), edges, loss, ui.messages(errors, warnings), "", columns)

    @app.callback(
        Output(f"{P}-download", "data"),
        Input(f"{P}-csv", "n_clicks"), Input(f"{P}-edges-csv", "n_clicks"), Input(f"{P}-json", "n_clicks"),
        State(f"{P}-meta", "data"), State(f"{P}-slider", "value"),
        prevent_initial_call=True,
    )
    def export(_csv, _edges, _json, meta, step):
        """Steps or edges as CSV, or everything as JSON carrying the view state (checkpoint B under data)."""
        if not meta or meta.get("error"):
            return no_update
        state, _ = from_dict(meta["request"])
        model_b = meta["request"]["model_b"]
        a, b = services.registry.load(state.model), services.registry.load(model_b)
        comparison = comparison_for(services.cache, a, b, state) if state.prompt else None
        steps = figs.step_table(comparison, a.token) if comparison else pd.DataFrame()
        edges = pd.DataFrame() if meta.get("edge_error") else figs.edge_table(edges_for(services.cache, a, b), a.token)
        if ctx.triggered_id == f"{P}-csv":
            return dcc.send_data_frame(steps.to_csv, "brillm-compare-steps.csv", index=False)
        if ctx.triggered_id == f"{P}-edges-csv":
            return dcc.send_data_frame(edges.to_csv, "brillm-compare-edges.csv", index=False)
        data = {
            "model_b": model_b, "hash": compare_hash(state, model_b),
            "first_divergence": comparison.first_divergence if comparison else None,
            "steps": json_records(steps), "edges": json_records(edges),
            "loss": {"a": json_records(loss_history(a)), "b": json_records(loss_history(b))},
            "traces": {"a": comparison.trace_a.to_dict(), "b": comparison.trace_b.to_dict(),
                       "b_on_a": comparison.b_on_a.to_dict()} if comparison else {},
        }
        return {"content": export_document("compare", state.with_(model_b=model_b, step=step or 0), data),
                "filename": "brillm-compare.json"}
