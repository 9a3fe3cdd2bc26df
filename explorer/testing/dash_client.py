"""A client of Dash's callback protocol over HTTP: the requests the browser's renderer sends.

Callbacks are found in ``/_dash-dependencies`` by an output they write, so the payloads
follow the app as it is rather than a recorded copy. A session opens the page (which
issues the signed ``end_id`` that background-callback handles are bound to), then calls
callbacks with the values it names; the others are sent as null, pattern-matching
(``ALL``) inputs as empty lists. Background callbacks are polled until their result (or started
and polled one request at a time: ``DashSession.start``).
``trace``, ``recall`` and ``compare`` open a page's link and check what the browser would show.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlencode

import requests

CONFIG = re.compile(r'<script id="_dash-config" type="application/json"[^>]*>(.*?)</script>', re.S)


class DashError(RuntimeError):
    """A callback answered with an unexpected status, or a background job never finished."""


def dependencies(base_url: str, http: requests.Session, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The app's callback list, as the renderer reads it."""
    response = http.get(f"{base_url}/_dash-dependencies", timeout=timeout)
    response.raise_for_status()
    return response.json()


def _outputs(key: str) -> list[dict[str, str]] | dict[str, str]:
    """The ``outputs`` field for a callback's output key (a list for multi-output callbacks; none for a
    callback without outputs, whose key is a hash)."""
    def one(part: str) -> dict[str, str]:
        component, prop = part.rsplit(".", 1)
        return {"id": component, "property": prop}

    if key.startswith(".."):
        return [one(part) for part in key[2:-2].split("...")]
    return one(key) if "." in key else []


def _item(spec: dict[str, str], values: dict[str, Any]) -> dict[str, Any] | list:
    """One input or state entry: its value, or [] for a pattern-matching id (no matches)."""
    if spec["id"].startswith("{"):
        return []
    return {**spec, "value": values.get(f"{spec['id']}.{spec['property']}")}


class DashSession:
    """One browser tab: a page load's end_id and the callbacks it calls. ``timeout`` bounds each request;
    ``patience`` (default: the same) bounds the wait for a background job, which a browser polls as long as
    its user waits (the job says meanwhile that it is queued or running)."""

    def __init__(self, base_url: str, callbacks: list[dict[str, Any]], http: requests.Session,
                 timeout: float = 60.0, page: str = "/", patience: float | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.callbacks = callbacks
        self.http = http
        self.timeout = timeout
        self.patience = timeout if patience is None else patience
        self.requests = 0
        response = self._get(page)
        found = CONFIG.search(response.text)
        if not found:
            raise DashError(f"GET {page}: no _dash-config in the page")
        self.end_id = json.loads(found.group(1)).get("end_id", "")

    def _get(self, path: str) -> requests.Response:
        """A GET that counts and must succeed."""
        self.requests += 1
        response = self.http.get(self.base_url + path, timeout=self.timeout)
        if response.status_code != 200:
            raise DashError(f"GET {path}: HTTP {response.status_code}")
        return response

    def find(self, output: str, changed: str = "") -> dict[str, Any]:
        """The callback whose output key is ``output`` (e.g. 'sp-meta.data'), else the first whose key contains it;
        of those, one that ``changed`` ('id.prop') triggers first (two callbacks may write one output)."""
        def fired(dep: dict[str, Any]) -> bool:
            return any(f"{i['id']}.{i['property']}" == changed for i in dep["inputs"])

        for dep in sorted(self.callbacks, key=lambda d: (d["output"] != output, not fired(d))):
            if output in dep["output"]:
                return dep
        raise DashError(f"no callback writes {output}")

    def open_link(self, prefix: str, link: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
        """Open a page's link as the renderer does: the page's reducer, then its job with the request, unless
        the reducer answered from the cache (it writes the meta itself then). Returns the reducer's outputs
        and the meta (None when nothing is asked)."""
        out = self.call(f"{prefix}-state.data", {f"{prefix}-url.hash": link}, f"{prefix}-url.hash")
        if f"{prefix}-meta" in out:
            return out, out[f"{prefix}-meta"]["data"]
        if f"{prefix}-request" not in out:
            return out, None
        job = self.call(f"{prefix}-meta.data", {f"{prefix}-request.data": out[f"{prefix}-request"]["data"]},
                        f"{prefix}-request.data")
        return out, job[f"{prefix}-meta"]["data"]

    def call(self, output: str, values: dict[str, Any], changed: str) -> dict[str, dict[str, Any]]:
        """Run the callback writing ``output`` with ``values`` ('id.prop' -> value) after a change
        of ``changed``; returns {component id: {prop: value}} ({} when nothing was updated)."""
        dep = self.find(output, changed)
        if dep.get("background") is not None:
            return self.start(output, values, changed).result()
        return self._post(self._body(dep, values, changed), {}).get("response", {})

    def start(self, output: str, values: dict[str, Any], changed: str) -> "Job":
        """Start the background callback writing ``output`` (as ``call``); its job, to poll."""
        dep = self.find(output, changed)
        body = self._body(dep, values, changed)
        started = self._post(body, {})
        if "cacheKey" not in started:
            raise DashError(f"{body['output']}: background callback did not start: {str(started)[:300]}")
        return Job(self, body, started, dep["background"].get("interval", 1000) / 1000)

    def _body(self, dep: dict[str, Any], values: dict[str, Any], changed: str) -> dict[str, Any]:
        """The request body of a callback call."""
        return {"output": dep["output"], "outputs": _outputs(dep["output"]),
                "inputs": [_item(s, values) for s in dep["inputs"]],
                "state": [_item(s, values) for s in dep["state"]], "changedPropIds": [changed]}

    def _post(self, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        """POST one callback request; 204 (no update) is an empty reply."""
        self.requests += 1
        response = self.http.post(f"{self.base_url}/_dash-update-component", json=body,
                                  params={"endId": self.end_id, **params}, timeout=self.timeout)
        if response.status_code == 204:
            return {}
        if response.status_code != 200:
            raise DashError(f"{body['output'][:60]}: HTTP {response.status_code}: {response.text[:300]}")
        return response.json()


class Job:
    """A background callback started by a session, polled with its signed handles as the renderer polls it."""

    def __init__(self, session: DashSession, body: dict[str, Any], started: dict[str, Any], interval: float) -> None:
        self.session, self.interval = session, interval
        self.output = body["output"]
        self.params = {"cacheKey": started["cacheKey"], "job": started["job"]}
        self.blank = {**body, "inputs": [_blank(i) for i in body["inputs"]], "state": [_blank(s) for s in body["state"]]}

    def poll(self) -> dict[str, Any]:
        """One poll: the reply, with "progress" while the job runs and "response" when it is done ({}: it ended
        without a result)."""
        return self.session._post(self.blank, self.params)

    def result(self) -> dict[str, dict[str, Any]]:
        """Poll until the job answers; its response."""
        deadline = time.monotonic() + self.session.patience
        while time.monotonic() < deadline:
            time.sleep(self.interval)
            reply = self.poll()
            if "response" in reply:
                return reply["response"]
            if not reply:
                raise DashError(f"{self.output}: background job ended without a result")
        raise DashError(f"{self.output}: background job still running after {self.session.patience:.0f} s")


def _blank(entry: dict[str, Any] | list) -> dict[str, Any] | list:
    """An input entry with its value cleared, as the renderer sends it while polling."""
    return {**entry, "value": None} if isinstance(entry, dict) else entry


def trace(s: DashSession, model: str, prompt: str, n: int) -> tuple[dict, dict]:
    """Open a Signal path link, run its trace job (or take the cached answer), render it; returns (state, meta)."""
    hash_ = "#" + urlencode({"m": model, "p": prompt, "n": n})
    out, meta = s.open_link("sp", hash_)
    state = out["sp-state"]["data"]
    _check(meta is not None and not meta.get("error"), f"trace job failed: {(meta or {}).get('error')}")
    # a cached answer comes drawn with the reducer's outputs; a job's meta goes to the render through its store
    view = out if "sp-steps" in out else s.call("sp-steps.data", {"sp-to-render.data": meta}, "sp-to-render.data")
    # One chip per path node; a BPE prompt has fewer tokens than characters, so count from the path.
    _check(len(view["sp-chips"]["children"]) == len(meta["path"]) and meta["n_steps"] >= n,
           "wrong number of token chips")
    _check(view["sp-steps"]["data"]["n"] == meta["n_steps"], "the step store does not hold every step")
    return state, meta


def recall(s: DashSession, model: str, prompt: str, hops: int) -> None:
    """Open a Recall link, run the job, render graph and table."""
    hash_ = "#" + urlencode({"m": model, "p": prompt, "h": hops, "b": 3, "bm": 16})
    out, meta = s.open_link("rc", hash_)
    _check(meta is not None and not meta.get("error"), f"recall job failed: {(meta or {}).get('error')}")
    view = s.call("rc-graph.figure", {"rc-meta.data": meta, "rc-state.data": out["rc-state"]["data"]}, "rc-meta.data")
    _check(len(view["rc-table"]["data"]) > 0, "empty recall table")


def compare(s: DashSession, a: str, b: str, prompt: str, n: int) -> None:
    """Open a Compare link, run the job, render both paths."""
    hash_ = "#" + urlencode({"m": a, "mb": b, "p": prompt, "n": n})
    _, meta = s.open_link("cp", hash_)
    _check(meta is not None and not meta.get("error"), f"compare job failed: {(meta or {}).get('error')}")
    view = s.call("cp-paths.children", {"cp-meta.data": meta}, "cp-meta.data")
    _check(len(view["cp-paths"]["children"]) == 2, "compare did not draw two paths")


def _check(condition: bool, message: str) -> None:
    """Raise when a response does not show what the browser would show."""
    if not condition:
        raise DashError(message)
