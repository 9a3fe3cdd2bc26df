"""WSGI entry point for production serving: ``gunicorn explorer.wsgi:server``.

Configured by environment variables, read when a worker imports this module:
  BRILLM_MODEL_DIRS  checkpoint folders separated by ':' (default: the bundled sample models)
  BRILLM_CACHE_DIR   the disk cache shared by all workers (default: as ``brillm explore``);
                     it must belong to the serving user and be writable by no one else
  BRILLM_SECRET_KEY  optional: signs background-job handles; without it the workers share
                     a random key kept in a private file of the cache (each follows the file,
                     so a worker restarted after the cache was wiped agrees with the others)
Every worker opens the same cache directory, so a background job started by one worker
is answered by whichever worker the browser's next poll reaches. If the directory is
deleted while they run, each worker reopens a fresh store on its next request.
"""

from __future__ import annotations

import os
from pathlib import Path

from .app import create_app, freeze_startup_heap
from .cache import CacheDirError, default_cache_dir
from .cli import SAMPLE_MODELS


def model_dirs_from(value: str | None) -> list[Path]:
    """The model folders named in BRILLM_MODEL_DIRS; each must be a directory."""
    dirs = [Path(p) for p in (value or "").split(os.pathsep) if p.strip()] or [SAMPLE_MODELS]
    missing = [str(p) for p in dirs if not p.is_dir()]
    if missing:
        raise SystemExit(f"error: BRILLM_MODEL_DIRS names no directory: {', '.join(missing)}")
    return dirs


try:
    app = create_app(model_dirs_from(os.environ.get("BRILLM_MODEL_DIRS")),
                     Path(os.environ.get("BRILLM_CACHE_DIR") or default_cache_dir()),
                     secret_key=os.environ.get("BRILLM_SECRET_KEY") or None)
except CacheDirError as exc:
    raise SystemExit(f"error: {exc}") from None
server = app.server
freeze_startup_heap()
