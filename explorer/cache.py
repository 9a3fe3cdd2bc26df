"""Disk cache of traces, layouts and recall results, keyed by engine version, checkpoint hash and settings.

A bounded ``diskcache.Cache`` (least recently stored entries are evicted past the size
limit) with a small in-memory LRU in front, so a step change reads the trace from RAM.

Safety, because a cache directory is a place code could be planted:
- the directory must belong to the user running the app and be writable by no one else
  (``check_private``); the default is ``$XDG_CACHE_HOME/brillm-explorer`` (else
  ``~/.cache/brillm-explorer``), created with mode 0700;
- results are stored as data (``cache_codec``: JSON and safetensors) and the disk layer
  refuses to unpickle anything; Dash's job store is pickle-based by design, which is why
  the ownership check matters;
- healing deletes only what diskcache made, and only in a directory this module created
  (it holds ``MARKER``); a folder of the user's own files is never deleted from.
If the database is deleted or replaced under the running app (by a user, or healed by
another gunicorn worker), the store is reopened; if it is corrupt, it is rebuilt empty
and the value recomputed: a cache can only make things faster, never break a view.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import stat
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, TypeVar

import brillm_core
import diskcache
from brillm_core import BriLLMError

from . import cache_codec

T = TypeVar("T")
DEFAULT_SIZE_LIMIT = 2**30  # 1 GiB
MEMORY_ITEMS = 32
APP_DIR_NAME = "brillm-explorer"
MARKER = ".made-by-brillm-explorer"
DATABASE = "cache.db"
DATABASE_FILES = (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}-journal")
VALUE_DIR = re.compile(r"[0-9a-f]{2}")  # diskcache keeps large values in two-hex-digit sub-directories
SECRET_FILE = "signing-secret"
MIN_SECRET_BYTES = 32
_DISK_FAILURES = (sqlite3.Error, OSError)
log = logging.getLogger(__name__)


class CacheDirError(BriLLMError):
    """The cache directory is unsafe (another user's, or writable by others) or unusable."""


def cache_key(kind: str, model_id: str, settings: Any) -> str:
    """``kind:engine version:model_id:hash(settings)``; settings must be JSON-serialisable.
    The engine version makes every key change when an upgrade can change the numbers."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return f"{kind}:e{brillm_core.ENGINE_VERSION}:{model_id}:{hashlib.sha256(blob.encode()).hexdigest()[:24]}"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/brillm-explorer`` (an absolute XDG_CACHE_HOME only, as the XDG spec says),
    else ``~/.cache/brillm-explorer``: a place of the user's own, never a shared temp directory."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / APP_DIR_NAME


def check_private(path: Path) -> None:
    """CacheDirError unless ``path`` (followed through links) belongs to this user and no one
    else may write to it; a missing path is fine (it will be created private)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise CacheDirError(f"cannot use the cache directory {path}: {exc.strerror or exc}") from exc
    me = os.geteuid()
    if info.st_uid != me:
        raise CacheDirError(f"{path} belongs to another user (uid {info.st_uid}, you are {me}); anyone who can "
                            "write there could plant data the app loads: use a cache directory of your own "
                            "(--cache-dir or BRILLM_CACHE_DIR)")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheDirError(f"{path} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}); others "
                            f"could plant data the app loads: run `chmod go-w {path}` or choose another cache "
                            "directory")


def _make_private_dir(path: Path) -> bool:
    """Create ``path`` with mode 0700 (and missing parents); True if this call created it."""
    if not path.parent.exists():
        _make_private_dir(path.parent)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return False
    except OSError as exc:
        raise CacheDirError(f"cannot create the cache directory {path}: {exc.strerror or exc}") from exc
    return True


def check_ancestors(path: Path) -> None:
    """CacheDirError when another user could move ``path`` away or swap a folder above it: a folder on the way
    (as written and as resolved) that someone else owns (root aside) or that group or others may write to (a
    sticky folder such as /tmp aside, where only an entry's owner may rename it), or a symbolic link on the
    way that someone else owns."""
    me = os.geteuid()
    written = Path(os.path.abspath(path))
    for entry in (written, *written.parents):
        try:
            info = os.lstat(entry)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode) and info.st_uid not in (0, me):
            raise CacheDirError(f"the cache directory {path} is reached through {entry}, a link of another user "
                                f"(uid {info.st_uid}), who could point it elsewhere: use a cache directory of your own")
    for folder in {*written.parents, *Path(os.path.realpath(written)).parents}:
        try:
            info = os.stat(folder)
        except FileNotFoundError:
            continue
        sticky = info.st_mode & stat.S_ISVTX
        if info.st_uid not in (0, me) or (info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky):
            raise CacheDirError(f"the cache directory {path} lies in {folder}, which another user could change "
                                f"(owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):o}) to swap the cache "
                                "for one of theirs: use a cache directory of your own (--cache-dir or "
                                "BRILLM_CACHE_DIR)")


def prepare_cache_dir(path: str | Path) -> Path:
    """The cache directory, created with mode 0700 when missing; CacheDirError when it is not a directory,
    belongs to another user, is writable by others, or lies where another user could swap it."""
    path = Path(path)
    check_ancestors(path)
    _make_private_dir(path)
    check_private(path)
    if not path.is_dir():
        raise CacheDirError(f"the cache directory {path} is not a directory")
    return path


def claim_store(directory: Path) -> None:
    """Make ``directory`` ready for a diskcache store: created private with ``MARKER`` when missing
    (or empty: nothing in it can be lost), and it and its database checked like the cache root."""
    check_private(directory.parent)
    created = _make_private_dir(directory)
    check_private(directory)
    if created or not any(directory.iterdir()):
        (directory / MARKER).write_text("Made by BriLLM Explorer: its cache may delete what it made in here.\n")
    check_private(directory / DATABASE)


def clear_store(directory: Path) -> None:
    """Delete the database and value files diskcache made in ``directory``, and nothing else;
    CacheDirError if this module did not create the directory (a folder of the user's)."""
    if not (directory / MARKER).is_file():
        raise CacheDirError(f"the cache database in {directory} is unreadable, and the directory was not made by "
                            "BriLLM Explorer, so nothing in it is deleted: move the database away or choose "
                            "another cache directory")
    for name in DATABASE_FILES:
        (directory / name).unlink(missing_ok=True)
    for entry in directory.iterdir():
        if VALUE_DIR.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def is_corrupt(exc: BaseException) -> bool:
    """True when a store's error means its database is damaged (not merely busy or gone)."""
    return isinstance(exc, sqlite3.DatabaseError) and "locked" not in str(exc)


def database_identity(directory: Path) -> tuple[int, int] | None:
    """(device, inode) of the store's database file, None when it is gone."""
    return file_identity(directory / DATABASE)


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a file, None when it is gone."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _read_secret(path: Path) -> tuple[bytes, tuple[int, int]]:
    """The key in the private file ``path`` and the file's (device, inode), read through one descriptor."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise CacheDirError(f"cannot read the signing key {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            raise CacheDirError(f"{path} is not a file of yours: delete it and start again")
        if info.st_mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
            raise CacheDirError(f"{path} is readable by other users: run `chmod 600 {path}` or delete it")
        secret = handle.read(4096).strip()
    if len(secret) < MIN_SECRET_BYTES:  # an empty key would send Dash back to its pickled fallback
        raise CacheDirError(f"{path} holds no usable key ({len(secret)} bytes): delete it and start again")
    return secret, (info.st_dev, info.st_ino)


def _make_secret(path: Path) -> None:
    """Create the key file ``path`` unless it exists: written aside, then linked in, so that every worker
    starting at once reads the one that won."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(os.urandom(32).hex())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


class SigningKey:
    """The key that signs background-job handles, one per server: kept in a private file of the cache
    directory (as data; Dash's own fallback keeps it in the pickle store) and read again whenever that file
    is not the one read last, so that every worker signs with the same key, also after the directory was
    deleted and a new worker made a new one."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / SECRET_FILE
        self._lock = threading.Lock()
        self._secret, self._identity = b"", (0, 0)
        self.current()

    def current(self) -> bytes:
        """The key in the file now (made first if the file is missing)."""
        if file_identity(self.path) == self._identity:
            return self._secret
        with self._lock:
            if not self.path.exists():
                prepare_cache_dir(self.path.parent)
                _make_secret(self.path)
            self._secret, self._identity = _read_secret(self.path)
        return self._secret


class DataOnlyDisk(diskcache.Disk):
    """diskcache's storage layer, limited to bytes: it never pickles a value and refuses to
    unpickle one (a pickled row planted in the database reads as a miss)."""

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> tuple:
        """Store bytes only."""
        if not isinstance(value, bytes):
            raise TypeError("the result cache stores encoded bytes only")
        return super().store(value, read, key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        """Read a stored value; a pickled one is refused."""
        if mode == diskcache.core.MODE_PICKLE:
            raise ValueError("refusing to unpickle a cache entry")
        return super().fetch(mode, filename, value, read)

    def get(self, key: Any, raw: bool) -> Any:
        """Read a stored key; a pickled one is refused."""
        if not raw:
            raise ValueError("refusing to unpickle a cache key")
        return super().get(key, raw)


class ResultCache:
    """get/set/get_or_compute over a bounded disk cache of data that heals itself."""

    def __init__(self, directory: Path, size_limit: int = DEFAULT_SIZE_LIMIT) -> None:
        self.directory = Path(directory)
        self.size_limit = size_limit
        self._memory: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._disk_lock = threading.RLock()
        self._identity: tuple[int, int] | None = None
        self._disk: diskcache.Cache | None = self._open()

    def _open(self) -> diskcache.Cache:
        """Open (or create) the store; a corrupt database is rebuilt if this module made its directory."""
        claim_store(self.directory)
        try:
            disk = self._connect()
        except _DISK_FAILURES:
            clear_store(self.directory)
            disk = self._connect()
        self._identity = database_identity(self.directory)
        return disk

    def _connect(self) -> diskcache.Cache:
        """A diskcache over the directory, storing data only."""
        return diskcache.Cache(str(self.directory), disk=DataOnlyDisk, size_limit=self.size_limit,
                               eviction_policy="least-recently-stored")

    def _rebuild(self, clear: bool) -> None:
        """Reopen the store (after ``clear_store`` if ``clear``); if that is impossible, carry on in memory."""
        with self._disk_lock:
            if self._disk is not None:
                self._disk.close()
            try:
                if clear:
                    clear_store(self.directory)
                self._disk = self._open()
            except (CacheDirError, *_DISK_FAILURES) as exc:
                log.warning("result cache on disk disabled: %s", exc)
                self._disk = None

    def _current(self) -> diskcache.Cache | None:
        """The store, reopened first if its database was deleted or replaced since it was opened."""
        with self._disk_lock:
            if self._disk is not None and database_identity(self.directory) != self._identity:
                self._rebuild(clear=False)
            return self._disk

    def _disk_get(self, key: str) -> Any | None:
        """The decoded value on disk, or None (a broken store is rebuilt, a bad entry dropped)."""
        disk = self._current()
        if disk is None:
            return None
        try:
            blob = disk.get(key)
            return None if blob is None else cache_codec.decode(blob)
        except ValueError:  # a pickled row (never loaded) or a malformed entry: drop it
            self._drop(disk, key)
            return None
        except _DISK_FAILURES as exc:
            self._rebuild(clear=is_corrupt(exc))
            return None

    def _drop(self, disk: diskcache.Cache, key: str) -> None:
        """Delete one unusable entry (a failure here only means it stays a miss)."""
        try:
            disk.delete(key)
        except _DISK_FAILURES:
            pass

    def get(self, key: str) -> Any | None:
        """The stored value or None; a broken cache counts as a miss and is rebuilt."""
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        value = self._disk_get(key)
        if value is not None:
            self._remember(key, value)
        return value

    def set(self, key: str, value: Any) -> None:
        """Store a value in memory and, encoded as data, on disk (a disk failure rebuilds the store once)."""
        self._remember(key, value)
        try:
            blob = cache_codec.encode(value)
        except TypeError as exc:
            log.warning("kept %s in memory only: %s", key, exc)
            return
        for attempt in range(2):
            disk = self._current()
            if disk is None:
                return
            try:
                disk.set(key, blob)
                return
            except _DISK_FAILURES as exc:
                if attempt == 0:
                    self._rebuild(clear=is_corrupt(exc))

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

    def volume(self) -> int:
        """Bytes the disk cache uses (0 when it runs in memory only)."""
        disk = self._current()
        return int(disk.volume()) if disk is not None else 0
