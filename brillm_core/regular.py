"""Open the files of a checkpoint only when they are regular files, and never block doing it.

Opening a FIFO for reading waits for a writer, forever: a named pipe planted as
``config.json`` hung ``brillm info`` and, in the explorer, the request (and its thread)
that named the checkpoint. Each file is opened with O_NONBLOCK (which returns at once
for a FIFO) and checked on the descriptor, so nothing can be swapped in between.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import BriLLMError

PROC_FD = Path("/proc/self/fd")


def open_regular(path: str | Path, what: str, error: type[BriLLMError] = BriLLMError) -> BinaryIO:
    """``path`` opened for reading; ``error`` when it is not a regular file (a FIFO, a device, a directory).
    FileNotFoundError and other OSErrors of the open itself are left to the caller."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{what} {path} is not a regular file (it is a {_kind(mode)}); replace it with the file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


@contextmanager
def regular_path(path: str | Path, what: str, error: type[BriLLMError] = BriLLMError) -> Iterator[str]:
    """A path naming the regular file at ``path``, for a library that opens files by name: the open,
    checked descriptor itself where the system names descriptors (/proc/self/fd), else ``path``."""
    with open_regular(path, what, error) as handle:
        named = PROC_FD / str(handle.fileno())
        yield str(named) if PROC_FD.is_dir() else str(path)


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"
