"""The corpus against the running app: bad links, broken checkpoints and forged requests over HTTP.

The app runs in this process (see conftest); callbacks are called exactly as the browser
calls them (``explorer.testing.dash_client``). An audit hook records every file the process and
its forked background jobs open while the bad input is served: nothing outside the model
folders, the cache and the installed code is read, and nothing outside the cache written.
"""

from __future__ import annotations

import base64
import http.client
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import psutil
import pytest
import requests

from explorer.testing.dash_client import DashSession, dependencies

from . import corpus

_LOG: dict[str, int | None] = {"fd": None}
ROOT = Path(__file__).resolve().parents[2]


def _audit(event: str, args: tuple) -> None:
    """Append every opened path (and whether for writing) to the log while recording."""
    fd = _LOG["fd"]
    if fd is None or event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    mode, flags = args[1], args[2] or 0
    writing = bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)) or any(c in str(mode or "") for c in "wax+")
    os.write(fd, f"{'w' if writing else 'r'}\t{os.path.abspath(os.fsdecode(args[0]))}\n".encode())


sys.addaudithook(_audit)


def texts(value: Any) -> str:
    """Every string inside a callback response (component trees included), joined."""
    if isinstance(value, str):
        return value + "\n"
    if isinstance(value, dict):
        return "".join(texts(v) for v in value.values())
    if isinstance(value, list):
        return "".join(texts(v) for v in value)
    return ""


@pytest.fixture(scope="module")
def opened(served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The log of files opened while this module's requests are served (recording stops in the last test)."""
    log = tmp_path_factory.mktemp("audit") / "opened.log"
    _LOG["fd"] = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    yield log
    stop_recording()


def stop_recording() -> None:
    """Stop the audit log (idempotent)."""
    fd, _LOG["fd"] = _LOG["fd"], None
    if fd is not None:
        os.close(fd)


@pytest.fixture(scope="module")
def session(served, opened) -> DashSession:
    """A page load of the served app."""
    http = requests.Session()
    return DashSession(str(served["url"]), dependencies(str(served["url"]), http), http)


def signal_path(s: DashSession, link: str) -> str:
    """Open a Signal path link: reducer, job (unless answered from the cache), render; all the text the page then shows."""
    out, meta = s.open_link("sp", link)
    shown = texts(out.get("sp-msg-state", {}))
    if meta is None:
        return shown
    view = out if "sp-chips" in out else s.call("sp-chips.children", {"sp-to-render.data": meta}, "sp-to-render.data")
    return shown + texts(view.get("sp-msg", {}))


@pytest.mark.parametrize("name", sorted(corpus.LINKS))
def test_bad_link_shows_a_message(session, name: str) -> None:
    link, fragment = corpus.LINKS[name]
    assert fragment in signal_path(session, link)


@pytest.mark.parametrize("name", sorted(corpus.CHECKPOINT_DAMAGE))
def test_broken_checkpoint_shows_its_fault(session, files, name: str) -> None:
    shown = signal_path(session, f"#m={name}&p=ab")
    listed = (files[0][name].path / "config.json").is_file()
    assert (files[0][name].message if listed else "not in the configured model folders") in shown


@pytest.mark.parametrize("path", [
    "/assets/../../../../etc/passwd", "/assets/..%2f..%2fexplorer%2fapp.py", "/%2e%2e/%2e%2e/etc/passwd",
    "/_dash-component-suites/dash/../../../../../etc/passwd", "/_dash-component-suites/..%2f..%2f..%2fetc/passwd",
    "/assets/%2e%2e/%2e%2e/outside/secret/config.json", "/?m=..%2Foutside%2Fsecret&p=ab",
    "/card?m=/etc/passwd", "/_dash-layout?path=../../etc/passwd",
])
def test_traversal_paths_serve_nothing_outside(served, opened, path: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(str(served["url"]).rsplit(":", 1)[1]), timeout=30)
    connection.request("GET", path)  # sent as is: no client-side normalisation of '..'
    response = connection.getresponse()
    body = response.read()
    assert response.status in (200, 400, 404)
    assert b"root:" not in body and b"create_app" not in body and b"brillm-explorer/config" not in body


@pytest.mark.parametrize("values", [
    {"sp-to-render.data": {"key": "path:x", "request": {"model": "../outside/secret", "prompt": "ab"}}},
    {"sp-to-render.data": {"key": "path:x", "request": {"model": str(Path("/etc")), "step": "x"}}},
], ids=["meta-names-outside", "meta-names-etc"])
def test_forged_callback_state_reads_nothing_outside(session, values: dict) -> None:
    view = session.call("sp-chips.children", values, "sp-to-render.data")  # the render reads the meta from there
    assert "in the configured model folders" in texts(view.get("sp-msg", {}))


@pytest.mark.parametrize("values", [
    {"sp-meta.data": "not a dict", "sp-state.data": [1, 2]},
    {"sp-state.data": {"step": 10**30, "prompt": 5}, "sp-slider.value": "9" * 400, "sp-meta.data": {"n_steps": -1}},
    {"sp-url.hash": ["#m=good"], "sp-state.data": None},
], ids=["meta-wrong-type", "absurd-numbers", "hash-wrong-type"])
def test_forged_payload_with_wrong_types_is_answered(served, session, values: dict) -> None:
    for target in ("sp-chips.children", "sp-state.data"):
        try:
            session.call(target, values, next(iter(values)))
        except Exception as exc:  # noqa: BLE001 - a 400 answer is right; a 500, a hang or a dead server is not
            assert "HTTP 400" in str(exc), exc
    assert requests.get(str(served["url"]) + "/", timeout=30).status_code == 200


@pytest.mark.parametrize("name", ["linked-file", "linked-dir"])
def test_links_out_of_the_model_folders_are_refused(session, name: str) -> None:
    assert "links to files outside the configured model folders" in signal_path(session, f"#m={name}&p=ab")


def test_oversized_request_body_is_refused(served) -> None:
    from explorer.app import MAX_REQUEST_BYTES

    body = b"{" + b" " * MAX_REQUEST_BYTES + b"}"
    answer = requests.post(str(served["url"]) + "/_dash-update-component", data=body,
                           headers={"Content-Type": "application/json"}, timeout=60)
    assert answer.status_code == 413
    assert requests.get(str(served["url"]) + "/", timeout=30).status_code == 200


@pytest.mark.parametrize("name", sorted(corpus.VIEW_FILES))
def test_bad_view_file_shows_a_message(session, name: str) -> None:
    """"Open view file" with a broken file: a message under the button, no navigation, no HTTP 500."""
    text, fragment = corpus.VIEW_FILES[name]
    contents = "data:application/json;base64," + base64.b64encode(text.encode()).decode()
    out = session.call("open-view-msg.children", {"open-view.contents": contents}, "open-view.contents")
    assert fragment in texts(out.get("open-view-msg", {}))
    assert "open-view-target" not in out


def test_finished_jobs_leave_no_zombies(session) -> None:
    """Every job process is reaped as it ends: none stays a zombie once its result has arrived."""
    signal_path(session, "#m=good&p=ba&n=2")
    for _ in range(100):  # the helper reaps the job just after its result is stored
        zombies = [c for c in psutil.Process().children(recursive=True) if c.status() == psutil.STATUS_ZOMBIE]
        if not zombies:
            break
        time.sleep(0.1)
    assert zombies == []


def test_nothing_outside_the_model_folders_was_read(served, opened, session) -> None:
    """Runs last in this module: serves one more good link, then checks the audit log."""
    assert "unknown node" not in signal_path(session, "#m=good&p=ab&n=3")
    session.http.close()
    stop_recording()
    records = [tuple(line.split("\t", 1)) for line in opened.read_text().splitlines()]
    code = [ROOT / d for d in ("explorer", "brillm_core", "brillm_explorer.egg-info", "assets")]
    system = [Path(sys.prefix), Path(sys.base_prefix), *map(Path, ("/proc", "/sys", "/dev", "/usr", "/etc/mime.types",
                                                                  "/etc/localtime"))]
    allowed_read = [served["models"], served["broken"], served["cache"], *code, *system]
    assert any(Path(p).is_relative_to(served["models"]) for _, p in records), "the audit hook saw no model read"
    outside = [p for _, p in records if not any(Path(p).is_relative_to(a) for a in allowed_read)]
    assert outside == []
    written = [p for mode, p in records if mode == "w" and not Path(p).is_relative_to(served["cache"])]
    assert written == []
    assert not [p for _, p in records if "outside" in Path(p).parts or p == "/etc/passwd"]
