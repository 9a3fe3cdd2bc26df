"""Recall activation: how the prompt's signal spreads over H hops, and who feeds a chosen node."""

from __future__ import annotations

from typing import Any

import dash
from dash import Dash, Input, Output, State, dash_table, dcc, html, no_update

from brillm_core import Checkpoint, RecallResult

from .. import components as ui
from .. import pathview
from ..compute import recall_for, recall_key, reverse_energies_for, reverse_for
from ..context import Services
from ..figures import common, recall
from ..pathview import Event, Meta, Progress
from ..state import MAX_BEAM, MAX_BRANCH, MAX_HOPS, ViewState, from_dict

NAME, PATH, ORDER = "Recall activation", "/recall", 2
P = "rc"
KNOBS = ("hops", "branch", "beam")  # ViewState fields typed on this page, applied on Run


class ID:
    """The page's component ids, defined once."""

    frame = ui.frame_ids(P)
    knobs = {name: ui.field_id(P, name) for name in KNOBS}
    graph, table, node, reverse, cost = f"{P}-graph", f"{P}-table", f"{P}-node", f"{P}-reverse", f"{P}-cost"
    selected, ring, picked = f"{P}-selected", f"{P}-ring", f"{P}-picked"

TABLE_ROWS = 200
PAGE_ROWS = 15
HELP = [
    html.P("The paper names recall activation but defines no procedure; this is the explorer's. From the state "
           "after the prompt, every hop expands each explored path to its 'branch' most probable successors, "
           "each keeping its own memory exactly as generation would. A path's mass is the product of the "
           "probabilities along it; a node's activation is the total mass of the explored paths that reach it "
           "within H hops (the expected number of visits, restricted to the explored tree). Only the 'beam' "
           "heaviest paths survive each hop."),
    html.P("The reverse view answers 'who sends energy into this node': the energy every source would give it "
           "from the prompt's next signal, and the share of that source's probability mass it gets. Click a node "
           "in the graph or a table row to choose it."),
]


def layout(**_query: Any) -> html.Div:
    """The page's components."""
    def number(field: str, label: str, top: int) -> html.Label:
        return ui.labelled(f"{label} (1-{top})", ui.number_box(ID.knobs[field]))

    return html.Div([
        html.H2(NAME), ui.help_box(HELP), *pathview.page_frame(P, "Run"), dcc.Store(id=ID.selected),
        dcc.Store(id=ID.ring), dcc.Store(id=ID.picked),
        html.Div([number("hops", "Hops H", MAX_HOPS), number("branch", "Branch", MAX_BRANCH),
                  number("beam", "Beam", MAX_BEAM), html.Span(id=ID.cost, className="note")],
                 className="grid-controls"),
        html.Div([ui.figure_panel(ID.graph, "recall graph"),
                  html.Div([dash_table.DataTable(id=ID.table, page_size=PAGE_ROWS, sort_action="native",
                                                 style_cell={"fontFamily": "ui-monospace, monospace",
                                                             "fontSize": "0.85em"})])], className="grid2"),
        html.Div([ui.labelled("Reverse view: node id", ui.number_box(ID.node))],
                 className="grid-controls"),
        ui.figure_panel(ID.reverse, "reverse view"),
        ui.export_row(P, [("csv", "Ranked table CSV"), ("json", "Recall JSON (with view state)")]),
    ], className="page")


def recall_work(services: Services, checkpoint: Checkpoint, state: ViewState, progress: Progress) -> Meta:
    """Run (or read) the recall; meta points to the cached result."""
    progress(("1", f"spreading over {state.hops} hops…"))
    result = recall_for(services.cache, checkpoint, state, pathview.stage_progress(progress, "hop"))
    progress(("2.5", "measuring the energy into every node…"))
    reverse_energies_for(services.cache, checkpoint, state)  # so that a node's reverse view is one read
    return recall_meta(checkpoint, state, result)


def recall_meta(checkpoint: Checkpoint, state: ViewState, result: RecallResult) -> Meta:
    """The meta of a recall run: where the cache keeps it and how many nodes it reached."""
    return {"key": recall_key(checkpoint, state), "reached": int((result.first_hop > 0).sum())}


def cached_recall(services: Services, checkpoint: Checkpoint, state: ViewState) -> Meta | None:
    """``recall_work``'s meta when the run is already cached, else None (an empty prompt: the job says why)."""
    result = services.cache.get(recall_key(checkpoint, state)) if state.prompt else None
    return None if result is None else recall_meta(checkpoint, state, result)


def graph_node(state: ViewState, click: Any, _meta: Meta) -> ViewState:
    """A click on a node of the recall graph chooses it for the reverse view."""
    try:
        return state.with_(node=int(click["points"][0]["customdata"][0]))
    except (TypeError, KeyError, IndexError, ValueError):
        return state


def table_node(state: ViewState, cell: Any, _meta: Meta) -> ViewState:
    """A click on a table row chooses its node (rows carry their node as the row id)."""
    try:
        return state.with_(node=int(cell["row_id"]))
    except (TypeError, KeyError, ValueError):
        return state


def typed_node(state: ViewState, value: Any, _meta: Meta) -> ViewState:
    """A node id typed in the box."""
    try:
        return state.with_(node=int(value))
    except (TypeError, ValueError):
        return state


def node_box(state: ViewState) -> int | None:
    """What the node box shows for a state."""
    return state.node if state.node >= 0 else None


def selected_row_style(node: int) -> list[dict[str, Any]]:
    """The chosen node's row highlighted (by node, so the mark follows the node through re-runs and sorting), and
    the table's own mark of the cell clicked last drawn as a plain cell (with the page's CSS): after a click on the
    graph it would go on marking the row chosen before."""
    return [*({"if": {"state": state}, "backgroundColor": "white", "border": "1px solid #d3d3d3"}
              for state in ("active", "selected")),
            {"if": {"filter_query": f"{{node}} = {node}"}, "backgroundColor": "#fff3e0", "fontWeight": "bold"}]


PAGE = pathview.PathPage(
    P, [Event(Input(ID.graph, "clickData"), graph_node), Event(Input(ID.table, "active_cell"), table_node),
        Event(Input(ID.node, "value"), typed_node, (Output(ID.node, "value"), node_box))],
    steps=False, extra_form=KNOBS, job=recall_work, cached=cached_recall, kind="recall", needs_prompt=True)
RENDERED = [(ID.graph, "figure"), (ID.table, "data"), (ID.table, "columns"), (ID.frame.msg, "children")]
SELECTION = [(ID.reverse, "figure"), (ID.table, "style_data_conditional"), (ID.table, "page_current"),
             (ID.ring, "data"), (ID.selected, "data")]
# Clientside: the node a click chooses, read from the click itself (a row carries its node as its id, a point
# as its first custom datum), with the run on screen. The reverse view is asked for at once, beside the
# reducer's state update; waiting for that update first took a second round trip on every click.
PICK_CLICKED = ("function (cell, click, meta) { var how = (window.dash_clientside.callback_context.triggered[0]"
                " || {}).prop_id || ''; var point = ((click || {}).points || [])[0] || {};"
                " var node = how.endsWith('.active_cell') ? (cell || {}).row_id : (point.customdata || [])[0];"
                " return Number.isInteger(node) ? {node: node, run: (meta || {}).key || null}"
                " : window.dash_clientside.no_update; }")
# Clientside: a new run, or a node the state names (a link, the node box, Back), picked unless it is on screen.
# Written with set_props, not as a declared output: the renderer holds a callback back while any callback
# upstream of its inputs runs, and the reducer, upstream of the state, would hold every click's answer again.
PICK_STATE = ("function (meta, state, picked) { var node = state && Number.isInteger(state.node) ? state.node : -1;"
              " var now = {node: node, run: (meta || {}).key || null};"
              " if (!picked || picked.node !== now.node || picked.run !== now.run)"
              f" window.dash_clientside.set_props('{ID.picked}', {{data: now}}); }}")
# Clientside: the graph's figure with the chosen node's ring, after the reverse view is drawn (the ring in the
# same answer as the reverse view redrew the graph before the reverse view reached the screen); the figure's
# data is the same objects, so plotly redraws only what changed. A new run's figure carries its ring itself.
DRAW_RING = ("function (shapes, figure) { if (!figure || !figure.layout) return window.dash_clientside.no_update;"
             " return Object.assign({}, figure, {layout: Object.assign({}, figure.layout, {shapes: shapes || []})}); }")


def result_of(services: Services, meta: Meta | None) -> tuple[Checkpoint, RecallResult] | None:
    """The checkpoint and the recall run a meta points to (None when there is none)."""
    if not meta or meta.get("error") or not meta.get("key"):
        return None
    checkpoint = services.registry.load(meta["request"]["model"])
    return checkpoint, recall_for(services.cache, checkpoint, from_dict(meta["request"])[0])


def chosen(state: ViewState, checkpoint: Checkpoint) -> int | None:
    """The node chosen for the reverse view, if it exists."""
    return state.node if 0 <= state.node < checkpoint.config.vocab_size else None


def render(services: Services, meta: Meta | None, state_data: dict | None) -> tuple[Any, ...]:
    """A new run: the recall graph (the chosen node ringed), the ranked table and the messages (order of
    ``RENDERED``); the choice of a node is drawn by ``select``."""
    state, _ = from_dict(state_data or {})
    found = result_of(services, meta)
    if found is None:
        return common.placeholder("Type a prompt and press Run."), [], [], ui.messages(pathview.meta_errors(meta))
    checkpoint, result = found
    frame = result.to_frame([checkpoint.token(n) for n in range(checkpoint.config.vocab_size)])
    columns = [{"name": c.replace("_", " "), "id": c, **({"type": "numeric", "format": {"specifier": ".6g"}}
                                                        if c == "activation" else {})} for c in frame.columns]
    frame["token"] = [common.show_token(t) for t in frame["token"]]
    rows = [{**row, "id": int(row["node"])} for row in frame.head(TABLE_ROWS).to_dict("records")]
    return (recall.recall_graph(result, checkpoint.token, selected=chosen(state, checkpoint)), rows, columns,
            ui.messages([]))


def select(services: Services, picked: Any, meta: Meta | None, state_data: dict | None, drawn: Any,
           sort_by: Any) -> tuple[Any, ...]:
    """The chosen node (``picked``: {"node", "run"}; the state's own when none was) everywhere at once (order of
    ``SELECTION``): its reverse view, its table row highlighted (the table turned to the row's page unless the
    user sorted it), the ring around it on the graph (shapes, drawn by ``DRAW_RING``), and what is drawn now
    (``drawn``: what was drawn before; nothing is redrawn when that is unchanged). It reads the state without
    waiting for it and writes nothing the reducer reads (a table cell, say): each would hold up the other."""
    state, _ = from_dict(state_data or {})
    node = picked.get("node") if isinstance(picked, dict) else None
    if type(node) is int:  # what the page sends; anything else is no choice
        state = state.with_(node=node)
    found = result_of(services, meta)
    now = {"key": (meta or {}).get("key"), "node": state.node}
    if drawn == now:
        return tuple([no_update] * len(SELECTION))
    if found is None:
        return common.placeholder("Type a prompt and press Run."), [], no_update, no_update, now
    checkpoint, result = found
    node, vocab = chosen(state, checkpoint), checkpoint.config.vocab_size
    if node is not None:
        reverse = recall.reverse_bars(reverse_for(services.cache, checkpoint, state.with_(node=node)), node,
                                      checkpoint.token)
    elif state.node >= 0:
        reverse = common.placeholder(f"Node {state.node} does not exist here (0..{vocab - 1}): choose another.")
    else:
        reverse = common.placeholder("Choose a node (click one) for the reverse view.")
    ranked = recall.ranked_nodes(result)[:TABLE_ROWS]
    page = ranked.index(node) // PAGE_ROWS if node in ranked and not sort_by else no_update
    return reverse, selected_row_style(state.node), page, recall.selection_ring(result, node), now


def propagation_steps(hops: int, branch: int, beam: int) -> int:
    """Sum over the hops h < ``hops`` of min(branch ** h, beam), in closed form: the widths stay below the
    beam for the first k hops (a geometric sum; k is at most log2(beam)), every later hop keeps ``beam`` paths."""
    if branch == 1:
        return hops
    k, width = 0, 1
    while k < hops and width < beam:
        k, width = k + 1, width * branch
    return (branch ** k - 1) // (branch - 1) + (hops - k) * beam


def cost(hops: Any, branch: Any, beam: Any) -> str:
    """A cost estimate before the run: the number of propagation steps at most, for the values the run uses
    (clamped to the page's limits first, as a link is)."""
    try:
        typed = [float(v) for v in (hops, branch, beam)]
    except (TypeError, ValueError):  # an empty or unfinished box
        return ""
    state, warnings = from_dict(dict(zip(("hops", "branch", "beam"), typed)))
    steps = propagation_steps(state.hops, state.branch, state.beam)
    return f"at most {steps:,} propagation steps (each one V×d×d product)" + "".join(f"; {w}" for w in warnings)


def register(app: Dash, services: Services) -> None:
    """Register the page, and wire the shared reducer and job, its render, cost note and export to its ids."""
    dash.register_page(__name__, path=PATH, name=NAME, order=ORDER, layout=layout, title=f"BriLLM · {NAME}")
    pathview.register_export(app, P, "recall", lambda meta, _state: export_data(services, meta),
                             "brillm-recall.csv", "brillm-recall.json")
    pathview.register(app, services, PAGE)
    app.callback(*(Output(i, prop) for i, prop in RENDERED),
                 Input(ID.frame.meta, "data"), State(ID.frame.state, "data"), prevent_initial_call=True,
                 )(lambda meta, state_data: render(services, meta, state_data))
    app.clientside_callback(PICK_CLICKED, Output(ID.picked, "data"), Input(ID.table, "active_cell"),
                            Input(ID.graph, "clickData"), State(ID.frame.meta, "data"), prevent_initial_call=True)
    app.clientside_callback(PICK_STATE, Input(ID.frame.meta, "data"), Input(ID.frame.state, "data"),
                            State(ID.picked, "data"), prevent_initial_call=True)
    app.callback(*(Output(i, prop) for i, prop in SELECTION),
                 Input(ID.picked, "data"), State(ID.frame.meta, "data"), State(ID.frame.state, "data"),
                 State(ID.selected, "data"), State(ID.table, "sort_by"), prevent_initial_call=True,
                 )(lambda *args: select(services, *args))
    app.clientside_callback(DRAW_RING, Output(ID.graph, "figure", allow_duplicate=True), Input(ID.ring, "data"),
                            State(ID.graph, "figure"), prevent_initial_call=True)
    app.callback(Output(ID.cost, "children"), *(Input(ID.knobs[k], "value") for k in KNOBS))(cost)


def export_data(services: Services, meta: Meta) -> tuple[Any, dict[str, Any]] | None:
    """The ranked table, and the context, table and explored edges for the JSON export."""
    if not meta.get("key"):
        return None
    checkpoint = services.registry.load(meta["request"]["model"])
    request_state, _ = from_dict(meta["request"])
    result = recall_for(services.cache, checkpoint, request_state)
    frame = result.to_frame([checkpoint.token(n) for n in range(checkpoint.config.vocab_size)])
    return frame, {"context": result.context, "ranked": frame.to_dict("records"),
                   "edges": [list(e) for e in result.edges]}
