"""The command line in a new process, without paying for torch's import in each one.

``brillm`` runs ``brillm_core.cli.main(ARGS)`` in a process forked from a server that imported the
command line once (multiprocessing's forkserver, started on first use). The process gets the
caller's working directory, environment and standard streams, so exit codes, messages and files
written are what ``python -m brillm_core ARGS`` gives; it starts in about 0.1 s instead of 4.5 s
(torch's import, measured on the project's 2-core machine). What differs: modules were imported
under the server's environment, and ``python -m``'s own start-up is not run (tests that need a
fresh interpreter start one themselves).
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["brillm_core.cli", "brillm_core.cli.engine", "brillm_core.cli.train",
                                 "brillm_core.organization.cli", "tests.cli_runner"])


def _exit_code(code: Any) -> int:
    """What the interpreter exits with for ``sys.exit(code)`` (a message is printed and gives 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _run_main(args: list[str], cwd: str, env: dict[str, str], streams: tuple[str, str, str]) -> None:
    """In the forked process: take the caller's directory, environment and streams, run the command, exit."""
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # found again from TMPDIR, as a new interpreter would
    os.chdir(cwd)
    for fd, (path, flags) in enumerate(zip(streams, (os.O_RDONLY, os.O_WRONLY, os.O_WRONLY))):
        opened = os.open(path, flags)
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdin = open(0, closefd=False)  # multiprocessing put os.devnull there
    from brillm_core.cli import main

    try:
        code = _exit_code(main(args))
    except SystemExit as exc:
        code = _exit_code(exc.code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def brillm(*args: str | bytes, cwd: Path | None = None, env: dict[str, str] | None = None,
           input_bytes: bytes | None = None, text: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``brillm ARGS`` (bytes arguments as the OS would pass them) in a new process; its output captured
    (decoded if ``text``)."""
    argv = [os.fsdecode(a) for a in args]
    with tempfile.TemporaryDirectory(prefix="brillm-cli-") as tmp:
        streams = tuple(str(Path(tmp) / name) for name in ("stdin", "stdout", "stderr"))
        Path(streams[0]).write_bytes(input_bytes or b"")
        for path in streams[1:]:
            Path(path).touch()
        process = _context.Process(target=_run_main, args=(argv, str(cwd or Path.cwd()),
                                                           dict(os.environ if env is None else env), streams))
        process.start()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(["brillm", *argv], timeout)
        stdout, stderr = (Path(p).read_bytes() for p in streams[1:])
    if text:
        return subprocess.CompletedProcess(["brillm", *argv], process.exitcode, stdout.decode(), stderr.decode())
    return subprocess.CompletedProcess(["brillm", *argv], process.exitcode, stdout, stderr)
