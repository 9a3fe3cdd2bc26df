"""Background job processes: at most MAX_RUNNING_JOBS at once, and each joined when it ends (no zombies)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import pytest

from explorer.jobs import ForkGate, HealingCache, JobManager


def marking_job(key: str, progress_key: str, folder: str, context: object) -> None:
    """In the job process: record when it started and ended."""
    (Path(folder) / f"{key}.start").write_text(repr(time.time()))
    time.sleep(0.3)
    (Path(folder) / f"{key}.end").write_text(repr(time.time()))


def wait_for(condition, what: str, seconds: float = 60) -> None:
    """Poll until ``condition()`` holds (a bound for a hung job, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_forks_are_bounded_and_reaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(JobManager, "_slots", threading.BoundedSemaphore(1))
    manager = JobManager(HealingCache(str(tmp_path / "jobs")))
    starts = [threading.Thread(target=manager.call_job_fn, args=(f"job{i}", marking_job, str(tmp_path), None))
              for i in range(3)]
    for thread in starts:
        thread.start()
    for thread in starts:
        thread.join(60)
    wait_for(lambda: len(list(tmp_path.glob("*.end"))) == 3, "three jobs ended")
    spans = sorted((float((tmp_path / f"job{i}.start").read_text()), float((tmp_path / f"job{i}.end").read_text()))
                   for i in range(3))
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:])), "two jobs ran at once"
    wait_for(lambda: not [c for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE],
             "a finished job is still a zombie")
    wait_for(lambda: manager._slots.acquire(blocking=False), "the slot was not given back")


def test_a_request_waiting_for_a_job_slot_does_not_block_a_fork() -> None:
    """Many sessions starting jobs at once: one holds the last slot and forks (waiting for every other
    request to leave the app) while another waits for a slot. Waiting inside the gate deadlocked them."""
    gate, slots = ForkGate(), threading.BoundedSemaphore(1)
    forked, waiting, got_slot = threading.Event(), threading.Event(), threading.Event()
    slots.acquire()  # the forking request's slot

    def waiting_request() -> None:
        with gate.shared():
            with gate.outside():
                waiting.set()
                slots.acquire()
            got_slot.set()
            slots.release()

    def forking_request() -> None:
        with gate.shared():
            with gate.exclusive():
                forked.set()
        slots.release()  # the job ended

    waiter = threading.Thread(target=waiting_request, daemon=True)
    waiter.start()
    assert waiting.wait(30)
    threading.Thread(target=forking_request, daemon=True).start()
    assert forked.wait(30), "the fork waited for a request that waits for its slot"
    assert got_slot.wait(30)
