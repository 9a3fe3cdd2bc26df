"""The running app under stress: its cache deleted and corrupted, a bounded cache evicting, and load.

The load test is benchmarks/load_test.py at CI size, run as a user runs it: gunicorn with two workers
sharing one disk cache (the production configuration, docs/serving.md), 10 sessions for 20 s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest
import requests
import torch
from werkzeug.serving import make_server

from explorer.testing.dash_client import DashSession, dependencies, recall, trace
from explorer.testing.server import ROOT, free_port, server_log, start_server, stop_server
from explorer.app import create_app
from explorer.cache import ResultCache

from .conftest import forget_memory


@pytest.fixture
def served(model_root: Path, cache_dir: Path) -> Iterator[str]:
    """The app on a free loopback port, in this process."""
    server = make_server("127.0.0.1", 0, create_app([model_root], cache_dir).server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


def test_cache_deleted_then_corrupted_under_a_running_app(served: str, cache_dir: Path) -> None:
    http = requests.Session()
    session = DashSession(served, dependencies(served, http), http)
    trace(session, "alpha", "abc", 4)
    shutil.rmtree(cache_dir)
    trace(session, "alpha", "abc", 4)  # the result the page had: from memory or recomputed
    trace(session, "alpha", "new prompt", 5)  # a new job: needs the job store and the result cache
    assert (cache_dir / "results" / "cache.db").is_file() and (cache_dir / "jobs" / "cache.db").is_file()
    for db in cache_dir.glob("*/cache.db*"):
        db.write_bytes(b"\0garbage, not SQLite" * 512)
    trace(session, "beta", "corrupt", 3)
    recall(session, "beta", "corrupt", 2)
    assert requests.get(served + "/", timeout=30).status_code == 200


def test_bounded_cache_evicts_the_oldest(cache_dir: Path) -> None:
    cache = ResultCache(cache_dir, size_limit=400_000)  # room for ~36 entries; diskcache evicts 10 at a time
    for i in range(60):
        cache.set(f"k{i}", bytes(10_000))
    forget_memory(cache)
    assert cache.volume() < 500_000
    assert cache.get("k0") is None and cache.get("k59") is not None


@pytest.mark.slow
def test_gunicorn_two_workers_under_load(model_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("gunicorn")
    port = free_port()
    proc = start_server("gunicorn", model_root, tmp_path / "cache", port, workers=2, threads=8)
    try:
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "load_test.py"), "--url", f"http://127.0.0.1:{port}",
                        "--pid", str(proc.pid), "--models", "alpha,beta", "--sessions", "10", "--duration", "20",
                        "--json", str(tmp_path / "report.json")], cwd=ROOT, timeout=300, check=False)
    finally:
        stop_server(proc)
    report = json.loads((tmp_path / "report.json").read_text())
    log = server_log("gunicorn", tmp_path / "cache").read_text()[-3000:]  # why a worker went away
    assert report["errors"] == [], log
    assert report["latency_ms"]["trace"]["n"] >= 10 and report["latency_ms"]["compare"]["n"] >= 10
    steady = [mb for t, mb in report["memory_mb"] if t >= 5]
    assert max(steady[len(steady) // 2:]) < 1.5 * max(steady[: len(steady) // 2]) + 200, report["memory_mb"]


def test_a_new_app_is_set_up_before_its_first_request(model_root: Path, tmp_path: Path) -> None:
    """Dash set itself up (pages routing, callback list) on the first request: two first requests at once
    raced through that under a threaded server, one answered HTTP 500 or a callback list without the
    routing, and the page stayed blank. Now the setup is done when the app is built, so a request
    changes nothing (``explorer.app.set_up_now``), and first requests at once all answer."""
    app = create_app([model_root], tmp_path / "cache")
    callbacks = dict(app.callback_map)
    start = threading.Barrier(8)

    def first_request(path: str) -> int:
        client = app.server.test_client()
        start.wait()
        return client.get(path).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(first_request, ["/_dash-dependencies", "/_dash-layout"] * 4))
    assert codes == [200] * 8
    assert app.callback_map.keys() == callbacks.keys()


def test_the_server_runs_its_tensor_work_on_one_thread(model_root: Path, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        create_app([model_root], tmp_path / "cache")
        assert torch.get_num_threads() == 1  # OpenMP's hand-off between threads costs more than the server's ops
    finally:
        torch.set_num_threads(before)
