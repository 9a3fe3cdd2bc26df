"""Keep freed memory inside the process (glibc's malloc) for training.

A training step allocates and frees several buffers of about 100 MB (gathered rows,
their gradients, optimiser moments). By default glibc serves each from a fresh mmap and
returns it to the system on free, so every step pays for faulting those pages in again;
on this project's benchmark that was over half of a sparse step. Serving large blocks
from the heap and not trimming it keeps the pages: the process holds its peak memory.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
M_MMAP_MAX = -4
KEEP_UP_TO = 2**31 - 1  # bytes of free heap kept before any is returned to the system


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse; False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):  # musl and others ignore these settings
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_UP_TO))
