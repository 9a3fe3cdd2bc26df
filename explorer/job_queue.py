"""Which background jobs run now: a bounded number at once, each client's share capped, the rest queued.

A client (a browser, see ``jobs.client_of``) may run at most ``per_client`` jobs at once, so one user
who opens many costly links cannot hold every slot; a free slot goes to the waiting job whose client
runs the fewest jobs, earliest first among equals. Pure bookkeeping: the job helper forks the
processes and tells them when to start.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class QueueFull(Exception):
    """A client already has as many jobs waiting as it may."""


@dataclass
class JobQueue:
    """Running and waiting jobs by process id, with their clients."""

    slots: int
    per_client: int
    max_waiting: int  # per client
    max_total: int  # waiting jobs of all clients
    running: dict[int, str] = field(default_factory=dict)
    waiting: dict[int, str] = field(default_factory=dict)  # in arrival order

    def admit(self, client: str) -> None:
        """QueueFull if ``client`` has ``max_waiting`` jobs waiting already, or all clients ``max_total``."""
        if sum(c == client for c in self.waiting.values()) >= self.max_waiting:
            raise QueueFull(f"you have {self.max_waiting} jobs waiting already; cancel one or wait until one starts")
        if len(self.waiting) >= self.max_total:
            raise QueueFull(f"{self.max_total} jobs are waiting already; try again in a moment")

    def add(self, pid: int, client: str) -> None:
        """Queue a new job (admitted first)."""
        self.waiting[pid] = client

    def ended(self, pid: int) -> None:
        """A job's process ended (finished, failed or cancelled), running or waiting."""
        self.running.pop(pid, None)
        self.waiting.pop(pid, None)

    def _load(self, client: str) -> int:
        """Jobs ``client`` runs now."""
        return sum(c == client for c in self.running.values())

    def release(self) -> list[int]:
        """The waiting jobs that may start now (moved to running), in the order they should start."""
        started = []
        while len(self.running) < self.slots:
            eligible = [(self._load(c), n, pid) for n, (pid, c) in enumerate(self.waiting.items())
                        if self._load(c) < self.per_client]
            if not eligible:
                break
            _, _, pid = min(eligible)
            self.running[pid] = self.waiting.pop(pid)
            started.append(pid)
        return started

    def ahead(self) -> dict[int, int]:
        """For each waiting job, how many waiting jobs arrived before it."""
        return {pid: n for n, pid in enumerate(self.waiting)}
