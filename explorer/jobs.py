"""Background jobs that stay correct when many sessions use a threaded server at once.

Dash's DiskcacheManager forks one process per job. Three things go wrong under load, and
this module fixes each:

1. A fork copies every lock held by the server's other threads at that instant (SQLite's
   mutexes inside diskcache, the registry's lock, ``cached_property``'s lock), and the
   child waits on them forever. ``ForkGate`` lets requests run together but makes a fork
   wait until no other request is inside the app (``gate_requests`` wraps the WSGI app;
   ``JobManager`` forks through the gate).
2. Identical requests from two sessions got one shared result key: the first poll took
   (and deleted) the result and the other session never received it. Each job now gets
   its own key; results expire after ``RESULT_SECONDS``.
3. A job ending between "is it alive?" and "kill its children" raised NoSuchProcess
   (HTTP 500); a job that is already gone now counts as terminated.
4. Dash's manager never joins the processes it starts: each finished job stayed a zombie
   until a later start reaped it, and nothing bounded how many ran at once. Each job is
   now joined by a thread as it ends, and at most ``MAX_RUNNING_JOBS`` run together (a
   request that would start one more waits for a slot).
Also: torch runs single-threaded in a job (OpenMP used by the parent hangs a forked
child), and the job store (``HealingCache``) reopens itself when its directory is
deleted (or healed by another worker) and rebuilds itself when corrupted under the
running app, as the result cache does.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import dash
import diskcache
import psutil
import torch

from .cache import claim_store, clear_store, database_identity, is_corrupt

RESULT_SECONDS = 600
# Job processes running at once: every job is CPU-bound on one thread, so more than two
# per core only adds memory (each is a fork of the server) without finishing sooner.
MAX_RUNNING_JOBS = 2 * (os.cpu_count() or 1)
WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class ForkGate:
    """Requests pass together (shared, re-entrant); a fork waits until no other one is inside."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._inside = 0
        self._forking = False
        self._depth = threading.local()

    def _mine(self) -> int:
        """1 if the calling thread is inside the gate, else 0."""
        return 1 if getattr(self._depth, "n", 0) else 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Run a request (or any code) that must not overlap a fork."""
        depth = getattr(self._depth, "n", 0)
        if depth == 0:
            with self._cond:
                self._cond.wait_for(lambda: not self._forking)
                self._inside += 1
        self._depth.n = depth + 1
        try:
            yield
        finally:
            self._depth.n = depth
            if depth == 0:
                with self._cond:
                    self._inside -= 1
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Fork here: new requests wait, and this waits for the other requests inside to leave."""
        mine = self._mine()
        with self._cond:
            self._inside -= mine  # step aside so that two forking requests cannot wait on each other
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._forking)
            self._forking = True
            self._cond.wait_for(lambda: self._inside == 0)
        try:
            yield
        finally:
            with self._cond:
                self._forking = False
                self._inside += mine
                self._cond.notify_all()

    @contextmanager
    def outside(self) -> Iterator[None]:
        """Wait here as if outside the gate (for a job slot, say): a fork need not wait for this thread."""
        mine = self._mine()
        with self._cond:
            self._inside -= mine
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._cond.wait_for(lambda: not self._forking)
                self._inside += mine

    def reset(self) -> None:
        """In a forked child: a fresh, open gate (the parent's state does not apply)."""
        self.__init__()


GATE = ForkGate()
os.register_at_fork(after_in_child=GATE.reset)


def gate_requests(wsgi_app: WSGIApp) -> WSGIApp:
    """The WSGI app with every request run inside the gate."""
    def gated(environ: dict, start_response: Callable) -> Iterable[bytes]:
        with GATE.shared():
            return wsgi_app(environ, start_response)
    return gated


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


def _single_threaded(job_fn: Callable[..., None], *args: Any) -> None:
    """Run a job with one torch thread (a forked child must not enter OpenMP's thread pool)."""
    torch.set_num_threads(1)
    job_fn(*args)


class JobManager(dash.DiskcacheManager):
    """DiskcacheManager that forks through the gate, keys each job apart, tolerates finished jobs."""

    def __init__(self, cache: HealingCache) -> None:
        super().__init__(cache, cache_by=[lambda: uuid.uuid4().hex], expire=RESULT_SECONDS)

    _slots = threading.BoundedSemaphore(MAX_RUNNING_JOBS)

    def call_job_fn(self, key: str, job_fn: Any, args: Any, context: Any) -> int:
        """Wait for a free slot, start the job's process while no other request is inside the app,
        and join it from a thread when it ends (no zombie, and the slot is free again)."""
        from multiprocess import Process  # what Dash's manager uses; imported where it does

        with GATE.outside():  # waiting inside would block a fork that holds a slot: a deadlock
            self._slots.acquire()
        try:
            process = Process(target=functools.partial(_single_threaded, job_fn),
                              args=(key, self._make_progress_key(key), args, context))
            with GATE.exclusive():
                process.start()
        except BaseException:
            self._slots.release()
            raise
        threading.Thread(target=self._reap, args=(process,), name=f"reap-job-{process.pid}", daemon=True).start()
        return process.pid

    def _reap(self, process: Any) -> None:
        """Join a job's process when it ends and give its slot back."""
        try:
            process.join()
        finally:
            self._slots.release()

    def terminate_job(self, job: Any) -> None:
        """Kill a job and its children; one that already ended is fine."""
        try:
            super().terminate_job(job)
        except psutil.NoSuchProcess:
            pass
