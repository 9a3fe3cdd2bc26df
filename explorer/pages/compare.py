"""Compare checkpoints: two checkpoints of one vocabulary on one prompt, their paths and divergence, what B changed
on A's path and in each parameter group (relative to its size), a sentence that sums it up, and both training
records."""

from __future__ import annotations

import json
from typing import Any

import dash
import pandas as pd
from dash import Dash, Input, Output, State, ctx, dash_table, dcc, html, no_update

from brillm_core import (BriLLMError, Checkpoint, PathComparison, Trace, check_same_vocabulary, compare_paths,
                         edge_changes, edge_effects, largest_shift, parameter_groups, path_energy_changes,
                         training_record)

from .. import components as ui
from .. import pathview, stepping
from ..cache import ResultCache
from ..compute import settings_of
from ..context import Services
from ..figures import common
from ..figures import compare as figs
from ..pathview import Meta
from ..request import ask, result_key
from ..state import ViewState, export_document, from_dict, to_hash

NAME, PATH, ORDER = "Compare", "/compare", 3
P = "cp"


class ID:
    """The page's component ids, defined once."""

    frame = ui.frame_ids(P)
    model_b, swap = f"{P}-model-b", f"{P}-swap"
    paths, divergence, summary, ranks, js = f"{P}-paths", f"{P}-divergence", f"{P}-summary", f"{P}-ranks", f"{P}-js"
    path_changes, groups, edges = f"{P}-path-changes", f"{P}-groups", f"{P}-edges"
    loss, loss_notes = f"{P}-loss", f"{P}-loss-notes"
    path_csv, edges_csv = f"{P}-path-csv", f"{P}-edges-csv"


FIGURES = [ID.ranks, ID.js]
TOP_EDGES = 50  # edges of the parameter table
TOP_PATH_EDGES = 30  # edges of the path table
PATH_COLUMNS = ["step", "source_token", "target_token", "probability_a", "probability_b", "probability_change",
                "energy_a", "energy_b", "energy_change", "from_signal", "from_matrix", "from_bias"]
GROUP_COLUMNS = ["group", "role", "parameters", "size_a", "change", "relative_change"]
EDGE_COLUMNS = ["source", "source_token", "target", "target_token", "weight_relative", "bias_relative",
                "weight_change", "bias_change", "own_row_change", "row_a", "row_b"]
FORMATS = {  # d3 formats of the numeric columns: energies exact in float32, changes with their sign
    **dict.fromkeys(("probability_a", "probability_b"), ".4~g"),
    **dict.fromkeys(("energy_a", "energy_b"), common.EXACT),
    **dict.fromkeys(("probability_change", "energy_change", "from_signal", "from_matrix", "from_bias"), "+.4~g"),
    **dict.fromkeys(("weight_change", "bias_change", "size_a", "change"), ".5~g"),
    **dict.fromkeys(("weight_relative", "bias_relative", "relative_change"), ".3~g"),
    **dict.fromkeys(("step", "parameters", "source", "target", "row_a", "row_b"), ",d"),
}
HELP = [
    html.P("Two checkpoints of one vocabulary continue the same prompt with the same decoding settings. The chips "
           "show both paths; the first step where they choose different nodes is outlined in red."),
    html.P("The charts score A's path under both models: B is teacher-forced along A's path, so at every step both "
           "see the same history. Rank 1 means the node got the most energy. The Jensen-Shannon divergence (in "
           "bits, 0 = same distribution, 1 = disjoint) compares the two next-node distributions at each step."),
    html.P("The sentence under the paths sums the comparison up: at the step where the paths part (or, when they "
           "never do, where the distributions differ most) it names the node B took probability from and the one "
           "it gave it to, and what in those two edges did it. An edge's energy ‖GELU(x @ W + b + PE)‖ is split "
           "into the shares of the signal x arriving at the source, the edge's matrix W and its bias b (Shapley "
           "shares: each part swapped from A's to B's in every order, averaged; they add up to the change)."),
    html.P("'What B changed on this path' lists the edges of every step of A's path whose probability B moved most, "
           "with their energies under both models. 'Parameter groups' measures each group's change relative to its "
           "size (‖B − A‖ / ‖A‖), since a bias near 5e4 that moves by 1,000 has moved less than a matrix near 0.01 "
           "that moves by 0.02. The edge table ranks single edges the same way (edges without a row of their own "
           "read the shared row 0, listed once; 'gained' marks an edge that has its own row in B but read the "
           "shared row in A)."),
    html.P("The training record comes from each checkpoint's metadata.json: the loss of every optimiser step and "
           "the validation perplexity, each checkpoint's own step marked; the note under it says why a checkpoint "
           "has no curve. The link in the address bar reopens this view."),
]
TABLE_STYLE = {"fontFamily": "ui-monospace, monospace", "fontSize": "0.85em"}


def layout(**_query: Any) -> html.Div:
    """The page's components."""
    picker_b = ui.labelled("Checkpoint B", dcc.Dropdown(id=ID.model_b, clearable=False, className="model-picker"))
    return html.Div([
        html.H2(NAME), ui.help_box(HELP), *pathview.stores(P),
        ui.message_box(ID.frame.msg_state), ui.message_box(ID.frame.msg),
        ui.prompt_row(P, "Compare"),
        html.Div([picker_b, html.Button("Swap A and B", id=ID.swap)], className="controls"),
        ui.settings_panel(P), ui.progress_row(P), html.Div(id=ID.frame.note, className="note"),
        *stepping.components(P, len(FIGURES)),
        html.Div([
            html.Div(id=ID.paths),
            html.P(id=ID.divergence, className="divergence"),
            html.P(id=ID.summary, className="compare-summary"),
            ui.step_controls(P),
            html.Div([ui.figure_panel(ID.ranks, "rank and probability"),
                      ui.figure_panel(ID.js, "JS divergence")], className="grid2"),
            html.H3("What B changed on this path"),
            html.P("Edges of A's path whose probability B moved most (B after A's history at every step), with "
                   "their energies and the shares of the energy change.", className="note"),
            dash_table.DataTable(id=ID.path_changes, page_size=10, sort_action="native",
                                 columns=table_columns(PATH_COLUMNS), style_cell=TABLE_STYLE),
        ], id=ID.frame.views, style={"display": "none"}),
        html.H3("Parameter groups, by change relative to their size"),
        dash_table.DataTable(id=ID.groups, sort_action="native", columns=table_columns(GROUP_COLUMNS),
                             style_cell={**TABLE_STYLE, "whiteSpace": "normal", "textAlign": "left"}),
        html.H3("Edges whose parameters changed most, relative to their size"),
        dash_table.DataTable(
            id=ID.edges, page_size=15, sort_action="native",
            columns=table_columns(EDGE_COLUMNS),
            style_cell=TABLE_STYLE,
            style_data_conditional=[{"if": {"filter_query": "{own_row_change} = gained"}, "backgroundColor": "#e8f5e9"},
                                    {"if": {"filter_query": "{own_row_change} = lost"}, "backgroundColor": "#ffebee"}]),
        ui.figure_panel(ID.loss, "training record"),
        html.Ul(id=ID.loss_notes, className="note"),
        ui.export_row(P, [("csv", "Steps CSV"), ("path-csv", "Path changes CSV"), ("edges-csv", "Edges CSV"),
                          ("json", "Comparison JSON (with view state)")]),
    ], className="page")


def table_columns(names: list[str]) -> list[dict[str, Any]]:
    """DataTable columns with readable headers and their number formats."""
    return [{"name": figs.HEADERS[c], "id": c,
             **({"type": "numeric", "format": {"specifier": FORMATS[c]}} if c in FORMATS else {})} for c in names]


def shown_edge_columns(records: list[dict[str, Any]]) -> list[str]:
    """The edge table's columns; the own-row column only when some edge gained or lost its own row."""
    return [c for c in EDGE_COLUMNS if c != "own_row_change" or any(r.get(c) for r in records)]


def swap(state: ViewState, _clicks: Any, _meta: Meta) -> ViewState:
    """Swap A and B."""
    return state.with_(model=state.model_b, model_b=state.model, reroutes=[], step=0)


def comparison_for(cache: ResultCache, a: Checkpoint, b: Checkpoint, state: ViewState) -> PathComparison:
    """Cached ``compare_paths`` on the state's prompt and settings."""
    key = ask("compare", state).key(a.model_id, b.model_id)
    return cache.get_or_compute(key, lambda: compare_paths(a, b, state.prompt, settings_of(state)))


def parameters_for(cache: ResultCache, a: Checkpoint, b: Checkpoint) -> dict[str, pd.DataFrame]:
    """Cached parameter changes: "groups" (``parameter_groups``) and "edges" (the TOP_EDGES first of
    ``edge_changes``), from one pass over the parameters."""
    def compute() -> dict[str, pd.DataFrame]:
        edges = edge_changes(a.model, b.model, None)
        return {"groups": parameter_groups(a.model, b.model, edges), "edges": edges.head(TOP_EDGES)}

    return cache.get_or_compute(result_key("parameter-changes", [a.model_id, b.model_id], {"top": TOP_EDGES}),
                                compute)


def changes_for(cache: ResultCache, a: Checkpoint, b: Checkpoint, state: ViewState) -> dict[str, Any]:
    """Cached changes on A's path: "path" (``path_energy_changes``), "shift" (``largest_shift``) and
    "shift_edges" (``edge_effects`` of its lost and gained edge)."""
    def compute() -> dict[str, Any]:
        comparison = comparison_for(cache, a, b, state)
        shift = largest_shift(comparison)
        cells = [(shift.step, shift.lost), (shift.step, shift.gained)] if shift else []
        return {"path": path_energy_changes(comparison, a.model, b.model, TOP_PATH_EDGES), "shift": shift,
                "shift_edges": edge_effects(comparison, a.model, b.model, cells)}

    key = result_key("compare-changes", [a.model_id, b.model_id], ask("compare", state).fields)
    return cache.get_or_compute(key, compute)


def path_chips(trace: Trace, first: int | None, label: str, colour: str, token: Any, offset: int) -> html.Div:
    """One model's path as chips (ids from ``offset`` on), the node chosen at the first divergent step outlined."""
    items: list[Any] = [html.Span(label, className="label", style={"color": colour})]
    for i, cls in enumerate(chip_classes(trace, first)):
        note = f"; first divergence (step {first})" if "diverge" in cls else ""
        items.append(html.Span(common.show_token(token(int(trace.path[i]))), className=cls,
                               id={"type": ID.frame.chip, "index": offset + i},
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
    ranks = figs.rank_probability(frame, first)
    js = figs.js_bars(frame, first)
    steps = len(frame)
    return stepping.store(step_labels(frame, token),
                          [stepping.cursor(ID.ranks, ranks, stepping.cursor_frames(ranks, steps)),
                           stepping.cursor(ID.js, js, stepping.cursor_frames(js, steps))],
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
    """Rows as JSON-ready dicts (NaN and infinities -> null, full float precision)."""
    return json.loads(frame.to_json(orient="records", double_precision=15))


def compare_work(services: Services, a: Checkpoint, state: ViewState, progress: pathview.Progress) -> Meta:
    """Load B, check the vocabularies, compare the paths and what changed on them (when there is a prompt) and
    the parameters (cached)."""
    b = services.registry.load(state.model_b)
    check_same_vocabulary(a, b)
    meta: Meta = {"edge_error": ""}
    if state.prompt:
        progress(("2", "running both models on the prompt…"))
        meta["n_steps"] = comparison_for(services.cache, a, b, state).trace_a.num_steps
        progress(("2.3", "measuring what changed on the path…"))
        changes_for(services.cache, a, b, state)
    progress(("2.6", "measuring parameter changes…"))
    try:
        parameters_for(services.cache, a, b)
    except BriLLMError as exc:
        meta["edge_error"] = str(exc)
    return meta


PAGE = pathview.PathPage(P, [pathview.Event(Input(ID.swap, "n_clicks"), swap)], job=compare_work, kind="compare",
                         pickers=(("model_b", "checkpoint B"),))


def render(services: Services, meta: Meta | None) -> tuple[Any, ...]:
    """Both paths, the sentence, the per-step charts, the three tables and the training record (order of
    ``RENDERED``)."""
    empty = common.placeholder("Choose two checkpoints, type a prompt and press Compare.")
    nothing = ([], "", "", stepping.no_steps(len(FIGURES)), 1, [], [], [], empty, [])
    if not meta or meta.get("error"):
        return (*nothing, ui.messages(pathview.meta_errors(meta)), no_update)
    state, _ = from_dict(meta["request"])
    names = (state.model, meta["request"]["model_b"])
    try:
        a, b = (services.registry.load(n) for n in names)
    except BriLLMError as exc:  # removed or corrupted since the job ran
        return (*nothing, ui.messages([str(exc)]), no_update)
    errors = [meta["edge_error"]] if meta.get("edge_error") else []
    parameters = {} if errors else parameters_for(services.cache, a, b)
    edges = json_records(figs.edge_table(parameters["edges"], a.token)[EDGE_COLUMNS]) if parameters else []
    groups = json_records(parameters["groups"][GROUP_COLUMNS]) if parameters else []
    records = {"a": training_record(a), "b": training_record(b)}
    loss = figs.training_curves(records)
    notes = [html.Li(n) for n in figs.training_notes(records, dict(zip("ab", names)))]
    columns = table_columns(shown_edge_columns(edges))
    if not state.prompt:
        return ([], "Type a prompt to compare the paths.", "", stepping.no_steps(len(FIGURES)), 1, [], groups, edges,
                loss, notes, ui.messages(errors), columns)
    comparison = comparison_for(services.cache, a, b, state)
    changes = changes_for(services.cache, a, b, state)
    frame = figs.step_table(comparison, a.token)
    first = comparison.first_divergence
    unknown = comparison.trace_a.unknown
    warnings = [f"{len(unknown)} piece(s) of the prompt map to the unknown node: "
                + ", ".join(repr(u.get("text", "")) for u in unknown[:10])] if unknown else []
    paths = [path_chips(comparison.trace_a, first, f"A · {names[0]}", figs.COLOUR["a"], a.token, 0),
             path_chips(comparison.trace_b, first, f"B · {names[1]}", figs.COLOUR["b"], a.token,
                        comparison.trace_a.num_steps + 1)]
    path_rows = json_records(figs.with_tokens(changes["path"], a.token)[PATH_COLUMNS])
    return (paths, divergence_text(comparison, a.token), figs.shift_sentence(changes["shift"], changes["shift_edges"],
                                                                              a.token),
            step_store(comparison, frame, a.token), max(len(frame) - 1, 1), path_rows, groups, edges, loss, notes,
            ui.messages(errors, warnings), columns)


def export(services: Services, trigger: str, meta: Meta | None, step: Any) -> Any:
    """Steps, path changes or edges as CSV, or everything as a view file whose state reopens both checkpoints at
    this step."""
    if not meta or meta.get("error"):
        return no_update
    state, _ = from_dict(meta["request"])
    a, b = services.registry.load(state.model), services.registry.load(state.model_b)
    comparison = comparison_for(services.cache, a, b, state) if state.prompt else None
    changes = changes_for(services.cache, a, b, state) if state.prompt else None
    steps = figs.step_table(comparison, a.token) if comparison else pd.DataFrame()
    path = figs.with_tokens(changes["path"], a.token) if changes else pd.DataFrame()
    parameters = {} if meta.get("edge_error") else parameters_for(services.cache, a, b)
    edges = figs.edge_table(parameters["edges"], a.token) if parameters else pd.DataFrame()
    if trigger == ID.frame.csv:
        return dcc.send_data_frame(steps.to_csv, "brillm-compare-steps.csv", index=False)
    if trigger == ID.path_csv:
        return dcc.send_data_frame(path.to_csv, "brillm-compare-path-changes.csv", index=False)
    if trigger == ID.edges_csv:
        return dcc.send_data_frame(edges.to_csv, "brillm-compare-edges.csv", index=False)
    shown = state.with_(step=step or 0)
    records = {"a": training_record(a), "b": training_record(b)}
    data = {
        "model_b": state.model_b, "hash": to_hash(shown),
        "first_divergence": comparison.first_divergence if comparison else None,
        "summary": figs.shift_sentence(changes["shift"], changes["shift_edges"], a.token) if changes else "",
        "steps": json_records(steps), "path_changes": json_records(path), "edges": json_records(edges),
        "parameter_groups": json_records(parameters["groups"]) if parameters else [],
        "loss": {k: json_records(r.loss) for k, r in records.items()},
        "validation": {k: json_records(r.validation) for k, r in records.items()},
        "training_notes": figs.training_notes(records, {"a": state.model, "b": state.model_b}),
        "traces": {"a": comparison.trace_a.to_dict(), "b": comparison.trace_b.to_dict(),
                   "b_on_a": comparison.b_on_a.to_dict()} if comparison else {},
    }
    return {"content": export_document("compare", shown, data), "filename": "brillm-compare.json"}


RENDERED = [(ID.paths, "children"), (ID.divergence, "children"), (ID.summary, "children"), (ID.frame.steps, "data"),
            (ID.frame.slider, "max"), (ID.path_changes, "data"), (ID.groups, "data"), (ID.edges, "data"),
            (ID.loss, "figure"), (ID.loss_notes, "children"), (ID.frame.msg, "children")]


def register(app: Dash, services: Services) -> None:
    """Register the page, and wire the shared reducer and job, its views and its export to its ids."""
    dash.register_page(__name__, path=PATH, name=NAME, order=ORDER, layout=layout, title=f"BriLLM · {NAME}")
    pathview.register(app, services, PAGE)
    stepping.register(app, P, FIGURES)
    app.callback(*(Output(i, prop) for i, prop in RENDERED), Output(ID.edges, "columns"), Input(ID.frame.meta, "data"),
                 prevent_initial_call=True)(lambda meta: render(services, meta))
    app.callback(Output(ID.frame.download, "data"), Input(ID.frame.csv, "n_clicks"), Input(ID.path_csv, "n_clicks"),
                 Input(ID.edges_csv, "n_clicks"), Input(ID.frame.json, "n_clicks"), State(ID.frame.meta, "data"),
                 State(ID.frame.slider, "value"), prevent_initial_call=True,
                 )(lambda _csv, _path, _edges, _json, meta, step: export(services, ctx.triggered_id, meta, step))
