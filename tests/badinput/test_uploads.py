"""Data files that claim more than they hold, or cost more than they are worth: wide CSV tables, .npy and
NIfTI headers that name huge shapes, through the readers, the command line and the organisation page's
uploads (which are parsed in a job process, once per content)."""

from __future__ import annotations

import base64
import gzip
import io
import os
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import requests
from werkzeug.serving import make_server

from brillm_core.filelimits import MAX_CSV_COLUMNS
from brillm_core.organization import OrganizationError, load_brain, read_matrix
from brillm_core.organization.volumes import read_mask
from explorer import uploads
from explorer.app import create_app
from explorer.jobs import JobManager
from explorer.testing.dash_client import DashSession, dependencies

from ..cli_runner import brillm
from . import corpus

nib = pytest.importorskip("nibabel")


def wide_csv(columns: int = 100_000, rows: int = 3) -> bytes:
    """A small file of very many columns (600 KB of them took 28.8 s and 400 MB to parse)."""
    return ((",".join(["1.5"] * columns) + "\n") * rows).encode()


def npy_claiming(shape: tuple[int, ...]) -> bytes:
    """A valid .npy header naming ``shape`` over the data of a 4 x 3 array."""
    out = io.BytesIO()
    np.save(out, np.zeros((4, 3)))
    return out.getvalue().replace(b"(4, 3)", repr(shape).encode().ljust(6))


def nifti_claiming(path: Path, shape: tuple[int, ...], dtype=np.uint8) -> Path:
    """A .nii.gz whose header names ``shape`` while its compressed data is a few bytes."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    raw = io.BytesIO()
    header.write_to(raw)
    path.write_bytes(gzip.compress(raw.getvalue().ljust(int(header["vox_offset"]), b"\0") + bytes(1024)))
    return path


@pytest.mark.parametrize("source, fragment", [
    (wide_csv(), f"at most {MAX_CSV_COLUMNS:,}"),
    (npy_claiming((1_000_000, 1_000_000)), "claims an array of shape (1000000, 1000000)"),
], ids=["100000-columns", "npy-of-a-trillion-cells"])
@pytest.mark.parametrize("kind", ["bytes", "path"])
def test_the_readers_refuse_a_costly_file_before_parsing(tmp_path: Path, source: bytes, fragment: str,
                                                        kind: str) -> None:
    name = "data.csv" if source.startswith(b"1.5") else "data.npy"
    if kind == "path":
        (tmp_path / name).write_bytes(source)
    start = time.process_time()
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        read_matrix(source if kind == "bytes" else tmp_path / name, name, "brain data")
    with pytest.raises(ValueError):
        load_brain(source if kind == "bytes" else tmp_path / name, name=name)
    assert time.process_time() - start < 1.0


@pytest.mark.parametrize("shape", [(10**4, 10**4, 10**4, 10**3), (1100, 1000, 1000)],
                         ids=["header-of-10^15-voxels", "1.1-GB-in-a-few-bytes"])
def test_an_image_whose_header_claims_too_much_is_refused(tmp_path: Path, shape: tuple[int, ...]) -> None:
    start = time.process_time()
    with pytest.raises(OrganizationError, match="voxels .* more than the 1 GiB an image may hold"):
        read_mask(nifti_claiming(tmp_path / "mask.nii.gz", shape))
    assert time.process_time() - start < 1.0


def test_the_command_line_says_so_without_a_traceback(tmp_path: Path) -> None:
    good = corpus.good_checkpoint(tmp_path / "good")
    (tmp_path / "story.txt").write_text("a b c " * 40)
    mask = tmp_path / "mask.nii"
    nib.save(nib.Nifti1Image(np.ones((2, 2, 2), np.uint8), np.eye(4)), str(mask))
    bomb = nifti_claiming(tmp_path / "bold.nii.gz", (10**4, 10**4, 10**4, 10**3), np.float32)
    (tmp_path / "templates.csv").write_text("a,b\n" + "1,0\n" * 8)
    result = brillm("organization", str(good), "--stimulus", str(tmp_path / "story.txt"), "--tr", "1.5",
                    "--volumes", "100", "--brain", str(bomb), "--mask", str(mask), "--templates", str(tmp_path / "templates.csv"),
                    "-o", str(tmp_path / "out"), text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "more than the 1 GiB an image may hold" in errors[0]


@pytest.fixture
def app_and_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """The app, with every upload parse writing the id of the process it runs in to a folder; yields (url, folder)."""
    parses = tmp_path / "parses"
    parses.mkdir()
    describe = uploads.describe

    def recording(*args):
        (parses / f"{time.monotonic_ns()}").write_text(str(os.getpid()))
        return describe(*args)

    monkeypatch.setattr(uploads, "describe", recording)  # before the app forks its job helper
    corpus.good_checkpoint(tmp_path / "models" / "good")
    server = make_server("127.0.0.1", 0, create_app([tmp_path / "models"], tmp_path / "cache").server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", parses
    server.shutdown()
    thread.join(10)


def upload(session: DashSession, name: str, data: bytes) -> str:
    """Upload a brain data file on the organisation page; what its row then says."""
    contents = "data:application/octet-stream;base64," + base64.b64encode(data).decode()
    out = session.call("fo-brain-status.children", {"fo-brain-upload.contents": contents,
                                                    "fo-brain-upload.filename": name}, "fo-brain-upload.contents")
    return str(out["fo-brain-status"]["children"]["props"]["children"])


def test_uploads_are_parsed_in_a_job_once_per_content(app_and_parses, monkeypatch: pytest.MonkeyPatch) -> None:
    url, parses = app_and_parses
    http = requests.Session()
    session = DashSession(url, dependencies(url, http), http, timeout=60)
    started = time.perf_counter()
    assert f"at most {MAX_CSV_COLUMNS:,}" in upload(session, "wide.csv", wide_csv())
    assert "claims an array of shape (1000000, 1000000)" in upload(session, "huge.npy",
                                                                   npy_claiming((1_000_000, 1_000_000)))
    assert time.perf_counter() - started < 30
    good = io.BytesIO()
    np.save(good, np.random.default_rng(0).normal(size=(120, 7)))
    jobs: list[str] = []
    run_isolated = JobManager.run_isolated
    monkeypatch.setattr(JobManager, "run_isolated", lambda self, *a: jobs.append(a[0]) or run_isolated(self, *a))
    assert upload(session, "bold.npy", good.getvalue()) == "✓ bold.npy: 120 volumes x 7 voxels or regions"
    assert upload(session, "bold.npy", good.getvalue()) == "✓ bold.npy: 120 volumes x 7 voxels or regions"
    assert jobs == [uploads.PARSE_JOB]  # the same content again: its summary comes from the cache
    pids = {int(p.read_text()) for p in parses.iterdir()}
    assert len(pids) == 3 and os.getpid() not in pids  # each parse in a job process of its own
