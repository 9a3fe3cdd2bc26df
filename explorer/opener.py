"""'Open view file': an exported JSON reopens the view it came from, with its state.

The page is opened as a pasted link opens (a fresh load of its path and hash). A ``dcc.Location``
with ``refresh=True`` cannot do this: it remembers the hash the app was loaded with and, on every
update, writes it back after the new href, so a file exported on the page it is opened from
reopened that page's first link instead.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import dash
from dash import Dash, Input, Output, dcc, html, no_update

from brillm_core import BriLLMError
from brillm_core.jsonfile import loads as checked_json

from .state import import_document, to_hash

MAX_FILE_BYTES = 64 * 2**20


def opener() -> html.Div:
    """The nav bar's upload button, its message and the link it opens."""
    return html.Div([
        dcc.Upload(html.Button("Open view file", title="reopen a view from its exported JSON"), id="open-view",
                   max_size=MAX_FILE_BYTES, accept=".json,application/json"),
        html.Span(id="open-view-msg", className="open-msg"),
        dcc.Store(id="open-view-target"),
    ], className="opener")


def view_path(view: str) -> str | None:
    """URL path of the page that exported ``view`` (its module name, '-' for '_')."""
    module = view.replace("-", "_")
    for page in dash.page_registry.values():
        if page["module"].rsplit(".", 1)[-1] == module:
            return page["path"]
    return None


def open_view(contents: str | None) -> tuple[Any, str]:
    """The link a view file reopens (path and hash), or no link and why the file cannot be opened."""
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


# Load the link as a new page: assigning a link that differs only in its hash would not reload.
GO = """function (link) {
    if (!link) { return window.dash_clientside.no_update; }
    var same = link.split("#")[0] === window.location.pathname;
    window.location.assign(link);
    if (same) { window.location.reload(); }
    return "opened " + link;
}"""


def register(app: Dash) -> None:
    """Read an uploaded view file and open its page with its state in the hash."""
    app.callback(Output("open-view-target", "data"), Output("open-view-msg", "children"),
                 Input("open-view", "contents"), prevent_initial_call=True)(open_view)
    app.clientside_callback(GO, Output("open-view-msg", "title"), Input("open-view-target", "data"),
                            prevent_initial_call=True)
