"""Callback requests that do not fit the app are answered 400 (Bad Request), never 500.

One check where Dash dispatches every callback (the view of ``/_dash-update-component``): the body
must name a callback the server runs and send exactly its inputs and states, and a callback that
cannot use the values it was sent (a string where the browser sends a record, say) is a bad
request too. Forged payloads used to reach the callbacks' code and end in a server error; the
server log keeps a line for each refused one.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Callable

import flask
from dash import Dash
from dash.exceptions import BackgroundCallbackError, UnsupportedRelativePath
from werkzeug.exceptions import BadRequest

from brillm_core import BriLLMError

DISPATCH_PATH = "/_dash-update-component"
# What a callback raises on values of the wrong type or shape, or naming what is not there (a checkpoint, a
# page path); a job's error arrives as BackgroundCallbackError
INPUT_ERRORS = (TypeError, ValueError, KeyError, IndexError, AttributeError, BriLLMError, BackgroundCallbackError,
                UnsupportedRelativePath)
log = logging.getLogger(__name__)


def guard_callbacks(app: Dash) -> None:
    """Wrap Dash's callback dispatch so that requests that do not fit are answered 400."""
    endpoint = next(rule.endpoint for rule in app.server.url_map.iter_rules() if rule.rule == DISPATCH_PATH)
    app.server.view_functions[endpoint] = guarded(app.server.view_functions[endpoint], app.callback_map)


def guarded(view: Callable[..., Any], callbacks: dict[str, dict[str, Any]]) -> Callable[..., Any]:
    """``view`` behind the body check, with input errors of the callbacks turned into 400."""
    @functools.wraps(view)
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        body = flask.request.get_json(silent=True)
        problem = body_problem(body, callbacks)
        if problem:
            raise BadRequest(problem)
        try:
            return view(*args, **kwargs)
        except INPUT_ERRORS as exc:
            log.warning("callback %s refused its input: %s: %s", body["output"][:120], type(exc).__name__,
                        str(exc)[:300])
            raise BadRequest(f"the callback could not use the values it was sent ({type(exc).__name__})") from exc
    return dispatch


def body_problem(body: Any, callbacks: dict[str, dict[str, Any]]) -> str | None:
    """What is wrong with a callback request's body (None when it fits a callback of the app)."""
    if not isinstance(body, dict):
        return "the request is not a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or output not in callbacks:
        return "the request names no callback that this server runs"
    if not isinstance(body.get("changedPropIds", []), list) or not isinstance(body.get("outputs", {}), (dict, list)):
        return "the request's changedPropIds or outputs are malformed"
    for part in ("inputs", "state"):
        sent, declared = body.get(part, []), callbacks[output][part]
        if not isinstance(sent, list) or len(sent) != len(declared):
            return f"the request's {part} do not match the callback's"
        for entry, spec in zip(sent, declared):
            if not fits(entry, spec):
                return f"the request's {part} do not match the callback's ({spec['id']}.{spec['property']})"
    return None


def fits(entry: Any, spec: dict[str, str]) -> bool:
    """True when a sent input or state is the one declared: its id and property, or for a pattern (an id given
    as JSON with wildcards) a list of entries of that pattern's type and property."""
    if spec["id"].startswith("{"):
        kind = json.loads(spec["id"]).get("type")
        return isinstance(entry, list) and all(
            isinstance(e, dict) and isinstance(e.get("id"), dict) and e["id"].get("type") == kind
            and e.get("property") == spec["property"] for e in entry)
    return isinstance(entry, dict) and entry.get("id") == spec["id"] and entry.get("property") == spec["property"]
