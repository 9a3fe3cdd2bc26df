"""Recorded data uploaded to the organisation page: a stimulus, brain data and network templates.

An upload is decoded and size-checked, parsed at once by the same readers as
``brillm organization`` (so a bad file is reported on arrival), and kept in the result
cache under its content hash; links carry only that hash. Nothing is written elsewhere,
and .npy files are read without pickle. The parse runs in a job process of its own, with
bounded time and memory, once per content: its summary (or the reason the file cannot be
used) is cached, so a reopened link reads it back instead of parsing again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path

from brillm_core.organization import (
    OrganizationError, Stimulus, load_brain, parse_transcript, read_matrix, stimulus_from_text,
)

from .cache import ResultCache
from .context import Services
from .state import UPLOAD_KINDS as KINDS

MAX_UPLOAD_BYTES = 32 * 2**20
TRANSCRIPT_SUFFIXES = (".csv", ".tsv")
PARSE_JOB = "uploads.parse"
PARSE_SECONDS = 120.0
PARSE_MEMORY = 2**30  # address space a parse may add to its process


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its base name (which gives its format) and its bytes."""

    name: str
    data: bytes

    @property
    def key(self) -> str:
        """Content hash of name and bytes: the id links carry."""
        return hashlib.sha256(self.name.encode() + b"\0" + self.data).hexdigest()[:24]


def decode(contents: str, filename: str | None) -> Upload:
    """dcc.Upload's data URL as an Upload; OrganizationError when it is not base64 or is too large."""
    header, _, payload = (contents or "").partition(",")
    if not header.startswith("data:") or not header.endswith(";base64"):
        raise OrganizationError("the upload is not a base64 data URL")
    if len(payload) * 3 // 4 > MAX_UPLOAD_BYTES:
        raise OrganizationError(f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB; use `brillm organization`")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise OrganizationError(f"the upload is not valid base64: {exc}") from exc
    name = Path(filename or "upload").name[:200]
    return Upload(name, data)


def _text(upload: Upload) -> str:
    """An upload's UTF-8 text."""
    try:
        return upload.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OrganizationError(f"{upload.name} is not UTF-8 text: {exc}") from exc


def stimulus_of(upload: Upload, word_rate: float) -> Stimulus:
    """A transcript (.csv/.tsv of word, onset[, offset]) or plain text read at ``word_rate``."""
    suffix = Path(upload.name).suffix.lower()
    if suffix in TRANSCRIPT_SUFFIXES:
        return parse_transcript(_text(upload), "\t" if suffix == ".tsv" else None)
    return stimulus_from_text(_text(upload), word_rate)


def describe(kind: str, upload: Upload, word_rate: float) -> str:
    """Parse an upload as ``kind`` and summarise it; OrganizationError names what is wrong."""
    try:
        if kind == "stimulus":
            stimulus = stimulus_of(upload, word_rate)
            return f"{upload.name}: {len(stimulus.words):,} words, {stimulus.duration:.1f} s"
        if kind == "brain":
            brain = load_brain(upload.data, name=upload.name)
            return f"{upload.name}: {brain.data.shape[0]:,} volumes x {brain.n_voxels:,} voxels or regions"
        values, names = read_matrix(upload.data, upload.name, "templates")
        columns = "one label per voxel" if values.ndim == 1 or values.shape[1] == 1 else f"{values.shape[1]} networks"
        return f"{upload.name}: {values.shape[0]:,} voxels, {columns}"
    except OrganizationError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise OrganizationError(f"{upload.name}: {exc}") from exc


def summary_key(kind: str, key: str, word_rate: float) -> str:
    """Where the summary of the upload ``key`` read as ``kind`` is cached (the word rate matters to a stimulus only)."""
    return f"upload-summary:{kind}:{key}:{word_rate if kind == 'stimulus' else 0:g}"


def summarise(services: Services, kind: str, upload: Upload, word_rate: float) -> str:
    """``describe``'s summary of an upload, parsed once per content in a job process (in this process when the
    app has none); OrganizationError names what is wrong, also when the parse ran out of time or memory."""
    key = summary_key(kind, upload.key, word_rate)
    found = services.cache.get(key)
    if found is None:
        store(services.cache, upload)  # where the job reads it
        if services.jobs is None:
            parse(services.cache, kind, upload.key, word_rate)
        elif not services.jobs.run_isolated(PARSE_JOB, [kind, upload.key, word_rate], PARSE_SECONDS):
            raise OrganizationError(f"{upload.name}: reading it took longer than {PARSE_SECONDS:.0f} s; use "
                                    "`brillm organization` for a file this large")
        found = services.cache.get(key)
    if found is None:
        raise OrganizationError(f"{upload.name} could not be read (its reader stopped without an answer)")
    readable, text = found
    if not readable:
        raise OrganizationError(text)
    return text


def parse(cache: ResultCache, kind: str, key: str, word_rate: float) -> None:
    """Read the upload stored under ``key`` as ``kind`` and cache its summary, or the reason it cannot be used."""
    upload = fetch(cache, {kind: key})[kind]
    try:
        result = (True, describe(kind, upload, word_rate))
    except OrganizationError as exc:
        result = (False, str(exc))
    except MemoryError:
        result = (False, f"{upload.name}: reading it needs more than {PARSE_MEMORY // 2**30} GiB of memory; use "
                         "`brillm organization` for a file this large")
    cache.set(summary_key(kind, key, word_rate), result)


def store(cache: ResultCache, upload: Upload) -> str:
    """Keep the upload in the cache; its key."""
    cache.set(f"upload:{upload.key}", upload)
    return upload.key


def fetch(cache: ResultCache, keys: dict[str, str]) -> dict[str, Upload]:
    """The uploads a link names, by kind (kinds without a key are left out); OrganizationError when
    one was never uploaded here or has been evicted from the cache."""
    found = {}
    for kind, key in keys.items():
        if not key:
            continue
        upload = cache.get(f"upload:{key}")
        if not isinstance(upload, Upload):
            raise OrganizationError(f"the {kind} file of this link is not in the cache (evicted, or uploaded to "
                                    "another server): upload it again")
        found[kind] = upload
    return found
