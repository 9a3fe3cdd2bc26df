"""Background jobs forked from a helper process, so that no request ever waits for a fork.

A fork copies the locks that the server's other threads hold at that instant (SQLite's mutexes in
the job store, the registry's lock, OpenMP's pool), and the child can wait on them forever; making
each fork wait until no other request was inside the app let one slow request freeze the whole
server. Instead ``JobHelper`` forks one helper process when the app is built, while the server still
runs a single thread, and the helper, single-threaded for its whole life, forks every job:

- the helper keeps none of the server's sockets (each is pointed at /dev/null), so no job holds the
  server's port; it ends its jobs and itself when the server's end of its pipe closes, and on Linux
  the kernel kills it when the server dies;
- job processes are forked ahead of their requests (``SPARE_JOBS`` of them, while the helper is
  idle, from the first job on), so a request gets its job's process id at once, whatever a fork
  costs; a job process waits for its turn (``job_queue``), saying on the page meanwhile that it
  is queued, and runs on one torch thread at a lower CPU priority than the server, so that page
  loads and cached answers come first;
- after handing out a job the helper loads the checkpoints the job names, so that the next job
  processes it forks find them loaded.

Messages are JSON lines over a socket pair that only the server and its helper hold.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import selectors
import signal
import socket
import stat
import sys
import threading
import traceback
from typing import IO, Any, Callable

import torch

from .job_queue import JobQueue, QueueFull

SPARE_JOBS = 4  # job processes kept forked ahead: a burst of requests takes them without waiting for a fork
JOB_NICENESS = 5  # jobs yield the CPU to the server's requests (each gets a third of a request thread's share)
REPLY_SECONDS = 120.0  # the helper answers at once, unless it is still loading a checkpoint for earlier jobs
PR_SET_PDEATHSIG = 1
JobFunction = Callable[[str, str, Any, Any], None]


class JobHelperGone(RuntimeError):
    """The helper process has ended (killed, or the app was built in another process), so no job can start."""


class JobRefused(RuntimeError):
    """The helper would not queue the job (its client has too many waiting)."""


class JobHelper:
    """The server's handle on its helper process: ``start`` asks it to fork a job."""

    def __init__(self, jobs: Callable[[str], JobFunction], queued: Callable[[str, str], None],
                 warm: Callable[[list[str]], None], queue: JobQueue) -> None:
        """Fork the helper now (call this while the server runs one thread). ``jobs(name)``: the job function
        registered under ``name``; ``queued(progress_key, text)``: shows a waiting job's place on its page;
        ``warm(models)``: loads checkpoints in the helper."""
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the helper: never returns
            ours.close()
            _exit_after(lambda: _Helper(theirs, jobs, queued, warm, queue).serve())
        theirs.close()
        self.pid, self._owner = pid, os.getpid()
        self._socket = ours
        self._socket.settimeout(REPLY_SECONDS)
        self._received = b""
        self._lock = threading.Lock()
        self._sent = 0
        threading.Thread(target=os.waitpid, args=(pid, 0), name="job-helper-reaper", daemon=True).start()

    def start(self, job: str, key: str, progress_key: str, args: Any, context: dict, client: str,
              models: list[str]) -> int:
        """Have the helper fork the job registered as ``job``; its process id. JobRefused when the client
        has too many jobs waiting, JobHelperGone when the helper cannot be reached."""
        if os.getpid() != self._owner:
            raise JobHelperGone("background jobs start only in the process that built the app (gunicorn's "
                                "--preload is not supported)")
        with self._lock:
            self._sent += 1
            message = {"id": self._sent, "job": job, "key": key, "progress": progress_key, "args": args,
                       "context": context, "client": client, "models": models}
            try:
                self._socket.sendall(json.dumps(message).encode() + b"\n")
                answer: dict[str, Any] = {}
                while answer.get("id") != self._sent:  # skips a late answer to a request that gave up waiting
                    answer = json.loads(self._answer())
            except OSError as exc:
                gone = f"the background-job helper (process {self.pid}) cannot be reached: {exc}"
                raise JobHelperGone(gone) from exc
        if "error" in answer:
            raise JobRefused(answer["error"])
        return int(answer["pid"])

    def _answer(self) -> bytes:
        """The helper's next line."""
        while b"\n" not in self._received:
            data = self._socket.recv(65536)
            if not data:
                raise JobHelperGone(f"the background-job helper (process {self.pid}) has ended; restart the server")
            self._received += data
        line, self._received = self._received.split(b"\n", 1)
        return line


def _exit_after(run: Callable[[], None]) -> None:
    """Run a forked process's work and end the process without the parent's exit handlers."""
    code = 0
    try:
        run()
    except BaseException:  # noqa: BLE001 - a forked process reports and ends; nothing above it may run
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this process when its parent dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent's pipe closing ends us instead
        pass


def _open_fds() -> list[int]:
    """The file descriptors this process has open."""
    try:
        return sorted(int(name) for name in os.listdir("/proc/self/fd"))
    except OSError:
        return list(range(os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024))


def _blank(fds: list[int]) -> None:
    """Point file descriptors at /dev/null: what they held (a port, a peer) is released, and each number
    stays taken, so that an object that still names one cannot close another file later."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in fds:
        os.dup2(null, fd)
    os.close(null)


def _sockets(keep: set[int]) -> list[int]:
    """This process's sockets, but for ``keep`` and standard input and output."""
    found = []
    for fd in _open_fds():
        try:
            if fd > 2 and fd not in keep and stat.S_ISSOCK(os.fstat(fd).st_mode):
                found.append(fd)
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return found


class _Helper:
    """The helper process's loop: hand each request to a job process forked beforehand (so that the server
    gets its pid at once), let the jobs run in turn, reap them."""

    def __init__(self, control: socket.socket, jobs: Callable[[str], JobFunction], queued: Callable[[str, str], None],
                 warm: Callable[[list[str]], None], queue: JobQueue) -> None:
        self.control, self.jobs, self.queued, self.warm, self.queue = control, jobs, queued, warm, queue
        self.pipes: dict[int, int] = {}  # a job's pid -> the pipe that gives it its job and its turn
        self.spares: list[int] = []  # job processes forked ahead, waiting for a job
        self.wanted = 0  # spares to keep: none until the first job is asked for
        self.told: dict[int, int] = {}  # a waiting job's pid -> the place in the queue it was last told
        self.wake_read, self.wake_write = os.pipe()

    def _prepare(self) -> None:
        """The helper's own state: its own signal handling, no sockets but its pipe, one torch thread."""
        gc.freeze()  # inherited objects stay shared with the server (collections would copy their pages)
        for number in signal.valid_signals():
            if number not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGPIPE):
                try:
                    signal.signal(number, signal.SIG_DFL)  # the server's handlers (gunicorn's, say) are not ours
                except (OSError, ValueError):
                    pass
        _die_with_parent()
        _blank(_sockets(keep={self.control.fileno()}))
        os.set_blocking(self.wake_write, False)
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the loop through the wakeup pipe
        torch.set_num_threads(1)

    def serve(self) -> None:
        """Until the server closes its end of the pipe: answer requests, start jobs in turn, reap ended ones."""
        self._prepare()
        selector = selectors.DefaultSelector()
        selector.register(self.control, selectors.EVENT_READ)
        selector.register(self.wake_read, selectors.EVENT_READ)
        pending = b""
        while True:
            for key, _ in selector.select(timeout=0 if len(self.spares) < self.wanted else 1.0):
                if key.fileobj is self.control:
                    data = self.control.recv(1 << 20)
                    if not data:
                        self._end_all()
                        return
                    pending += data
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        self._request(json.loads(line))
                else:
                    os.read(self.wake_read, 4096)
            self._reap()
            self._dispatch()
            if len(self.spares) < self.wanted:  # one at a time, so that a request is never kept waiting long
                self._fork_spare()

    def _fork_spare(self) -> None:
        """Fork a job process that waits for a job, off the path of the request that will need it."""
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(write)
            _exit_after(lambda: self._job(read))
        os.close(read)
        self.pipes[pid] = write
        self.spares.append(pid)

    def _request(self, message: dict[str, Any]) -> None:
        """Give the job to a spare process and answer with its pid, or say why it was refused; then load the
        checkpoints it names, so that spares forked afterwards start with them loaded."""
        client = str(message.get("client", ""))
        try:
            self.queue.admit(client)
        except QueueFull as exc:
            self._reply({"id": message["id"], "error": str(exc)})
            return
        self.wanted = SPARE_JOBS
        line = json.dumps(message).encode() + b"\n"
        while True:
            if not self.spares:
                self._fork_spare()
            pid = self.spares.pop(0)
            if self._tell(pid, line):
                break  # else the spare was killed meanwhile: the next one
        self.queue.add(pid, client)
        self._reply({"id": message["id"], "pid": pid})
        self._dispatch()
        try:
            self.warm([m for m in message.get("models", []) if isinstance(m, str)])
        except Exception:  # noqa: BLE001 - a checkpoint that does not load is the job's to report
            traceback.print_exc()

    def _reply(self, answer: dict[str, Any]) -> None:
        """One line to the server."""
        self.control.sendall(json.dumps(answer).encode() + b"\n")

    def _job(self, pipe: int) -> None:
        """In a job's process: drop the helper's pipes, wait for a job and its turn, then run it."""
        os.setpgid(0, 0)  # cancelling kills the job's whole group
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _blank([self.control.fileno()])
        for fd in (self.wake_read, self.wake_write, *self.pipes.values()):
            os.close(fd)
        _die_with_parent()
        yield_to_requests()
        torch.set_num_threads(1)
        with os.fdopen(pipe, "rb") as lines:
            message = json.loads(lines.readline() or "null")
            if message and wait_for_turn(lines, lambda text: self.queued(message["progress"], text)):
                run_job(self.jobs(message["job"]), message["key"], message["progress"], message["args"],
                        message["context"])

    def _reap(self) -> None:
        """Collect every job process that has ended."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.queue.ended(pid)
            self.told.pop(pid, None)
            if pid in self.pipes:
                os.close(self.pipes.pop(pid))
            if pid in self.spares:
                self.spares.remove(pid)

    def _dispatch(self) -> None:
        """Start the jobs whose turn it is; tell the others their place when it changed."""
        for pid in self.queue.release():
            self._tell(pid, b"go\n")
            os.close(self.pipes.pop(pid))
            self.told.pop(pid, None)
        for pid, ahead in self.queue.ahead().items():
            if self.told.get(pid) != ahead:
                self.told[pid] = ahead
                self._tell(pid, f"{ahead} {len(self.queue.running)}\n".encode())

    def _tell(self, pid: int, line: bytes) -> bool:
        """Write to a job's pipe; False when it has ended (it is reaped on the next round)."""
        try:
            os.write(self.pipes[pid], line)
        except OSError:
            return False
        return True

    def _end_all(self) -> None:
        """The server is gone: end every job, running or waiting, and the spares."""
        for pid in [*self.queue.running, *self.queue.waiting, *self.spares]:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass


def yield_to_requests() -> None:
    """Run this (job) process below the server: a lower priority, and on Linux the batch policy, under which
    it never preempts a thread that wakes up to answer a request."""
    os.nice(JOB_NICENESS)
    if hasattr(os, "sched_setscheduler"):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def wait_for_turn(lines: IO[bytes], show: Callable[[str], None]) -> bool:
    """In a job's process: read the helper's lines until it says go (True), showing the queue place it reports;
    False when the helper closed the pipe first (the server is gone)."""
    for line in lines:
        if line == b"go\n":
            return True
        ahead, running = (int(n) for n in line.split())
        show(f"queued: {running} jobs running, {ahead} before this one…")
    return False


def run_job(job: JobFunction, key: str, progress_key: str, args: Any, context: Any) -> None:
    """In a job's process, when its turn has come: Dash's job function (it stores the result under ``key``)."""
    job(key, progress_key, args, context)
