"""Background jobs that stay correct, fair and out of the way when many sessions use a threaded server.

Dash's DiskcacheManager forks one process per job from the server. What goes wrong under load, and
how this module (with ``job_helper`` and ``job_queue``) fixes each:

1. A fork copies every lock held by the server's other threads at that instant, and the child waits
   on them forever. Jobs are forked by a helper process instead (``job_helper``), which the app
   starts when it is built; no request ever waits for a fork.
2. Identical requests from two sessions got one shared result key: the first poll took (and
   deleted) the result and the other session never received it. Each job gets its own key;
   results expire after ``RESULT_SECONDS``.
3. Cancelling a job that had just ended raised NoSuchProcess (HTTP 500), and killing one waited for
   it under a lock of the job store. A job's handle names its process and the process's start time,
   so any worker can tell whether that very process still runs; its group is killed at once, and
   its helper reaps it.
4. Nothing bounded how many jobs ran, or whose: at most ``MAX_RUNNING_JOBS`` run at once and each
   client (a browser, known by a cookie of its own, else its address) at most half of them; the
   others wait in the helper's queue and their page says so. A client with ``MAX_WAITING_PER_CLIENT``
   jobs waiting is refused (HTTP 429) until one starts.
Also the job store (``HealingCache``) reopens itself when its directory is deleted (or healed by
another worker) and rebuilds itself when corrupted under the running app, as the result cache does.
"""

from __future__ import annotations

import functools
import json
import os
import re
import resource
import secrets
import signal
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import dash
import diskcache
import flask
import psutil
from werkzeug.exceptions import ServiceUnavailable, TooManyRequests

from .cache import claim_store, clear_store, database_identity, is_corrupt
from .job_helper import JobHelper, JobHelperGone, JobRefused
from .job_queue import JobQueue

RESULT_SECONDS = 600
# Job processes running at once: every job is CPU-bound on one thread, so more than two
# per core only adds memory (each is a fork of the server) without finishing sooner.
MAX_RUNNING_JOBS = 2 * (os.cpu_count() or 1)
MAX_WAITING_PER_CLIENT = 8
MAX_WAITING = 16 * MAX_RUNNING_JOBS
CLIENT_COOKIE = "brillm_client"
CLIENT_ID = re.compile(r"[0-9a-f]{32}")


class HealingCache(diskcache.Cache):
    """A diskcache.Cache that follows its directory: reopened when the database was deleted or
    replaced (another worker healed it), rebuilt when it is corrupt, and only ever in a private
    directory (``claim_store``); nothing but diskcache's own files is deleted (``clear_store``)."""

    def __init__(self, directory: str, **settings: Any) -> None:
        self._settings = settings
        self._heal_lock = threading.RLock()
        self._open(Path(directory))

    def _open(self, directory: Path) -> None:
        """Open the store in ``directory``; a corrupt database is cleared first (only in a directory we made)."""
        claim_store(directory)
        try:
            diskcache.Cache.__init__(self, str(directory), **self._settings)
        except (sqlite3.Error, OSError):
            clear_store(directory)
            diskcache.Cache.__init__(self, str(directory), **self._settings)
        self._identity = database_identity(directory)

    def _follow(self) -> None:
        """Reopen when the database file is not the one this object opened."""
        directory = Path(self.directory)
        if database_identity(directory) != self._identity:
            with self._heal_lock:
                if database_identity(directory) != self._identity:
                    self._reopen(clear=False)

    def _reopen(self, clear: bool) -> None:
        """Close, clear the store first if ``clear``, and open it again in the same place."""
        with self._heal_lock:
            self.close()
            if clear:
                clear_store(Path(self.directory))
            self._open(Path(self.directory))


def _healing(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` on the current store, retried once on a rebuilt store if it failed because the
    store was deleted or corrupted."""
    @functools.wraps(method)
    def healing(self: HealingCache, *args: Any, **kwargs: Any) -> Any:
        self._follow()
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            gone = database_identity(Path(self.directory)) is None
            if not (gone or is_corrupt(exc)):
                raise
            self._reopen(clear=not gone)
            return method(self, *args, **kwargs)
    return healing


for _name in ("get", "set", "add", "delete", "touch"):
    setattr(HealingCache, _name, _healing(getattr(diskcache.Cache, _name)))


class JobManager(dash.DiskcacheManager):
    """DiskcacheManager whose jobs the helper process forks and queues; each job keyed apart."""

    def __init__(self, cache: HealingCache, models_of: Callable[[Any], list[str]] = lambda _args: []) -> None:
        """``models_of(args)``: the checkpoints a job's arguments name (the helper loads them for later jobs)."""
        super().__init__(cache, cache_by=[lambda: uuid.uuid4().hex], expire=RESULT_SECONDS)
        self.models_of = models_of
        self.helper: JobHelper | None = None

    def start_helper(self, warm: Callable[[list[str]], None]) -> None:
        """Fork the helper process that starts every job (call once, when every callback is registered and
        the server still runs a single thread)."""
        queue = JobQueue(MAX_RUNNING_JOBS, max(1, MAX_RUNNING_JOBS // 2), MAX_WAITING_PER_CLIENT, MAX_WAITING)
        self.helper = JobHelper(self.func_registry.__getitem__, self._show_queued, warm, queue)

    def isolate(self, name: str, work: Callable[..., None], memory: int) -> None:
        """Register ``work`` to run in a job process with ``run_isolated``, its address space grown by at most
        ``memory`` bytes (call before ``start_helper``, which hands the registry to the helper)."""
        def bounded(_key: str, _progress_key: str, args: list, _context: Any) -> None:
            used = psutil.Process().memory_info().vms
            resource.setrlimit(resource.RLIMIT_AS, (used + memory, resource.getrlimit(resource.RLIMIT_AS)[1]))
            work(*args)
        self.func_registry[name] = bounded

    def run_isolated(self, name: str, args: list, seconds: float) -> bool:
        """Run the work registered as ``name`` (``isolate``) with ``args`` in a job process, queued like every job
        for this request's client, and wait until it ends; False when it took longer than ``seconds`` (killed)."""
        handle = self._start(name, uuid.uuid4().hex, args, {}, [])
        deadline = time.monotonic() + seconds
        while live_job(handle) is not None:
            if time.monotonic() > deadline:
                self.terminate_job(handle)
                return False
            time.sleep(0.05)
        return True

    def _show_queued(self, progress_key: str, text: str) -> None:
        """A waiting job's progress: an empty bar and its place in the queue (the pages' two progress outputs)."""
        self.handle.set(progress_key, ["0", text])

    def call_job_fn(self, key: str, job_fn: Any, args: Any, context: Any) -> str:
        """Have the helper start Dash's job for the client of this request; its handle (``job_handle``)."""
        name = next(name for name, fn in self.func_registry.items() if fn is job_fn)
        return self._start(name, key, args, _json_only(context), self.models_of(args))

    def _start(self, name: str, key: str, args: Any, context: dict[str, Any], models: list[str]) -> str:
        """Have the helper start the job registered as ``name`` for the client of this request; its handle.
        Too many jobs of the client waiting is HTTP 429, a helper that has ended 503."""
        if self.helper is None:
            raise ServiceUnavailable("background jobs are not set up")
        client = client_of(flask.request) if flask.has_request_context() else ""
        try:
            pid = self.helper.start(name, key, self._make_progress_key(key), args, context, client, models)
        except JobRefused as exc:
            raise TooManyRequests(str(exc)) from exc
        except JobHelperGone as exc:
            raise ServiceUnavailable(str(exc)) from exc
        return job_handle(pid)

    def job_running(self, job: Any) -> bool:
        """True while the job's process lives (whichever worker's helper started it)."""
        return live_job(job) is not None

    def terminate_job(self, job: Any) -> None:
        """Kill a job's process group if the job still lives (its helper reaps it)."""
        pid = live_job(job)
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:  # it ended meanwhile
                pass


def job_handle(pid: int) -> str:
    """A job's handle: its process id and start time, so that a process that later gets the same id is not taken
    for the job (Dash signs the handle; every worker can check it)."""
    try:
        return f"{pid}@{psutil.Process(pid).create_time():.3f}"
    except psutil.Error:  # it has ended already
        return f"{pid}@ended"


def live_job(handle: Any) -> int | None:
    """The process id of the job ``handle`` names while that very process lives, else None."""
    pid, _, started = str(handle or "").partition("@")
    try:
        process = psutil.Process(int(pid))
        alive = process.status() != psutil.STATUS_ZOMBIE and f"{process.create_time():.3f}" == started
    except (ValueError, psutil.Error):
        return None
    return int(pid) if alive else None


def _json_only(context: dict[str, Any]) -> dict[str, Any]:
    """The callback context's entries that are plain data (the job process receives it as JSON)."""
    kept = {}
    for name, value in dict(context).items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        kept[name] = value
    return kept


def client_of(request: flask.Request) -> str:
    """Who a request comes from, for the fair share of job slots: the browser's own cookie, else its address."""
    cookie = request.cookies.get(CLIENT_COOKIE, "")
    return cookie if CLIENT_ID.fullmatch(cookie) else f"address {request.remote_addr}"


def give_client_cookie(response: flask.Response) -> flask.Response:
    """After a request without the client cookie: give the browser one (random, only for telling clients apart)."""
    if not CLIENT_ID.fullmatch(flask.request.cookies.get(CLIENT_COOKIE, "")):
        response.set_cookie(CLIENT_COOKIE, secrets.token_hex(16), httponly=True, samesite="Strict")
    return response
