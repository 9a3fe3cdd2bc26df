"""Writing output files without ever replacing what a path points at.

Every file the engine writes for a user (``brillm trace --json``, ``recall --csv``,
metadata, reports, checkpoints) goes through this module:
- a symbolic link is followed: the content lands, atomically, on the link's target (the
  temporary file is made beside the target), and the link stays a link; except a link that
  another user owns in a sticky folder that everyone may write to (``/tmp``): anyone can plant
  one there, so it is refused, as the kernel's ``protected_symlinks`` refuses it (and
  resolving the path in user space would bypass that);
- a device, FIFO or socket is written directly (a rename would replace the device node
  with a regular file, and ``/dev/stdout``-like paths would stop working);
- a regular file (or a new one) is written to a temporary sibling, flushed to disk and
  renamed over the target, so a reader never sees half a file and a crash leaves the
  old one; an existing file keeps its permission bits (and, when root writes it, its owner).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

NEW_FILE_MODE = 0o644


MAX_LINKS = 40  # as the kernel's limit on links followed in one path


def write_target(path: str | Path) -> Path:
    """The path a write to ``path`` must change: ``path`` with every symbolic link resolved
    (a dangling link resolves to the file it names, which the write creates); PermissionError
    when a link on the way was planted by another user in a shared sticky folder."""
    check_links(Path(path))
    return Path(os.path.realpath(path))


def check_links(path: Path, followed: int = 0) -> None:
    """PermissionError if resolving ``path`` would follow a link in a sticky, world-writable folder that
    belongs neither to this user nor to the folder's owner (the rule of the kernel's protected_symlinks)."""
    me = os.geteuid()
    parts = Path(os.path.abspath(path)).parts
    folder = Path(parts[0])
    for part in parts[1:]:
        entry = folder / part
        try:
            info = os.lstat(entry)
        except OSError:  # missing (to be created) or unreadable: nothing to follow
            return
        if stat.S_ISLNK(info.st_mode):
            shared = os.stat(folder)
            if (shared.st_mode & stat.S_ISVTX and shared.st_mode & stat.S_IWOTH
                    and info.st_uid not in (me, shared.st_uid)):
                raise PermissionError(errno.EACCES, f"refusing to write through {entry}: a link of another user "
                                      f"(uid {info.st_uid}) in the shared folder {folder}; write to a path of your "
                                      "own", str(path))
            if followed >= MAX_LINKS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", str(path))
            check_links(folder / os.readlink(entry), followed + 1)
            folder = Path(os.path.realpath(entry))
        else:
            folder = entry


def is_stream(path: Path) -> bool:
    """True when ``path`` exists and is neither a regular file nor a directory (device, FIFO, socket)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries so that a rename inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep_owner_and_mode(tmp: str, existing: os.stat_result | None) -> None:
    """Give the new file the replaced file's permission bits and, where allowed (as root), its owner."""
    if existing is None:
        os.chmod(tmp, NEW_FILE_MODE)
        return
    os.chmod(tmp, stat.S_IMODE(existing.st_mode))
    if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.chown(tmp, existing.st_uid, existing.st_gid)
        except PermissionError:  # only root may give a file away; the content still lands
            pass


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open ``path`` for writing (``mode`` "w" or "wb") so that it is replaced only when the
    block ends without an exception; see the module docstring for links and devices."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes only ('w' or 'wb'), not {mode!r}")
    encoding = None if mode == "wb" else encoding
    target = write_target(path)
    if is_stream(target):
        with open(target, mode, encoding=encoding) as handle:
            yield handle
        return
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "No such file or directory: cannot write into a non-existent directory",
                                str(target.parent))
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _keep_owner_and_mode(tmp, existing)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write text (UTF-8) or bytes to ``path`` through ``atomic_open``."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON (no NaN) through ``atomic_open``."""
    with atomic_open(path, "w") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, allow_nan=False)


def output_directory(path: str | Path) -> Path:
    """Where an output directory at ``path`` must be created or replaced: its links resolved, so a
    link to a directory is kept and its target replaced; NotADirectoryError when ``path`` is
    something else (a file, a device)."""
    target = write_target(path)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a directory")
    return target
