"""'Open view file': an exported JSON reopens the view it came from, with its state."""

from __future__ import annotations

import base64
import binascii

import dash
from dash import Dash, Input, Output, dcc, html, no_update

from brillm_core import BriLLMError
from brillm_core.jsonfile import loads as checked_json

from .state import import_document, to_hash

MAX_FILE_BYTES = 64 * 2**20


def opener() -> html.Div:
    """The nav bar's upload button, its message and the location it navigates with."""
    return html.Div([
        dcc.Upload(html.Button("Open view file", title="reopen a view from its exported JSON"), id="open-view",
                   max_size=MAX_FILE_BYTES, accept=".json,application/json"),
        html.Span(id="open-view-msg", className="open-msg"),
        dcc.Location(id="open-view-go", refresh=True),
    ], className="opener")


def view_path(view: str) -> str | None:
    """URL path of the page that exported ``view`` (its module name, '-' for '_')."""
    module = view.replace("-", "_")
    for page in dash.page_registry.values():
        if page["module"].rsplit(".", 1)[-1] == module:
            return page["path"]
    return None


def register(app: Dash) -> None:
    """Read an uploaded view file and go to its page with its state in the hash."""

    @app.callback(Output("open-view-go", "href"), Output("open-view-msg", "children"),
                  Input("open-view", "contents"), prevent_initial_call=True)
    def open_view(contents: str | None):
        """Navigate to the file's view, or say why the file cannot be opened."""
        try:
            text = base64.b64decode((contents or "").split(",", 1)[-1], validate=True).decode("utf-8")
            checked_json(text, "the file")  # depth, number and size limits before the state reader sees it
            view, state, warnings = import_document(text)
        except (ValueError, BriLLMError, binascii.Error, UnicodeDecodeError) as exc:
            return no_update, f"cannot open this file: {exc}"
        path = view_path(view)
        if path is None:
            return no_update, f"cannot open this file: it comes from an unknown view {view!r}"
        return path + (to_hash(state) or ""), "; ".join(warnings)
