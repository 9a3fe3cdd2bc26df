"""Load test: N concurrent sessions trace, step, recall and compare through the app's HTTP endpoints.

Each session opens the page, then repeats: trace a prompt on the Signal path view (the
reducer, the background job polled to its end, the step store), run a recall and a
comparison, exactly as the browser's renderer calls the callbacks (see ``explorer.testing.dash_client``).
Moving through the steps sends no request (the browser draws them from the step store;
``bench_browser.py`` times it while this test loads the server). Prints throughput, latency percentiles per interaction
and over all of them, errors, the server's memory (server, workers and job processes) over time, and two probes
(see ``adversary``): ``GET /`` four times a second and the reopening of a cached link once a second, each in a
process of its own (another user's browser does not wait for this generator's threads).
With --adversary, an attacker replays the costly requests of the security review meanwhile (``adversary``), and
the answers it got are counted.

Bounded: at most --duration seconds and --max-requests HTTP requests; loopback only.
It starts the server itself (--server dev: ``brillm explore``; --server gunicorn: the
production configuration, see docs/serving.md) on two generated checkpoints, or drives a
running one (--url http://127.0.0.1:PORT, --pid PID for its memory).
Usage: python benchmarks/load_test.py [--server dev|gunicorn | --url URL] [--sessions 50] [--duration 60] [--adversary]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import string
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.adversary import attacker, page_probe, reopen_probe  # noqa: E402
from brillm_core import Checkpoint, CharTokenizer, random_model  # noqa: E402
from explorer.cli import is_loopback  # noqa: E402
from explorer.testing.dash_client import DashSession, compare, dependencies, recall, trace  # noqa: E402
from explorer.testing.server import free_port, start_server, stop_server  # noqa: E402

MAX_SESSIONS = 500
MAX_DURATION = 600.0
JOB_GRACE = 60.0  # a session waits for its background jobs as a browser does: the whole run, and this much after
WORDS = ["the", "cat", "sees", "a", "dog", "likes", "ball", "fish", "and", "then"]
LETTERS = list(string.ascii_lowercase + " .,!")


@dataclass
class Report:
    """What a run measured."""

    sessions: int
    seconds: float = 0.0
    requests: int = 0
    interactions: int = 0
    errors: list[str] = field(default_factory=list)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # per interaction, "all", and the probes
    memory_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, MB of PSS)
    attacks: dict[str, dict[str, int]] = field(default_factory=dict)  # attack -> answer (ok or HTTP status) -> count

    def summary(self) -> str:
        """Human-readable figures."""
        lines = [f"{self.sessions} sessions, {self.seconds:.1f} s: {self.interactions} interactions, "
                 f"{self.requests} HTTP requests ({self.interactions / self.seconds:.1f} interactions/s, "
                 f"{self.requests / self.seconds:.1f} requests/s), {len(self.errors)} errors"]
        for kind, figures in self.latency_ms.items():
            over = f"  max {figures['max']:7.0f} ms  over 200 ms: {int(figures['over_200'])}" if "probe" in kind else ""
            lines.append(f"  {kind:<16} n={int(figures['n']):>5}  p50 {figures['p50']:7.0f} ms  "
                         f"p90 {figures['p90']:7.0f} ms  p99 {figures['p99']:7.0f} ms{over}")
        for name, answers in self.attacks.items():
            lines.append(f"  attack: {name}: " + ", ".join(f"{a} x{n}" for a, n in sorted(answers.items())))
        if self.memory_mb:
            shown = self.memory_mb[:: max(1, len(self.memory_mb) // 8)] + [self.memory_mb[-1]]
            lines.append("  server memory (MB, PSS of all its processes): " + ", ".join(f"{t:.0f}s {mb:.0f}" for t, mb in shown))
        lines += [f"  error: {e}" for e in self.errors[:10]]
        return "\n".join(lines)


def percentiles(values: list[float]) -> dict[str, float]:
    """n, p50, p90, p99, max and how many were over 200 ms, of a list of milliseconds."""
    extremes = {"max": max(values, default=float("nan")), "over_200": sum(v > 200 for v in values)}
    if len(values) < 2:
        v = values[0] if values else float("nan")
        return {"n": len(values), "p50": v, "p90": v, "p99": v, **extremes}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"n": len(values), "p50": cuts[49], "p90": cuts[89], "p99": cuts[98], **extremes}


class Budget:
    """Stops every session at the deadline or when the request budget is spent."""

    def __init__(self, seconds: float, max_requests: int) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.max_requests = max_requests
        self.spent = 0
        self.lock = threading.Lock()

    def charge(self, n: int) -> None:
        """Count requests made."""
        with self.lock:
            self.spent += n

    def open(self) -> bool:
        """True while time and requests remain."""
        return time.monotonic() < self.deadline and self.spent < self.max_requests


def session(index: int, base_url: str, callbacks: list[dict], models: tuple[str, str], budget: Budget,
            record: Any, seed: int) -> None:
    """One user: page load, then trace / recall / compare until the budget is spent."""
    rng = random.Random(seed * 1000 + index)
    http = requests.Session()
    while budget.open():
        s = None
        start = time.perf_counter()
        try:
            s = DashSession(base_url, callbacks, http, patience=budget.seconds + JOB_GRACE)
            record("page", start, None)
            prompt = " ".join(rng.sample(WORDS, 2))  # 90 prompts: cache hits and misses both
            n = rng.randint(4, 12)
            start = time.perf_counter()
            trace(s, models[0], prompt, n)
            record("trace", start, None)
            start = time.perf_counter()
            recall(s, models[0], prompt, rng.randint(1, 3))
            record("recall", start, None)
            start = time.perf_counter()
            compare(s, models[0], models[1], prompt, n)
            record("compare", start, None)
        except Exception as exc:  # noqa: BLE001 - every failure is an error to report
            record("error", start, f"session {index}: {type(exc).__name__}: {exc}")
            time.sleep(0.5)
        finally:
            budget.charge(s.requests if s else 1)


def probe_process(probe: str, base_url: str, callbacks: list[dict], model: str, stop: Any, out: Any) -> None:
    """One probe ("page": ``GET /``, or "reopen"), in a process of its own until ``stop`` is set; sends back what
    it measured as (kind, milliseconds, error). Each stands for another user's browser: inside the load
    generator, their timings included waits for its interpreter, busy with 50 sessions (``GET /`` read p99
    370 ms there while curl, at the same time, read 96 ms)."""
    found: list[tuple[str, float, str | None]] = []

    def record(kind: str, start: float, error: str | None) -> None:
        found.append((kind, (time.perf_counter() - start) * 1000, error))

    def running() -> bool:
        return not stop.is_set()

    if probe == "page":
        page_probe(base_url, running, record)
    else:
        reopen_probe(base_url, callbacks, model, running, record)
    out.put(found)


def server_memory_mb(pid: int) -> float:
    """Memory of a process and all its descendants (workers, background jobs), in MB: the sum of their
    proportional set sizes, so that the pages a forked job shares with its worker count once (their
    RSS counted them in every process, and a job forked at a sampling instant read as a leak)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0
    for proc in procs:
        try:
            total += proc.memory_full_info().pss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def run_load(base_url: str, sessions: int = 50, seconds: float = 60.0, max_requests: int = 100_000,
             models: tuple[str, str] = ("alpha", "beta"), pid: int | None = None, seed: int = 0,
             adversary: bool = False) -> Report:
    """Drive a running app (loopback only) and measure it, with the probes running, and the attacker too if
    ``adversary``."""
    host = urlsplit(base_url).hostname or ""
    if not is_loopback(host):
        raise ValueError(f"refusing to load-test {host!r}: only loopback addresses are allowed")
    sessions = max(1, min(sessions, MAX_SESSIONS))
    seconds = max(1.0, min(seconds, MAX_DURATION))
    callbacks = dependencies(base_url, requests.Session())
    report = Report(sessions)
    times: dict[str, list[float]] = {}
    lock = threading.Lock()
    budget = Budget(seconds, max_requests)
    t0 = time.monotonic()

    def add(kind: str, ms: float, error: str | None) -> None:
        with lock:
            if kind.startswith("attack: "):  # any answer is counted; a refusal is what an attack should get
                answers = report.attacks.setdefault(kind.removeprefix("attack: "), {})
                answers[error or "ok"] = answers.get(error or "ok", 0) + 1
            elif error:
                report.errors.append(f"{kind}: {error}" if kind.startswith("probe") else error)
            else:
                times.setdefault(kind, []).append(ms)

    def record(kind: str, start: float, error: str | None) -> None:
        add(kind, (time.perf_counter() - start) * 1000, error)

    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            report.memory_mb.append((time.monotonic() - t0, server_memory_mb(pid)))
            done.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True) if pid else None
    if sampler:
        sampler.start()
    workers = [threading.Thread(target=session, args=(i, base_url, callbacks, models, budget, record, seed))
               for i in range(sessions)]
    others = ([threading.Thread(target=attacker, args=(base_url, callbacks, models, budget.open, record))]
              if adversary else [])
    spawn = multiprocessing.get_context("spawn")
    stop, found = spawn.Event(), spawn.Queue()
    probes = [spawn.Process(target=probe_process, args=(probe, base_url, callbacks, models[0], stop, found),
                            daemon=True) for probe in ("page", "reopen")]
    for worker in [*probes, *workers, *others]:
        worker.start()
    for worker in [*workers, *others]:
        worker.join(seconds + JOB_GRACE + 60)
    stop.set()
    for _ in probes:
        for kind, ms, error in found.get(timeout=180):
            add(kind, ms, error)
    for probe in probes:
        probe.join(10)
    done.set()
    if sampler:
        sampler.join()
        report.memory_mb.append((time.monotonic() - t0, server_memory_mb(pid)))
    report.seconds = time.monotonic() - t0
    report.requests = budget.spent
    interactions = {k: v for k, v in times.items() if not k.startswith("probe")}
    report.interactions = sum(len(v) for k, v in interactions.items() if k != "page")
    report.latency_ms = {**{k: percentiles(v) for k, v in interactions.items()},
                         "all": percentiles([ms for v in interactions.values() for ms in v]),
                         **{k: percentiles(v) for k, v in times.items() if k.startswith("probe")}}
    return report


def make_models(root: Path, vocab: int = 200, hidden: int = 16) -> Path:
    """Two random checkpoints 'alpha' and 'beta' of one character vocabulary under ``root``."""
    chars = (LETTERS + [chr(0x4E00 + i) for i in range(vocab)])[:vocab]
    for seed, name in ((1, "alpha"), (2, "beta")):
        model = random_model(len(chars), hidden, 0.2, seed=seed, max_positions=64, name=name)
        Checkpoint(model, CharTokenizer(chars), {"training": {"loss": [3.0, 2.5]}}).save(root / name)
    return root


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start or reach the server, run, print (and optionally save) the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("dev", "gunicorn"), default="gunicorn", help="server to start")
    parser.add_argument("--url", help="drive this running app instead (loopback only), e.g. http://127.0.0.1:8050")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, to sample its memory")
    parser.add_argument("--models", default="alpha,beta", help="with --url: checkpoints A,B (same vocabulary)")
    parser.add_argument("--sessions", type=int, default=50, help=f"concurrent sessions (default 50, at most {MAX_SESSIONS})")
    parser.add_argument("--duration", type=float, default=60.0, help=f"seconds (default 60, at most {MAX_DURATION:.0f})")
    parser.add_argument("--max-requests", type=int, default=100_000, help="stop after this many HTTP requests")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker (default 8)")
    parser.add_argument("--vocab", type=int, default=200, help="nodes of the generated checkpoints (default 200)")
    parser.add_argument("--hidden", type=int, default=16, help="width of the generated checkpoints (default 16)")
    parser.add_argument("--adversary", action="store_true",
                        help="meanwhile, replay the costly requests of the security review (see adversary.py)")
    parser.add_argument("--json", help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    if args.url and not is_loopback(urlsplit(args.url).hostname or ""):
        print(f"error: {args.url} is not a loopback address; this load test only targets this machine",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        if args.url:
            report = run_load(args.url, args.sessions, args.duration, args.max_requests,
                              tuple(args.models.split(",", 1)), args.pid,  # type: ignore[arg-type]
                              adversary=args.adversary)
        else:
            models = make_models(Path(tmp) / "models", args.vocab, args.hidden)
            port = free_port()
            proc = start_server(args.server, models, Path(tmp) / "cache", port, args.workers, args.threads)
            try:
                report = run_load(f"http://127.0.0.1:{port}", args.sessions, args.duration, args.max_requests,
                                  pid=proc.pid, adversary=args.adversary)
            finally:
                stop_server(proc)
    print(report.summary())
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(report), indent=2))
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
