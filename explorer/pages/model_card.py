"""Model card: sizes, own vs shared rows, tokeniser, and the metadata's training and evaluation."""

from __future__ import annotations

import json
from typing import Any

import dash
import numpy as np
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from brillm_core import BriLLMError, Checkpoint, memory_profile

from .. import components as ui
from ..context import Services
from ..figures import card, common
from ..pathview import resolve_model, stand_in
from ..state import export_document, from_hash, to_hash

NAME, PATH, ORDER = "Model card", "/card", 9
P = "mc"


class ID:
    """The page's component ids, defined once."""

    frame = ui.frame_ids(P)
    body, own, memory, loss = f"{P}-body", f"{P}-own", f"{P}-memory", f"{P}-loss"

SAMPLE_TOKENS = 40
CARD_FILE = "MODEL_CARD.md"
MAX_CARD_CHARS = 200_000
HELP = [html.P("What a checkpoint is: its sizes, how many edges have a parameter row of their own (the rest share "
               "row 0, so their outputs tie), its tokeniser, what its memory learned (the weight a_j of the "
               "output k steps back, averaged over the steps of a training-length path: the weights depend only "
               "on positions, never on the text), and whatever its metadata.json records about "
               "training and evaluation. Loss curves are drawn from any list of numbers under a key naming a "
               "loss or perplexity.")]


def layout(**_query: Any) -> html.Div:
    """The page's components."""
    return html.Div([
        dcc.Location(id=ID.frame.url, refresh=False),
        html.H2(NAME), ui.help_box(HELP), ui.message_box(ID.frame.msg),
        html.Div([ui.model_picker(P)], className="controls"),
        html.Div(id=ID.body),
        ui.figure_panel(ID.own, "own rows per node"),
        ui.figure_panel(ID.memory, "memory by distance"),
        ui.figure_panel(ID.loss, "training curves"),
        ui.export_row(P, [("json", "Card JSON (with view state)")]),
    ], className="page")


def facts(checkpoint: Checkpoint) -> dict[str, Any]:
    """The card's numbers."""
    sizes = checkpoint.model.describe()
    tokens = [checkpoint.token(n) for n in range(min(SAMPLE_TOKENS, checkpoint.config.vocab_size))]
    return {"name": checkpoint.path.name if checkpoint.path else "", "model_id": checkpoint.model_id, **sizes,
            "tokenizer": checkpoint.tokenizer.kind, "unk_id": checkpoint.tokenizer.unk_id, "first_tokens": tokens}


def profile_length(checkpoint: Checkpoint) -> int:
    """Path length the memory chart summarises: the training sequence length, else 32 (both within the table)."""
    settings = checkpoint.metadata.get("training", {}).get("settings", {})
    length = settings.get("seq_len") if isinstance(settings, dict) else None
    length = length if isinstance(length, int) and not isinstance(length, bool) else 32
    return max(3, min(length, checkpoint.config.max_positions))


def body(checkpoint: Checkpoint) -> list[Any]:
    """A table of facts and the raw metadata."""
    rows = [html.Tr([html.Td(k), html.Td(f"{v:.4%}" if k == "stored_fraction" else
                                         (f"{v:,}" if isinstance(v, int) else str(v)))])
            for k, v in facts(checkpoint).items() if k != "first_tokens"]
    sample = " ".join(common.show_token(t) for t in facts(checkpoint)["first_tokens"])
    written = checkpoint.path / CARD_FILE if checkpoint.path else None
    prose = [dcc.Markdown(written.read_text(encoding="utf-8", errors="replace")[:MAX_CARD_CHARS],
                          className="model-card-text")] if written and written.is_file() else []
    return [*prose, html.Table(rows, className="card-table"), html.P(f"First tokens: {sample}"),
            html.Details([html.Summary("metadata.json"),
                          html.Pre(json.dumps(checkpoint.metadata, indent=2, ensure_ascii=False)[:200_000],
                                   className="metadata")], open=False)]


def render(services: Services, trigger: str | None, url_hash: str | None, picked: str | None) -> tuple[Any, ...]:
    """The card of the checkpoint named in the hash or picked (order of ``RENDERED``)."""
    state, warnings = from_hash(url_hash)
    names = services.registry.names()
    if trigger == ID.frame.model and picked in names:
        state = state.with_(model=picked)
    state, more = resolve_model(state, names, stand_in(services, state, names))
    options = [{"label": n, "value": n} for n in names]
    empty = common.placeholder("No checkpoint.")
    try:
        checkpoint = services.registry.load(state.model)
    except BriLLMError as exc:
        return [], empty, empty, empty, ui.messages([str(exc)], warnings + more), no_update, state.model, options
    own = np.bincount(checkpoint.model.edges.own_pairs()[0].numpy(), minlength=checkpoint.config.vocab_size)
    series = card.numeric_series(checkpoint.metadata)
    loss = card.loss_curves(series) if series else common.placeholder("metadata.json holds no loss curve.")
    memory = memory_profile(checkpoint.model, profile_length(checkpoint)) if checkpoint.config.max_positions >= 3 else None
    memory_figure = (card.memory_by_distance(list(memory.by_distance), memory.entropy, memory.length) if memory
                     else common.placeholder("The position table is too short for a memory."))
    return (body(checkpoint), card.own_rows_histogram(own), memory_figure, loss, ui.messages([], warnings + more),
            to_hash(state) or "#", state.model, options)


def export(services: Services, url_hash: str | None) -> dict[str, str]:
    """The card's facts and metadata as a view file, with the view state."""
    state, _ = from_hash(url_hash)
    state, _ = resolve_model(state, services.registry.names())
    checkpoint = services.registry.load(state.model)
    data = {"facts": facts(checkpoint), "metadata": checkpoint.metadata}
    return {"content": export_document("model-card", state, data), "filename": "brillm-model-card.json"}


RENDERED = [(ID.body, "children"), (ID.own, "figure"), (ID.memory, "figure"), (ID.loss, "figure"), (ID.frame.msg, "children"),
            (ID.frame.url, "hash"), (ID.frame.model, "value"), (ID.frame.model, "options")]


def register(app: Dash, services: Services) -> None:
    """Register the page and wire its callbacks to its ids."""
    dash.register_page(__name__, path=PATH, name=NAME, order=ORDER, layout=layout, title=f"BriLLM · {NAME}")
    app.callback(*(Output(i, prop) for i, prop in RENDERED), Input(ID.frame.url, "hash"), Input(ID.frame.model, "value"),
                 )(lambda url_hash, picked: render(services, ctx.triggered_id, url_hash, picked))
    app.callback(Output(ID.frame.download, "data"), Input(ID.frame.json, "n_clicks"), State(ID.frame.url, "hash"),
                 prevent_initial_call=True)(lambda _clicks, url_hash: export(services, url_hash))
