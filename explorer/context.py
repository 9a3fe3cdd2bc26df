"""What every page needs at run time: the checkpoint allow-list, the result cache and the job processes."""

from __future__ import annotations

from dataclasses import dataclass

from .cache import ResultCache
from .jobs import JobManager
from .registry import Registry


@dataclass
class Services:
    """Shared by all pages of one app."""

    registry: Registry
    cache: ResultCache
    jobs: JobManager | None = None  # runs costly work in a job process; None: in this process
