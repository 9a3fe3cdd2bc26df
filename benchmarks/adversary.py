"""The costly requests of the security review, replayed while the load test's sessions use the server,
and two probes of what every user waits for (``load_test.py --adversary``; the probes run in every load test).

An attacker repeats, in turn: a recall cost estimate for a million hops; "Open view file" with 1 MB of
escaped quotes that never close; uploads of a CSV table of 100,000 columns and of a .npy file whose
header claims a trillion cells; eight recall links at the clamp from one browser (its jobs keep half
the job slots busy); callback requests with forged values; a trace of the longest path the test
models allow, from another browser (the first one's jobs wait behind its own). Each answer's HTTP
status is counted (a refusal is the right answer; a hang or a server error is not).

The probes: ``GET /`` four times a second, and the reopening of a link whose trace is cached (the page,
its layout and callback list, and the reducer's answer drawn from the cache), once a second.
"""

from __future__ import annotations

import base64
import io
import time
from typing import Callable
from urllib.parse import urlencode

import numpy as np
import requests

from explorer.testing.dash_client import DashError, DashSession, trace

Record = Callable[[str, float, str | None], None]  # (kind, start, error or None)
CLAMP = {"h": 32, "b": 64, "bm": 1024}
HOG_JOBS = 8


def data_url(data: bytes, kind: str = "application/octet-stream") -> str:
    """The ``contents`` of a dcc.Upload for ``data``."""
    return f"data:{kind};base64," + base64.b64encode(data).decode()


def _npy_claiming_a_trillion_cells() -> bytes:
    """A .npy file whose header claims 10^6 x 10^6 float64 over 96 bytes of data."""
    out = io.BytesIO()
    np.save(out, np.zeros((4, 3)))
    return out.getvalue().replace(b"(4, 3)", b"(1000000, 1000000)")


WIDE_CSV = data_url(((",".join(["1.5"] * 100_000) + "\n") * 2).encode(), "text/csv")
HUGE_NPY = data_url(_npy_claiming_a_trillion_cells())
UNCLOSED_QUOTES = data_url(('"' + '\\"' * 500_000).encode(), "application/json")


def upload(s: DashSession, name: str, contents: str) -> None:
    """Upload brain data on the organisation page."""
    s.call("fo-brain-status.children", {"fo-brain-upload.contents": contents, "fo-brain-upload.filename": name},
           "fo-brain-upload.contents")


def hog_jobs(s: DashSession, model: str) -> None:
    """Start recall jobs at the clamp from one browser, without waiting for them."""
    for n in range(HOG_JOBS):
        out = s.call("rc-state.data", {"rc-url.hash": "#" + urlencode({"m": model, "p": f"hog {n}", **CLAMP})},
                     "rc-url.hash")
        if "rc-request" in out:
            s.start("rc-meta.data", {"rc-request.data": out["rc-request"]["data"]}, "rc-request.data")


def forged(s: DashSession) -> None:
    """Callback requests whose values have the wrong types."""
    for output, values in (("sp-chips.children", {"sp-to-render.data": "not a meta"}),
                           ("sp-state.data", {"sp-url.hash": ["#m=x"], "sp-state.data": 7}),
                           ("rc-graph.figure", {"rc-meta.data": {"key": 5, "request": "x"}})):
        try:
            s.call(output, values, next(iter(values)))
        except DashError as exc:
            if "HTTP 400" not in str(exc):
                raise


def attacks(models: tuple[str, str]) -> dict[str, Callable[[DashSession], None]]:
    """Each attack by name."""
    return {
        "recall cost of 1,000,000 hops": lambda s: s.call(
            "rc-cost.children", {"rc-hops.value": 1_000_000, "rc-branch.value": 64, "rc-beam.value": 1024},
            "rc-hops.value"),
        "view file of 1 MB unclosed escaped quotes": lambda s: s.call(
            "open-view-msg.children", {"open-view.contents": UNCLOSED_QUOTES}, "open-view.contents"),
        "upload of 100,000 columns": lambda s: upload(s, "wide.csv", WIDE_CSV),
        "upload of a .npy claiming 10^12 cells": lambda s: upload(s, "huge.npy", HUGE_NPY),
        f"{HOG_JOBS} recall jobs at the clamp from one browser": lambda s: hog_jobs(s, models[0]),
        "forged callback values": forged,
        "trace of the longest path, from another browser": lambda s: trace(
            DashSession(s.base_url, s.callbacks, requests.Session(), timeout=60), models[0], "the longest", 50),
    }


def attacker(base_url: str, callbacks: list[dict], models: tuple[str, str], running: Callable[[], bool],
             record: Record) -> None:
    """Repeat every attack in turn until the run ends; each answer's status goes to ``record`` (``attack: ...``)."""
    http = requests.Session()
    session = DashSession(base_url, callbacks, http, timeout=60)
    while running():
        for name, attack in attacks(models).items():
            start = time.perf_counter()
            try:
                attack(session)
                record(f"attack: {name}", start, None)
            except (DashError, requests.RequestException) as exc:
                status = str(exc).split("HTTP ", 1)[1][:3] if "HTTP " in str(exc) else type(exc).__name__
                record(f"attack: {name}", start, status)
            if not running():
                return


def page_probe(base_url: str, running: Callable[[], bool], record: Record) -> None:
    """``GET /`` four times a second (kind ``probe: GET /``)."""
    http = requests.Session()
    while running():
        start = time.perf_counter()
        try:
            answer = http.get(base_url + "/", timeout=30)
            record("probe: GET /", start, None if answer.status_code == 200 else f"HTTP {answer.status_code}")
        except requests.RequestException as exc:
            record("probe: GET /", start, type(exc).__name__)
        time.sleep(0.25)


def reopen_probe(base_url: str, callbacks: list[dict], model: str, running: Callable[[], bool],
                 record: Record) -> None:
    """Trace a link once, then reopen it once a second as the browser does (kind ``probe: reopen``): the page,
    its layout and callback list, and the reducer, which answers from the cache with the drawn page."""
    http = requests.Session()
    link = "#" + urlencode({"m": model, "p": "cached link", "n": 8})
    try:
        trace(DashSession(base_url, callbacks, http, timeout=120), model, "cached link", 8)
    except (DashError, requests.RequestException) as exc:
        record("probe: reopen", time.perf_counter(), f"the first trace failed: {exc}")
        return
    while running():
        start = time.perf_counter()
        try:
            session = DashSession(base_url, callbacks, http, timeout=60)
            for path in ("/_dash-layout", "/_dash-dependencies"):
                session._get(path)
            out = session.call("sp-state.data", {"sp-url.hash": link}, "sp-url.hash")
            record("probe: reopen", start, None if "sp-meta" in out else "not answered from the cache")
        except (DashError, requests.RequestException) as exc:
            record("probe: reopen", start, type(exc).__name__)
        time.sleep(1.0)
