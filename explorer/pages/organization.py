"""Functional organisation (Sun et al.): atoms of the neurons' responses, their brain maps and network matches.

The page's settings are ``ViewState.org`` (validated with the rest of the view state, hash keys ``o_...``),
so its link and its exported view file both reopen it as it was, and leaving it keeps the other views'
prompt and step. Callbacks are module-level functions over plain data (``reduce``, ``run_job``,
``render``, ``atom_event``, ``export``, ``receive``); ``register`` only wires them to the ids below.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import dash
import numpy as np
import pandas as pd
from dash import Dash, Input, Output, State, ctx, dash_table, dcc, html, no_update

from brillm_core import BriLLMError
from brillm_core.organization import FORMULAS

from .. import components as ui
from .. import pathview
from ..context import Services
from ..figures import common
from ..figures import organization as fig
from ..organization_run import SAMPLE_STIMULUS, OrgResult, compute
from ..request import result_key
from ..state import ORG_CHOICES, ORG_DEFAULT, ORG_LIMITS, ViewState, export_document, from_dict, from_hash, to_dict, to_hash
from ..uploads import KINDS, MAX_UPLOAD_BYTES, decode, fetch, store, summarise

NAME, PATH, ORDER = "Functional organisation", "/organization", 5
P = "fo"
P_COLUMNS = ("q", "p_r", "q_r", "p_dice", "q_dice")  # shown with 3 significant digits, not rounded to 0
FORM = ("source", "text", "word_rate", "tr", "kind", "pool", "k", "alpha", "seed", "method", "encoding", "n_perm",
        "n_tr", "nodes", "units", "voxels", "k_true", *KINDS)  # OrgSettings fields typed in the form
Meta = dict[str, Any]


class ID:
    """The page's component ids, defined once."""

    frame = ui.frame_ids(P)
    form = {name: f"{P}-{name}" for name in FORM}  # one control per OrgSettings field; upload keys are hidden boxes
    upload = {kind: f"{P}-{kind}-upload" for kind in KINDS}
    upload_status = {kind: f"{P}-{kind}-status" for kind in KINDS}
    upload_box = f"{P}-upload-box"
    verdict = f"{P}-verdict"
    measures, recovery, recovery_box = f"{P}-measures", f"{P}-recovery", f"{P}-recovery-box"
    atoms, atom, subgroup, map = f"{P}-atoms", f"{P}-atom", f"{P}-subgroup", f"{P}-map"
    subgroup_table, regions = f"{P}-subgroup-table", f"{P}-regions"
    similarity, similarity_table = f"{P}-similarity", f"{P}-similarity-table"
    csv = {table: f"{P}-csv-{table}" for table in ("similarity", "subgroups", "maps")}
    json = f"{P}-json"


UPLOAD_LABELS = {
    "stimulus": "Stimulus: plain text (read at the word rate) or a transcript .csv/.tsv of word, onset[, offset]",
    "brain": "Brain data: time x voxel (or region) matrix, .npy or .csv/.tsv (an optional header names the columns)",
    "templates": "Templates: voxel x network matrix, .npy or .csv/.tsv (header = network names), or one label per voxel",
}
HELP = [
    html.P("Sun et al. (arXiv 2410.19542) factor artificial neurons' responses to a story into K atoms (time courses) "
           "with sparse loadings by dictionary learning; each atom's sub-group is the set of neurons loading on it. "
           "Each atom, convolved with a double-gamma HRF, is a regressor of a voxel-wise encoding model (OLS with "
           "AR(p) prewhitening, FDR across voxels; 'auto' fits one model per atom when the atoms are collinear); its map is compared with network templates."),
    html.P("Here a neuron is a unit of a node: node-gated (node x unit, responding where the node is active) or "
           "landscape (every node's energy at every step). The simulator has a known truth, so its recovery is shown. "
           "A checkpoint run uses the typed stimulus and brain data simulated from the model's own responses: it "
           "shows the mechanics, not a finding. Recorded data: choose 'upload', upload the stimulus, the brain "
           "matrix and the templates (up to 32 MB each; NIfTI images go through the `brillm organization` command)."),
    html.Ul([html.Li(f"{name}: {text}") for name, text in FORMULAS.items()]),
]


NO_RESULT_TEXT = "No result yet: the analysis runs when you press Run (its progress shows above)."
NO_RESULT = common.placeholder(NO_RESULT_TEXT)  # an empty state, not empty axes, until a result comes


def verdict_block(controls: dict[str, dict]) -> list[Any]:
    """Each control's verdict as one sentence with its p-values and what it means, then what each p-value asks
    (the model beating the mean and the model adding to a control are different questions)."""
    if not controls:
        return [html.P("No control was run, so there is no verdict on what the atoms add.")]
    out: list[Any] = []
    for name, c in controls.items():
        code = c["verdict_code"]
        out.append(html.P([html.Strong(f"{name.capitalize()} control: {code[0].upper() + code[1:]}. "),
                           f"{c['verdict'][0].upper()}{c['verdict'][1:]}. What it means: {c['meaning']}."],
                          className="verdict-line"))
        out.append(html.Ul([html.Li(f"p = {c[key]:.3g} answers: {question}") for key, question in c["questions"].items()],
                           className="verdict-questions"))
    floor = next(iter(controls.values()))["p_floor"]
    out.append(html.P(f"Each p is the share of phase-randomised copies of the tested time courses ({round(1 / floor) - 1} "
                      f"copies) that predict as well, counting the real ones; the smallest possible is {floor:.2g}.",
                      className="verdict-note"))
    return out


def _number(field: str, label: str) -> html.Label:
    """A number box, labelled with its range (the state validator clamps what is typed and says so)."""
    lo, hi = ORG_LIMITS[field]
    return ui.labelled(f"{label} ({lo:g}-{hi:g})" if hi < 1e6 else label, ui.number_box(ID.form[field]))


def _radio(field: str, label: str) -> html.Label:
    """Radio items over the field's choices."""
    return ui.labelled(label, dcc.RadioItems(id=ID.form[field], inline=True,
                                             options=[{"label": c.replace("_", "-"), "value": c}
                                                      for c in ORG_CHOICES[field]]))


def _upload_row(kind: str) -> html.Div:
    """An upload button for one kind of file, the key of the file received (hidden) and its summary or error."""
    return html.Div([
        dcc.Upload(html.Button(f"Upload {kind}…", className="upload"), id=ID.upload[kind], max_size=MAX_UPLOAD_BYTES),
        dcc.Input(id=ID.form[kind], type="hidden"),
        html.Span(UPLOAD_LABELS[kind], id=ID.upload_status[kind], className="status"),
    ], className="upload-row")


def _table(table_id: str, rows: int = 12) -> dash_table.DataTable:
    """A sortable, paged table."""
    return dash_table.DataTable(id=table_id, page_size=rows, sort_action="native",
                                style_cell={"fontFamily": "ui-monospace, monospace", "fontSize": "0.85em",
                                            "whiteSpace": "normal", "height": "auto", "textAlign": "left"})


def layout(**_query: Any) -> html.Div:
    """The page's components."""
    f = ID.frame
    return html.Div([
        *pathview.stores(P),
        html.H2(NAME), ui.help_box(HELP), ui.message_box(f.msg_state), ui.message_box(f.msg),
        html.Div([_radio("source", "Data"), ui.model_picker(P), _number("tr", "TR (s)"), _number("k", "Atoms K"),
                  _number("alpha", "Sparsity α"), _number("seed", "Seed"), _radio("method", "Encoding"),
                  _radio("encoding", "Atoms per model"),
                  _number("n_perm", "Permutations"), html.Button("Run", id=f.go, className="go")],
                 className="controls"),
        html.Details([html.Summary("Simulator size"),
                      html.Div([_number("n_tr", "Volumes"), _number("nodes", "Nodes"), _number("units", "Units per node"),
                                _number("voxels", "Voxels"), _number("k_true", "True atoms")], className="settings")],
                     className="settings-box"),
        html.Details([html.Summary("Checkpoint stimulus"),
                      html.Div([ui.labelled("Stimulus text (words at the word rate; empty = a built-in sample story)",
                                            dcc.Textarea(id=ID.form["text"], className="wide", placeholder=SAMPLE_STIMULUS,
                                                         style={"width": "100%", "height": 90})),
                                _number("word_rate", "Words per second"), _radio("kind", "Responses"),
                                _radio("pool", "Pooling into volumes")], className="settings")],
                     className="settings-box"),
        html.Details([html.Summary("Recorded data (upload)"),
                      html.Div([_upload_row(kind) for kind in KINDS], className="settings")],
                     id=ID.upload_box, className="settings-box"),
        html.Div([html.Progress(id=f.progress, value="0", max="100", className="progress"),
                  html.Span(id=f.status, className="status"),
                  html.Button("Cancel", id=f.cancel, className="cancel", disabled=True)],
                 id=f.progress_row, className="progress-row"),
        html.Div(id=f.note, className="note"),
        html.Div(id=ID.verdict, className="verdict", children=NO_RESULT_TEXT),
        html.H3("Measures"), _table(ID.measures, 40),
        html.Div(id=ID.recovery_box, hidden=True,
                 children=[html.H3("Recovery against the simulator's truth"), _table(ID.recovery)]),
        ui.figure_panel(ID.atoms, "atoms under the words", figure=NO_RESULT),
        html.Div([ui.labelled("Atom", dcc.Dropdown(id=ID.atom, clearable=False, style={"width": "10em"}))],
                 className="controls"),
        html.Div([ui.figure_panel(ID.subgroup, "sub-group", figure=NO_RESULT),
                  ui.figure_panel(ID.map, "map by network", figure=NO_RESULT)], className="grid2"),
        html.H3("Sub-group (all ANs with a non-zero loading)"), _table(ID.subgroup_table),
        html.H3("Map: strongest voxels / regions of the atom"), _table(ID.regions),
        ui.figure_panel(ID.similarity, "similarity", figure=NO_RESULT),
        html.H3("Atom x network similarity"), _table(ID.similarity_table),
        ui.export_row(P, [("csv-similarity", "Similarity CSV"), ("csv-subgroups", "Sub-groups CSV"),
                          ("csv-maps", "Maps CSV"), ("json", "Report JSON (with view state)")]),
    ], className="page")


def _records(frame) -> tuple[list[dict], list[dict]]:
    """DataTable data and columns of a DataFrame (floats rounded for display)."""
    frame = frame.copy()
    for c in frame.columns:
        if frame[c].dtype.kind == "f":
            frame[c] = frame[c].map(lambda v: float(f"{v:.3g}")) if c in P_COLUMNS else frame[c].round(4)
        elif frame[c].dtype.kind == "b":
            frame[c] = frame[c].astype(str)
    return frame.to_dict("records"), [{"name": c, "id": c} for c in frame.columns]


def subgroup_frame(result: OrgResult, atom: int):
    """The atom's sub-group: AN index, label, loading (strongest first)."""
    table = result.report.tables()["subgroups"]
    table = table[table["atom"] == atom].drop(columns="atom")
    return table.assign(label=table["label"].map(common.show_token))


def form_values(state: ViewState) -> list[Any]:
    """The controls' values for a state (order of FORM)."""
    return [getattr(state.org, name) for name in FORM]


def request_of(state: ViewState, runs: int = 0) -> dict[str, Any]:
    """The job's request: what the run depends on (the checkpoint only when one is read), the settings it
    was made from (restored by Cancel) and how often Run was pressed (so that Run always runs)."""
    return {**state.org.request(), "model": state.model if state.org.source != "sim" else "",
            "settings": {"model": state.model, "org": asdict(state.org)}, "run": runs}


def shown_state(state: ViewState, meta: Meta | None) -> ViewState:
    """``state`` with the settings of the result on screen, or default settings when nothing was computed."""
    shown = ((meta or {}).get("request") or {}).get("settings") or {"model": state.model, "org": asdict(ORG_DEFAULT)}
    return from_dict({**to_dict(state), **shown, "org": {**shown["org"], "atom": state.org.atom}})[0]


def upload_statuses(services: Services, state: ViewState) -> list[Any]:
    """What each upload row says for the keys a link or file names: the file's summary, or that it must be uploaded again."""
    out = []
    for kind in KINDS:
        key = getattr(state.org, kind)
        if not key:
            out.append(UPLOAD_LABELS[kind])
            continue
        try:
            upload = fetch(services.cache, {kind: key})[kind]
            out.append(html.Span(f"✓ {summarise(services, kind, upload, state.org.word_rate)}", className="upload-ok"))
        except (BriLLMError, ValueError) as exc:
            out.append(html.Span(str(exc), className="upload-error"))
    return out


def reduce(services: Services, trigger: str, url: str | None, current: dict | None, meta: Meta | None,
           model: str | None, form: list[Any], runs: int) -> dict[str, Any]:
    """Link -> state (and a run); Run -> the typed settings (and a run, from atom 0); Cancel -> the settings of
    the result on screen again. Every state is written to the link, and its atom to the atom picker with the
    options of its K atoms (a dropdown drops a value its options lack, and no result may be on screen yet). The
    picker has its own callbacks, ``select_atom`` and ``atom_event``: nothing downstream of a job writes its
    value, so that picking an atom of the result on screen never waits for a running job."""
    names = services.registry.names()
    out: dict[str, Any] = {k: no_update for k in ("state", "request", "hash", "options", "model", "msg", "atom",
                                                  "atoms")}
    out.update(form=[no_update] * len(FORM), uploads=[no_update] * len(KINDS))
    old = from_dict(current)[0] if current else None
    if old is None or trigger == ID.frame.url:
        state, warnings = from_hash(url)
        if old is not None and to_hash(state) == to_hash(old):
            return out  # our own hash write coming back
        state, more = pathview.resolve_model(state, names)
        out.update(request=request_of(state), options=[{"label": n, "value": n} for n in names], model=state.model,
                   msg=ui.messages([], warnings + more), form=form_values(state), uploads=upload_statuses(services, state))
    elif trigger == ID.frame.go:
        state, warnings = from_dict({**to_dict(old), "model": model if model in names else old.model,
                                     "org": {**asdict(old.org), **dict(zip(FORM, form)), "atom": 0}})
        out.update(request=request_of(state, runs), msg=ui.messages([], warnings))
    else:  # Cancel
        state = shown_state(old, meta)
        out.update(form=form_values(state), model=state.model)
    if trigger != ID.frame.go:  # after Run the result on screen (and its atoms) stays until the new one comes
        out.update(atoms=atom_options(state.org.k))
    if old is None or trigger == ID.frame.url or state.org.atom != old.org.atom:  # else the picker shows it already
        out.update(atom=min(state.org.atom, state.org.k - 1))
    out.update(state=to_dict(state), hash=to_hash(state) or "#")
    return out


def atom_options(k: int) -> list[dict[str, Any]]:
    """The atom picker's options for a run of K atoms."""
    return [{"label": f"atom {i}", "value": i} for i in range(k)]


def select_atom(atom: Any, current: dict | None) -> tuple[Any, Any]:
    """The atom shown -> the state and the link."""
    if atom is None or not current:
        return no_update, no_update
    old = from_dict(current)[0]
    state = old.with_(org=replace(old.org, atom=atom))
    return (to_dict(state), to_hash(state) or "#") if state != old else (no_update, no_update)


def run_job(services: Services, set_progress: Any, request: dict[str, Any] | None) -> Meta:
    """Run the pipeline (or find it in the cache) and point the page to the result."""
    settings = from_dict({"org": request or {}})[0].org
    meta: Meta = {"request": request, "error": ""}
    try:
        checkpoint = services.registry.load(request["model"]) if settings.source != "sim" else None
        key = result_key("organization", [checkpoint.model_id if checkpoint else "simulator"], settings.request())
        if services.cache.get(key) is None:
            def progress(fraction: float, message: str) -> None:
                set_progress((str(int(100 * fraction)), message))
            files = (fetch(services.cache, {kind: getattr(settings, kind) for kind in KINDS})
                     if settings.source == "upload" else None)
            services.cache.set(key, compute(settings, checkpoint, progress, files))
        meta["key"] = key
    except (BriLLMError, ValueError) as exc:
        meta["error"] = str(exc)
    set_progress(("100", "done"))
    return meta


def result_of(services: Services, meta: Meta | None) -> OrgResult | None:
    """The finished run a meta record points to (None when the cache lost it)."""
    return services.cache.get(meta["key"]) if meta and meta.get("key") else None


def atom_view(result: OrgResult, atom: int) -> tuple[Any, ...]:
    """The figures and tables of one atom of a finished run (order of ``ATOM_VIEW``; clamped to its K atoms)."""
    rep = result.report
    atom = min(max(atom, 0), rep.atom_model.k - 1)
    names = rep.match.network_names
    group = subgroup_frame(result, atom)
    enc = rep.encoding
    regions = fig.region_table(enc.betas[atom], enc.t[atom], enc.q[atom], enc.significant[atom],
                               result.templates, names, rep.brain.voxel_names)
    return (fig.atoms_under_words(rep.atom_model.atoms, result.words, result.tr, atom),
            fig.subgroup_bars(group["label"].tolist(), group["loading"].to_numpy(), atom),
            fig.map_by_network(enc.t[atom], enc.significant[atom], result.templates, names, atom),
            *_records(group), *_records(regions))


def render(services: Services, meta: Meta | None, state_data: dict | None) -> tuple[Any, ...]:
    """Every table and figure of a finished run, for the state's atom (order of ``RENDERED``, ``ATOM_VIEW``)."""
    result = result_of(services, meta)
    if result is None:
        empty = NO_RESULT if not meta or not meta.get("error") else common.placeholder("No result.")
        errors = [meta["error"]] if meta and meta.get("error") else (
            ["The result is no longer cached; press Run again."] if meta and meta.get("key") else [])
        return (NO_RESULT_TEXT, [], [], [], [], True, [], empty, [], [], ui.messages(errors), empty, empty, empty, [],
                [], [], [], no_update)
    rep = result.report
    measures = _records(pd.DataFrame(fig.measures_rows(rep.measures, rep.controls)))
    recovery = [{"figure": k, "value": round(v, 4) if isinstance(v, float) else str(v)}
                for k, v in (result.recovery or {}).items() if not isinstance(v, list) and k != "power_warning"]
    warnings = list(rep.warnings) + [w for w in [(result.recovery or {}).get("power_warning")] if w]
    if rep.brain.nan_voxels.size or rep.brain.constant_voxels.size:
        warnings.append(f"{rep.brain.nan_voxels.size} NaN and {rep.brain.constant_voxels.size} constant voxels "
                        "were excluded (their maps are empty)")
    return (
        verdict_block(rep.controls), *measures, recovery, [{"name": c, "id": c} for c in ("figure", "value")],
        not recovery,
        atom_options(rep.atom_model.k),
        fig.similarity_heatmap(rep.match.r, rep.match.dice, rep.match.matches, rep.match.network_names),
        *_records(rep.similarity_table()), ui.messages([], warnings),
        *atom_view(result, from_dict(state_data or {})[0].org.atom), result.note,
    )


def atom_event(services: Services, atom: Any, meta: Meta | None) -> tuple[Any, ...]:
    """An atom picked: that atom of the result on screen (``meta`` is read, not waited for, so a running
    job does not hold the picker); nothing when no result is on screen."""
    result = result_of(services, meta)
    if result is None or atom is None:
        return (no_update,) * len(ATOM_VIEW)
    return atom_view(result, int(atom))


def export(services: Services, trigger: str, meta: Meta | None, state_data: dict | None) -> Any:
    """Tables as CSV, or the whole report as a view file whose state reopens the page as it is."""
    result = result_of(services, meta)
    if result is None:
        return no_update
    tables = result.report.tables()
    for table, button in ID.csv.items():
        if trigger == button:
            return dcc.send_data_frame(tables[table].to_csv, f"brillm-organization-{table}.csv", index=False)
    state = from_dict(state_data or {})[0]
    data = _finite({"hash": to_hash(state), "recovery": result.recovery, "note": result.note,
                    "report": result.report.summary()})
    return {"content": export_document("organization", state, data), "filename": "brillm-organization.json"}


def receive(services: Services, kind: str, contents: str | None, filename: str | None, word_rate: Any) -> tuple[str, Any]:
    """An upload's key and summary, or no key and the reason it cannot be used."""
    try:
        upload = decode(contents, filename)
        rate = from_dict({"org": {"word_rate": word_rate}})[0].org.word_rate
        summary = summarise(services, kind, upload, rate)
    except (BriLLMError, ValueError) as exc:
        return "", html.Span(str(exc), className="upload-error")
    return store(services.cache, upload), html.Span(f"✓ {summary}", className="upload-ok")


RENDERED = [(ID.verdict, "children"), (ID.measures, "data"), (ID.measures, "columns"), (ID.recovery, "data"), (ID.recovery, "columns"),
            (ID.recovery_box, "hidden"), (ID.atom, "options"), (ID.similarity, "figure"), (ID.similarity_table, "data"),
            (ID.similarity_table, "columns"), (ID.frame.msg, "children")]
ATOM_VIEW = [(ID.atoms, "figure"), (ID.subgroup, "figure"), (ID.map, "figure"), (ID.subgroup_table, "data"),
             (ID.subgroup_table, "columns"), (ID.regions, "data"), (ID.regions, "columns")]


def register(app: Dash, services: Services) -> None:
    """Register the page and wire its callbacks to its ids."""
    dash.register_page(__name__, path=PATH, name=NAME, order=ORDER, layout=layout, title=f"BriLLM · {NAME}")
    f = ID.frame
    form = [ID.form[name] for name in FORM]

    @app.callback(
        output={"state": Output(f.state, "data"), "request": Output(f.request, "data"), "hash": Output(f.url, "hash"),
                "options": Output(f.model, "options"), "model": Output(f.model, "value"),
                "msg": Output(f.msg_state, "children"), "atom": Output(ID.atom, "value"),
                "atoms": Output(ID.atom, "options", allow_duplicate=True),
                "form": [Output(i, "value") for i in form],
                "uploads": [Output(ID.upload_status[k], "children", allow_duplicate=True) for k in KINDS]},
        inputs={"url": Input(f.url, "hash"), "go": Input(f.go, "n_clicks"), "cancel": Input(f.cancel, "n_clicks"),
                "current": State(f.state, "data"), "meta": State(f.meta, "data"),
                "model": State(f.model, "value"), "form": [State(i, "value") for i in form]},
        prevent_initial_call="initial_duplicate",
    )
    def on_event(url, go, cancel, current, meta, model, form):
        """Every user event but the atom's -> one new state (see ``reduce``)."""
        return reduce(services, ctx.triggered_id or "", url, current, meta, model, form, go or 0)

    app.callback(Output(f.state, "data", allow_duplicate=True), Output(f.url, "hash", allow_duplicate=True),
                 Input(ID.atom, "value"), State(f.state, "data"), prevent_initial_call=True)(select_atom)

    @pathview.background_job(app, P, interval=300)
    def job(set_progress, request):
        """The analysis, in a background process (see ``run_job``)."""
        return run_job(services, set_progress, request)

    # a new result renders everything; an atom picked renders its atom of the result on screen (reading the
    # meta, not waiting for it: the renderer holds a callback whose input a running job's output leads to)
    app.callback(*(Output(i, prop) for i, prop in RENDERED + ATOM_VIEW), Output(f.note, "children", allow_duplicate=True),
                 Input(f.meta, "data"), State(f.state, "data"), prevent_initial_call=True,
                 )(lambda meta, state_data: render(services, meta, state_data))
    app.callback(*(Output(i, prop, allow_duplicate=True) for i, prop in ATOM_VIEW), Input(ID.atom, "value"),
                 State(f.meta, "data"), prevent_initial_call=True,
                 )(lambda atom, meta: atom_event(services, atom, meta))
    app.callback(Output(ID.upload_box, "open"), Input(ID.form["source"], "value"))(lambda source: source == "upload")
    app.callback(Output(f.download, "data"), *(Input(i, "n_clicks") for i in (*ID.csv.values(), ID.json)),
                 State(f.meta, "data"), State(f.state, "data"), prevent_initial_call=True,
                 )(lambda *args: export(services, ctx.triggered_id, *args[-2:]))
    for kind in KINDS:
        app.callback(Output(ID.form[kind], "value", allow_duplicate=True), Output(ID.upload_status[kind], "children"),
                     Input(ID.upload[kind], "contents"), State(ID.upload[kind], "filename"),
                     State(ID.form["word_rate"], "value"), prevent_initial_call=True,
                     )(lambda contents, name, rate, kind=kind: receive(services, kind, contents, name, rate))


def _finite(x: Any) -> Any:
    """NaN and inf as None, numpy values as Python values, at any depth (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, np.ndarray):
        return _finite(x.tolist())
    if isinstance(x, (np.generic, float)):
        v = x.item() if isinstance(x, np.generic) else x
        return None if isinstance(v, float) and not np.isfinite(v) else v
    return x
