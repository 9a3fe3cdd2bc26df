"""Start the explorer on a free loopback port in a process of its own, and stop it.

``start_server("gunicorn", ...)`` runs the production configuration (docs/serving.md), ``"dev"`` runs
``brillm explore``; either is configured by the same environment variables as in production and logs to
a file beside the cache folder (a pipe could fill up and stall the server).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
KEEP_ALIVE = 10  # seconds an idle connection stays open (gunicorn's 2 closed connections that busy clients reused)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_log(kind: str, cache_dir: Path) -> Path:
    """Where ``start_server`` writes the server's output."""
    return cache_dir.parent / f"{kind}-server.log"


def start_server(kind: str, model_dir: Path, cache_dir: Path, port: int, workers: int = 2,
                 threads: int = 8, log: Path | None = None) -> subprocess.Popen:
    """Start the dev server (``brillm explore``) or gunicorn on 127.0.0.1:port and wait until it answers (its
    output goes to ``log``, by default ``server_log``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BRILLM_MODEL_DIRS": str(model_dir),
           "BRILLM_CACHE_DIR": str(cache_dir)}
    if kind == "gunicorn":
        cmd = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads), "--keep-alive",
               str(KEEP_ALIVE), "--bind", f"127.0.0.1:{port}", "--no-control-socket", "--log-level", "warning",
               "explorer.wsgi:server"]
    else:
        cmd = [sys.executable, "-m", "explorer.cli", str(model_dir), "--port", str(port), "--cache-dir", str(cache_dir)]
    log = log or server_log(kind, cache_dir)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} server exited: {log.read_text()[-2000:]}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200:
                    return proc
            except requests.RequestException:  # not listening yet, or still importing
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{kind} server did not answer within 60 s")
    except BaseException:
        stop_server(proc)
        raise


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate a server started by ``start_server`` (and its workers)."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
