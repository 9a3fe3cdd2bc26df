"""What every page needs at run time: the checkpoint allow-list and the result cache."""

from __future__ import annotations

from dataclasses import dataclass

from .cache import ResultCache
from .registry import Registry


@dataclass
class Services:
    """Shared by all pages of one app."""

    registry: Registry
    cache: ResultCache
