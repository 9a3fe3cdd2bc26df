"""Background jobs under adversity: a slow request, one client asking for every slot, a server that stops.

Jobs are forked by the app's helper process (``explorer.job_helper``); a test holds some of them
(those whose prompt starts with "hold") while its flag file exists, by patching the helper's job
runner before the app, and so the helper, is built.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psutil
import pytest
import requests
from werkzeug.serving import make_server

from explorer import job_helper
from explorer.app import create_app
from explorer.job_helper import JOB_NICENESS
from explorer.job_queue import JobQueue, QueueFull
from explorer.jobs import MAX_RUNNING_JOBS
from explorer.pages import recall as recall_page
from explorer.testing.dash_client import DashError, DashSession, dependencies, trace
from explorer.testing.server import free_port, start_server, stop_server

from . import corpus

HOLD_SECONDS = 120


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A folder with one small checkpoint, 'good'."""
    corpus.good_checkpoint(tmp_path / "models" / "good")
    return tmp_path / "models"


@pytest.fixture
def hold(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A flag file: while it exists, jobs whose prompt starts with "hold" wait before they start."""
    flag = tmp_path / "hold-jobs"
    run = job_helper.run_job

    def held(job, key, progress_key, args, context):
        end = time.time() + HOLD_SECONDS
        while str(args[0].get("prompt", "")).startswith("hold") and flag.exists() and time.time() < end:
            time.sleep(0.05)
        run(job, key, progress_key, args, context)

    monkeypatch.setattr(job_helper, "run_job", held)
    flag.touch()
    yield flag
    flag.unlink(missing_ok=True)


@contextmanager
def serve(app) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in this process; yields its URL."""
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def page(url: str, http: requests.Session | None = None, seconds: float = 60.0) -> DashSession:
    """A page load (``http`` carries the client's cookie)."""
    http = http or requests.Session()
    return DashSession(url, dependencies(url, http), http, timeout=seconds)


def start_trace(session: DashSession, prompt: str):
    """Open a Signal path link whose trace is not cached and start its job without waiting for it."""
    out = session.call("sp-state.data", {"sp-url.hash": f"#m=good&p={prompt}&n=2"}, "sp-url.hash")
    return session.start("sp-meta.data", {"sp-request.data": out["sp-request"]["data"]}, "sp-request.data")


def wait_for(condition, what: str, seconds: float = 60.0) -> None:
    """Poll until ``condition()`` holds (a bound for a hang, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_the_queue_bounds_the_slots_and_shares_them() -> None:
    queue = JobQueue(slots=4, per_client=2, max_waiting=3, max_total=5)
    for pid in (1, 2, 3):
        queue.admit("a")
        queue.add(pid, "a")
    assert queue.release() == [1, 2]  # a client's share: 2 of the 4 slots
    queue.add(10, "b")
    queue.add(11, "b")
    queue.add(12, "b")
    assert queue.release() == [10, 11] and queue.ahead() == {3: 0, 12: 1}
    queue.ended(1)
    assert queue.release() == [3]  # a's turn again: it runs 1, b runs 2
    queue.add(13, "c")
    queue.ended(2), queue.ended(10)
    assert queue.release() == [13, 12]  # c runs nothing yet, so it goes first
    for pid in (20, 21, 22):
        queue.add(pid, "d")
    with pytest.raises(QueueFull, match="you have 3 jobs waiting"):
        queue.admit("d")
    queue.add(30, "e"), queue.add(31, "e")
    with pytest.raises(QueueFull, match="5 jobs are waiting"):
        queue.admit("f")


def test_a_slow_request_holds_up_no_job_and_no_page(models: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A callback that takes long (a stand-in for any slow request) runs while another user starts a trace
    job and a third opens the page: both are answered at once. Forks used to wait for every request to leave
    the app, and new requests for the fork: the page load waited as long as the slow request."""
    inside, release = threading.Event(), threading.Event()

    def slow_cost(*_values):
        inside.set()
        release.wait(HOLD_SECONDS)
        return ""

    monkeypatch.setattr(recall_page, "cost", slow_cost)
    with serve(create_app([models], tmp_path / "cache")) as url:
        slow = page(url, seconds=HOLD_SECONDS)
        threading.Thread(target=slow.call, args=("rc-cost.children", {"rc-hops.value": 3}, "rc-hops.value"),
                         daemon=True).start()
        try:
            assert inside.wait(30)
            tracing = page(url, seconds=30)
            assert trace(tracing, "good", "ab", 3)[1]["n_steps"] >= 3
            start = time.perf_counter()
            assert requests.get(url + "/", timeout=30).status_code == 200
            assert time.perf_counter() - start < 2.0
        finally:
            release.set()


def test_one_client_cannot_hold_every_job_slot(models: Path, tmp_path: Path, hold: Path) -> None:
    """One browser starts more costly jobs than there are slots; another user's small trace still runs at
    once, the first browser's extra jobs say that they are queued, and every job yields the CPU to the server."""
    with serve(create_app([models], tmp_path / "cache")) as url:
        hog = requests.Session()
        page(url, hog)  # the browser's cookie
        jobs = [start_trace(page(url, hog), f"hold{i}") for i in range(MAX_RUNNING_JOBS + 1)]
        other = page(url, seconds=60)
        assert trace(other, "good", "ba", 3)[1]["n_steps"] >= 3
        progress: list[str] = []
        wait_for(lambda: progress.extend(str(j.poll().get("progress", "")) for j in jobs) or
                 any("queued" in p for p in progress), "no job of the busy browser said it was queued")
        helper = psutil.Process().children()
        running = [p for h in helper for p in h.children() if p.status() != psutil.STATUS_ZOMBIE]
        assert running and all(p.nice() == min(19, os.nice(0) + JOB_NICENESS) for p in running)
        hold.unlink()
        assert all("sp-meta" in job.result() for job in jobs)


def test_a_client_with_too_many_waiting_jobs_is_told_so(models: Path, tmp_path: Path, hold: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("explorer.jobs.MAX_WAITING_PER_CLIENT", 1)
    monkeypatch.setattr("explorer.jobs.MAX_RUNNING_JOBS", 2)
    with serve(create_app([models], tmp_path / "cache")) as url:
        hog = requests.Session()
        page(url, hog)
        started = [start_trace(page(url, hog), f"hold{i}") for i in range(2)]  # one runs, one waits
        with pytest.raises(DashError, match="(?s)HTTP 429.*you have 1 jobs waiting"):
            start_trace(page(url, hog), "hold3")
        hold.unlink()
        assert all("sp-meta" in job.result() for job in started)


def test_jobs_end_with_the_server_and_leave_its_port_free(tmp_path: Path) -> None:
    """A long job runs when the server is stopped: the job ends with it, and the server starts again on
    the same port (jobs forked from the server kept its listening socket: 'Address already in use')."""
    corpus.good_checkpoint(tmp_path / "models" / "good")
    port = free_port()
    proc = start_server("dev", tmp_path / "models", tmp_path / "cache", port)
    try:
        session = page(f"http://127.0.0.1:{port}")
        out = session.call("fo-state.data", {"fo-url.hash": "#o_n_perm=2000&o_voxels=8000&o_n_tr=600&o_nodes=200"},
                           "fo-url.hash")
        session.start("fo-meta.data", {"fo-request.data": out["fo-request"]["data"]}, "fo-request.data")
        jobs: list[psutil.Process] = []
        wait_for(lambda: jobs.extend(psutil.Process(proc.pid).children(recursive=True)) or jobs, "no job started")
        assert all(p.is_running() for p in jobs)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in jobs),
             "a job outlived the server", seconds=30)
    again = start_server("dev", tmp_path / "models", tmp_path / "cache", port)
    stop_server(again)


@pytest.mark.slow
def test_workers_agree_on_the_signing_key_after_the_cache_is_deleted(models: Path, tmp_path: Path) -> None:
    """gunicorn with two workers on one cache; the cache is deleted and one worker restarts (it writes a new key):
    job handles signed by either worker are still good on the other. The old worker kept the old key, and most
    jobs 'ended without a result'."""
    pytest.importorskip("gunicorn")
    port = free_port()
    proc = start_server("gunicorn", models, tmp_path / "cache", port, workers=2, threads=4)
    try:
        shutil.rmtree(tmp_path / "cache")
        workers = psutil.Process(proc.pid).children()
        workers[0].kill()
        wait_for(lambda: len([w for w in psutil.Process(proc.pid).children() if w.pid != workers[0].pid]) == 2,
                 "gunicorn did not restart its worker")
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(url + "/", timeout=30).status_code == 200, "the server did not answer")
        for n in range(10):
            http = requests.Session()
            http.headers["Connection"] = "close"  # each request to whichever worker accepts it, as a browser's may
            assert trace(page(url, http, seconds=30), "good", "ab" + "a" * n, 2)[1]["n_steps"] >= 2
    finally:
        stop_server(proc)
