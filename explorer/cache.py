"""Disk cache of traces, layouts and recall results, keyed by checkpoint hash and settings.

A bounded ``diskcache.Cache`` (least recently stored entries are evicted past the size
limit) with a small in-memory LRU in front, so a step change reads the trace from RAM.
If the directory is deleted or its database is corrupt, the cache is rebuilt empty and
the value recomputed: a cache can only make things faster, never break a view.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, TypeVar

import diskcache

T = TypeVar("T")
DEFAULT_SIZE_LIMIT = 2**30  # 1 GiB
MEMORY_ITEMS = 32
_FAILURES = (sqlite3.Error, OSError, EOFError, ValueError, TypeError, AttributeError, ImportError, KeyError)


def cache_key(kind: str, model_id: str, settings: Any) -> str:
    """``kind:model_id:hash(settings)``; settings must be JSON-serialisable."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return f"{kind}:{model_id}:{hashlib.sha256(blob.encode()).hexdigest()[:24]}"


class ResultCache:
    """get/set/get_or_compute over a bounded disk cache that heals itself."""

    def __init__(self, directory: Path, size_limit: int = DEFAULT_SIZE_LIMIT) -> None:
        self.directory = Path(directory)
        self.size_limit = size_limit
        self._memory: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._disk = self._open()

    def _open(self) -> diskcache.Cache:
        """Open (or create) the disk cache; a corrupt directory is wiped and recreated."""
        try:
            return diskcache.Cache(str(self.directory), size_limit=self.size_limit, eviction_policy="least-recently-stored")
        except _FAILURES:
            shutil.rmtree(self.directory, ignore_errors=True)
            return diskcache.Cache(str(self.directory), size_limit=self.size_limit, eviction_policy="least-recently-stored")

    def _reset(self) -> None:
        """Drop the disk cache and start an empty one."""
        try:
            self._disk.close()
        except _FAILURES:
            pass
        shutil.rmtree(self.directory, ignore_errors=True)
        self._disk = self._open()

    def _healthy_disk(self) -> diskcache.Cache:
        """The disk cache, reopened if its directory was deleted meanwhile."""
        if not (self.directory / "cache.db").is_file():
            self._reset()
        return self._disk

    def get(self, key: str) -> Any | None:
        """The stored value or None; a broken cache counts as a miss and is rebuilt."""
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        try:
            value = self._healthy_disk().get(key)
        except _FAILURES:
            self._reset()
            return None
        if value is not None:
            self._remember(key, value)
        return value

    def set(self, key: str, value: Any) -> None:
        """Store a value in memory and on disk (a disk failure rebuilds the cache once)."""
        self._remember(key, value)
        try:
            self._healthy_disk().set(key, value)
        except _FAILURES:
            self._reset()
            self._disk.set(key, value)

    def get_or_compute(self, key: str, compute: Callable[[], T]) -> T:
        """Cached value of ``compute()``."""
        value = self.get(key)
        if value is None:
            value = compute()
            self.set(key, value)
        return value

    def _remember(self, key: str, value: Any) -> None:
        """Keep a value in the in-memory LRU."""
        with self._lock:
            self._memory[key] = value
            self._memory.move_to_end(key)
            while len(self._memory) > MEMORY_ITEMS:
                self._memory.popitem(last=False)

    def forget_memory(self) -> None:
        """Empty the in-memory layer (the disk keeps its entries)."""
        with self._lock:
            self._memory.clear()

    def volume(self) -> int:
        """Bytes the disk cache uses."""
        return int(self._healthy_disk().volume())
