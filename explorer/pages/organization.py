"""Functional organisation (Sun et al.): atoms of the neurons' responses, their brain maps and network matches."""

from __future__ import annotations

from typing import Any

import dash
import numpy as np
import pandas as pd
from dash import Dash, Input, Output, State, ctx, dash_table, dcc, html, no_update

from brillm_core import BriLLMError
from brillm_core.organization import FORMULAS

from .. import components as ui
from .. import pathview
from ..cache import cache_key
from ..context import Services
from ..figures import common
from ..figures import organization as fig
from ..organization_run import (CHOICES, LIMITS, SAMPLE_STIMULUS, OrgResult, compute, from_hash, parse, to_hash,
                                with_other_pages)
from ..state import ViewState, export_document
from ..uploads import KINDS, MAX_UPLOAD_BYTES, decode, describe, fetch, store

NAME, PATH, ORDER = "Functional organisation", "/organization", 5
P = "fo"
P_COLUMNS = ("q", "p_r", "p_dice")  # shown with 3 significant digits, not rounded to 0
FORM = ("source", "model", "text", "word_rate", "tr", "kind", "pool", "k", "alpha", "seed", "method", "encoding", "n_perm",
        "n_tr", "nodes", "units", "voxels", "k_true", *KINDS)
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


def _number(field: str, label: str, step: float = 1) -> html.Label:
    """A bounded number input."""
    lo, hi = LIMITS[field]
    return ui.labelled(label, dcc.Input(id=f"{P}-{field}", type="number", min=lo, max=hi, step=step))


def _radio(field: str, label: str) -> html.Label:
    """Radio items over the field's choices."""
    return ui.labelled(label, dcc.RadioItems(id=f"{P}-{field}", inline=True,
                                             options=[{"label": c.replace("_", "-"), "value": c} for c in CHOICES[field]]))


def _upload_row(kind: str) -> html.Div:
    """An upload button for one kind of file, the key of the file received (hidden) and its summary or error."""
    return html.Div([
        dcc.Upload(html.Button(f"Upload {kind}…", className="upload"), id=f"{P}-{kind}-upload", max_size=MAX_UPLOAD_BYTES),
        dcc.Input(id=f"{P}-{kind}", type="hidden"),
        html.Span(UPLOAD_LABELS[kind], id=f"{P}-{kind}-status", className="status"),
    ], className="upload-row")


def _table(table_id: str, rows: int = 12) -> dash_table.DataTable:
    """A sortable, paged table."""
    return dash_table.DataTable(id=table_id, page_size=rows, sort_action="native",
                                style_cell={"fontFamily": "ui-monospace, monospace", "fontSize": "0.85em",
                                            "whiteSpace": "normal", "height": "auto", "textAlign": "left"})


def layout(**_query: Any) -> html.Div:
    """The page's components."""
    return html.Div([
        dcc.Location(id=f"{P}-url", refresh=False), dcc.Store(id=f"{P}-state"), dcc.Store(id=f"{P}-request"),
        dcc.Store(id=f"{P}-meta"),
        html.H2(NAME), ui.help_box(HELP), ui.message_box(f"{P}-msg-state"), ui.message_box(f"{P}-msg"),
        html.Div([_radio("source", "Data"), ui.model_picker(P), _number("tr", "TR (s)", 0.1), _number("k", "Atoms K"),
                  _number("alpha", "Sparsity α", 0.05), _number("seed", "Seed"), _radio("method", "Encoding"),
                  _radio("encoding", "Atoms per model"),
                  _number("n_perm", "Permutations"), html.Button("Run", id=f"{P}-go", className="go")],
                 className="controls"),
        html.Details([html.Summary("Simulator size"),
                      html.Div([_number("n_tr", "Volumes"), _number("nodes", "Nodes"), _number("units", "Units per node"),
                                _number("voxels", "Voxels"), _number("k_true", "True atoms")], className="settings")],
                     className="settings-box"),
        html.Details([html.Summary("Checkpoint stimulus"),
                      html.Div([ui.labelled("Stimulus text (words at the word rate; empty = a built-in sample story)",
                                            dcc.Textarea(id=f"{P}-text", className="wide", placeholder=SAMPLE_STIMULUS,
                                                         style={"width": "100%", "height": 90})),
                                _number("word_rate", "Words per second", 0.1), _radio("kind", "Responses"),
                                _radio("pool", "Pooling into volumes")], className="settings")],
                     className="settings-box"),
        html.Details([html.Summary("Recorded data (upload)"),
                      html.Div([_upload_row(kind) for kind in KINDS], className="settings")],
                     id=f"{P}-upload-box", className="settings-box"),
        html.Div([html.Progress(id=f"{P}-progress", value="0", max="100", className="progress"),
                  html.Span(id=f"{P}-status", className="status"),
                  html.Button("Cancel", id=f"{P}-cancel", className="cancel", disabled=True)],
                 id=f"{P}-progress-row", className="progress-row"),
        html.Div(id=f"{P}-note", className="note"),
        html.H3("Measures"), _table(f"{P}-measures", 40),
        html.Div(id=f"{P}-recovery-box", children=[html.H3("Recovery against the simulator's truth"), _table(f"{P}-recovery")]),
        ui.figure_panel(f"{P}-atoms", "atoms under the words"),
        html.Div([ui.labelled("Atom", dcc.Dropdown(id=f"{P}-atom", clearable=False, style={"width": "10em"}))],
                 className="controls"),
        html.Div([ui.figure_panel(f"{P}-subgroup", "sub-group"), ui.figure_panel(f"{P}-map", "map by network")],
                 className="grid2"),
        html.H3("Sub-group (all ANs with a non-zero loading)"), _table(f"{P}-subgroup-table"),
        html.H3("Map: strongest voxels / regions of the atom"), _table(f"{P}-regions"),
        ui.figure_panel(f"{P}-similarity", "similarity"),
        html.H3("Atom x network similarity"), _table(f"{P}-similarity-table"),
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


def register(app: Dash, services: Services) -> None:
    """Register the page and its callbacks."""
    dash.register_page(__name__, path=PATH, name=NAME, order=ORDER, layout=layout, title=f"BriLLM · {NAME}")
    form = [f"{P}-{f}" for f in FORM]

    def result_of(meta: dict | None) -> OrgResult | None:
        """The finished run a meta record points to (None when the cache lost it)."""
        return services.cache.get(meta["key"]) if meta and meta.get("key") else None

    @app.callback(
        Output(f"{P}-state", "data"), Output(f"{P}-request", "data"), Output(f"{P}-url", "hash"),
        Output(f"{P}-model", "options"), Output(f"{P}-msg-state", "children"), *(Output(i, "value") for i in form),
        Input(f"{P}-url", "hash"), Input(f"{P}-go", "n_clicks"), Input(f"{P}-atom", "value"),
        State(f"{P}-state", "data"), *(State(i, "value") for i in form),
    )
    def reduce(url_hash, _go, atom, current, *values):
        """Hash -> settings (and a run); Run -> settings from the controls; atom choice -> view state."""
        names = services.registry.names()
        trigger = ctx.triggered_id
        old = parse(current)[0] if current else None
        keep = (no_update,) * len(form)
        if old is None or trigger == f"{P}-url":
            settings, warnings = from_hash(url_hash)
            if old is not None and to_hash(settings) == to_hash(old):
                return (no_update,) * 5 + keep
            if settings.model not in names:
                if settings.model:
                    warnings.append(f"checkpoint {settings.model[:60]!r} is not in the model folders")
                settings = parse({**settings.__dict__, "model": names[0] if names else ""})[0]
            return (settings.__dict__, settings.request(), with_other_pages(to_hash(settings), url_hash),
                    [{"label": n, "value": n} for n in names], ui.messages([], warnings),
                    *(getattr(settings, f) for f in FORM))
        if trigger == f"{P}-go":
            settings, warnings = parse({**old.__dict__, **dict(zip(FORM, values)), "atom": 0})
            if settings.model not in names:
                settings = parse({**settings.__dict__, "model": old.model})[0]
            return (settings.__dict__, settings.request(), with_other_pages(to_hash(settings), url_hash), no_update,
                    ui.messages([], warnings), *keep)
        settings = parse({**old.__dict__, "atom": atom if atom is not None else old.atom})[0]
        return (settings.__dict__, no_update, with_other_pages(to_hash(settings), url_hash), no_update, no_update,
                *keep)

    @pathview.background_job(app, P, interval=300)
    def job(set_progress, request):
        """Run the pipeline (or find it in the cache) and point the page to the result."""
        settings, _ = parse(request or {})
        meta: dict[str, Any] = {"request": request, "error": ""}
        try:
            checkpoint = services.registry.load(settings.model) if settings.source != "sim" else None
            key = cache_key("organization", checkpoint.model_id if checkpoint else "simulator", settings.request())
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

    @app.callback(
        Output(f"{P}-measures", "data"), Output(f"{P}-measures", "columns"),
        Output(f"{P}-recovery", "data"), Output(f"{P}-recovery", "columns"), Output(f"{P}-recovery-box", "hidden"),
        Output(f"{P}-atoms", "figure"), Output(f"{P}-atom", "options"), Output(f"{P}-atom", "value"),
        Output(f"{P}-subgroup", "figure"), Output(f"{P}-map", "figure"),
        Output(f"{P}-subgroup-table", "data"), Output(f"{P}-subgroup-table", "columns"),
        Output(f"{P}-regions", "data"), Output(f"{P}-regions", "columns"),
        Output(f"{P}-similarity", "figure"), Output(f"{P}-similarity-table", "data"),
        Output(f"{P}-similarity-table", "columns"), Output(f"{P}-msg", "children"),
        Output(f"{P}-note", "children", allow_duplicate=True),
        Input(f"{P}-meta", "data"), Input(f"{P}-state", "data"), prevent_initial_call=True,
    )
    def render(meta, state_data):
        """Every table and figure of the finished run, for the chosen atom."""
        result = result_of(meta)
        if result is None:
            empty = common.placeholder("Press Run." if not meta or not meta.get("error") else "No result.")
            errors = [meta["error"]] if meta and meta.get("error") else (
                ["The result is no longer cached; press Run again."] if meta and meta.get("key") else [])
            return ([], [], [], [], True, empty, [], None, empty, empty, [], [], [], [], empty, [], [],
                    ui.messages(errors), no_update)
        settings, _ = parse(state_data or {})
        rep = result.report
        atom = min(settings.atom, rep.atom_model.k - 1)
        names = rep.match.network_names
        measures = _records(pd.DataFrame(fig.measures_rows(rep.measures, rep.controls)))
        recovery = [{"figure": k, "value": round(v, 4) if isinstance(v, float) else str(v)}
                    for k, v in (result.recovery or {}).items() if not isinstance(v, list)]
        group = subgroup_frame(result, atom)
        enc = rep.encoding
        regions = fig.region_table(enc.betas[atom], enc.t[atom], enc.q[atom], enc.significant[atom],
                                   result.templates, names, rep.brain.voxel_names)
        similarity = rep.similarity_table()
        warnings = list(rep.warnings)
        if rep.brain.nan_voxels.size or rep.brain.constant_voxels.size:
            warnings.append(f"{rep.brain.nan_voxels.size} NaN and {rep.brain.constant_voxels.size} constant voxels "
                            "were excluded (their maps are empty)")
        return (
            *measures, recovery, [{"name": c, "id": c} for c in ("figure", "value")], not recovery,
            fig.atoms_under_words(rep.atom_model.atoms, result.words, result.tr, atom),
            [{"label": f"atom {i}", "value": i} for i in range(rep.atom_model.k)], atom,
            fig.subgroup_bars(group["label"].tolist(), group["loading"].to_numpy(), atom),
            fig.map_by_network(enc.t[atom], enc.significant[atom], result.templates, names, atom),
            *_records(group), *_records(regions),
            fig.similarity_heatmap(rep.match.r, rep.match.dice, rep.match.matches, names), *_records(similarity),
            ui.messages([], warnings), result.note,
        )

    for kind in KINDS:
        _register_upload(app, services, kind)

    @app.callback(Output(f"{P}-upload-box", "open"), Input(f"{P}-source", "value"))
    def show_uploads(source):
        """Open the upload section when the data source is an uploaded recording."""
        return source == "upload"

    @app.callback(
        Output(f"{P}-download", "data"),
        Input(f"{P}-csv-similarity", "n_clicks"), Input(f"{P}-csv-subgroups", "n_clicks"),
        Input(f"{P}-csv-maps", "n_clicks"), Input(f"{P}-json", "n_clicks"),
        State(f"{P}-meta", "data"), State(f"{P}-state", "data"), prevent_initial_call=True,
    )
    def export(_s, _g, _m, _j, meta, state_data):
        """Tables as CSV, or the whole report as JSON carrying the view state."""
        result = result_of(meta)
        if result is None:
            return no_update
        trigger = ctx.triggered_id
        tables = result.report.tables()
        for suffix, table in (("similarity", "similarity"), ("subgroups", "subgroups"), ("maps", "maps")):
            if trigger == f"{P}-csv-{suffix}":
                return dcc.send_data_frame(tables[table].to_csv, f"brillm-organization-{suffix}.csv", index=False)
        settings, _ = parse(state_data or {})
        data = _finite({"settings": settings.__dict__, "hash": to_hash(settings), "recovery": result.recovery,
                        "note": result.note, "report": result.report.summary()})
        return {"content": export_document("organization", ViewState(model=settings.model), data),
                "filename": "brillm-organization.json"}


def _register_upload(app: Dash, services: Services, kind: str) -> None:
    """Receive one kind of upload: check and summarise it, keep it in the cache, put its key in the form."""

    @app.callback(
        Output(f"{P}-{kind}", "value", allow_duplicate=True), Output(f"{P}-{kind}-status", "children"),
        Input(f"{P}-{kind}-upload", "contents"), State(f"{P}-{kind}-upload", "filename"),
        State(f"{P}-word_rate", "value"), prevent_initial_call=True,
    )
    def receive(contents, filename, word_rate):
        """A summary of the file and its key, or the reason it cannot be used."""
        try:
            upload = decode(contents, filename)
            summary = describe(kind, upload, float(word_rate or 2.5))
        except (BriLLMError, ValueError) as exc:
            return "", html.Span(str(exc), className="upload-error")
        return store(services.cache, upload), html.Span(f"✓ {summary}", className="upload-ok")


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
