"""The disk cache cannot serve stale numbers, run planted code, or delete files it did not make."""

from __future__ import annotations

import copy
import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Any, Iterator

import diskcache
import pytest
import requests
import torch
from werkzeug.serving import make_server

import brillm_core
from explorer.testing.dash_client import DashSession, dependencies
from explorer.testing.dash_client import trace
from explorer.testing.server import start_server, stop_server
from brillm_core import (Checkpoint, compare_paths, edge_changes, edge_effects, largest_shift,
                         parameter_groups, path_energy_changes, reverse_energies)
from explorer import cli, compute
from explorer.app import create_app
from explorer.cache import MARKER, CacheDirError, ResultCache, cache_key, default_cache_dir
from explorer.cache_codec import decode, encode
from explorer.jobs import HealingCache
from explorer.organization_run import compute as organization_compute
from explorer.pages import teaching
from explorer.state import OrgSettings, ViewState
from explorer.uploads import Upload

from .conftest import forget_memory
from .test_cli import PORT, FakeServer

SIGNING_KEY = "__dash_background_signing_secret__"
OTHER_UID = 54321


class Payload:
    """Unpickling this creates the file ``path``: proof that a planted pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (open, (str(self.path), "w"))


def plant(store: Path, key: str, marker: Path) -> None:
    """Write a pickle that would create ``marker`` into the diskcache store at ``store``."""
    with diskcache.Cache(str(store)) as planted:
        planted.set(key, Payload(marker))
    assert not marker.exists()


# --- results are data, and keys carry the engine version ----------------------------------------------

def stored_kinds(ckpt: Checkpoint, model_root: Path) -> dict[str, Any]:
    """One value of every kind the app stores in the result cache, computed for real."""
    from brillm_core import load_checkpoint

    other = load_checkpoint(model_root / "alpha", device="cpu")
    state = ViewState(model="alpha", prompt="ab c", max_new_tokens=4, reroutes=((1, 3),))
    organization = OrgSettings(n_tr=80, nodes=8, units=4, voxels=240, k_true=3, k=3, n_perm=20)
    other = copy.deepcopy(other)
    with torch.no_grad():
        other.model.biases.mul_(1.5)  # B differs from A: the comparison has a shift to store
    comparison = compare_paths(ckpt, other, "ab", compute.settings_of(state))
    shift = largest_shift(comparison)
    path = compute.compute_path(ckpt, state)
    return {
        "path": path,
        "graph": compute.compute_graph_data(ckpt.model),
        "recall": compute.compute_recall(ckpt, state.with_(hops=2, branch=3, beam=8)),
        "reverse": reverse_energies(ckpt.model, [1, 2], compute.settings_of(state)),
        "compare": comparison,
        "compare-changes": {"path": path_energy_changes(comparison, ckpt.model, other.model, 5), "shift": shift,
                            "shift_edges": edge_effects(comparison, ckpt.model, other.model,
                                                        [(shift.step, shift.lost), (shift.step, shift.gained)])},
        "edges": {"groups": parameter_groups(ckpt.model, other.model),
                  "edges": edge_changes(ckpt.model, other.model, 10)},
        "teaching-steps": {i: teaching.step_parts(ckpt, path.trace, i, None, i == 1) for i in (0, 1)},
        "organization": organization_compute(organization, None, lambda f, m: None),
        "upload": Upload("brain.npy", b"\x93NUMPY bytes"),
    }


def test_every_stored_kind_round_trips_as_data(ckpt: Checkpoint, model_root: Path, cache_dir: Path) -> None:
    cache = ResultCache(cache_dir)
    for kind, value in stored_kinds(ckpt, model_root).items():
        blob = encode(value)
        assert b"\x80\x04" not in blob[:2]  # a safetensors blob, not a pickle stream
        back = decode(blob)
        assert type(back) is type(value) and encode(back) == blob, kind  # same classes, fields, dtypes, bytes
        cache.set(kind, value)
    forget_memory(cache)
    path = cache.get("path")
    assert path.trace.energies.dtype == ckpt.model.weights.dtype
    assert path.trace.to_json() == stored_kinds_path_json(ckpt)
    assert cache.get("upload") == Upload("brain.npy", b"\x93NUMPY bytes")


def stored_kinds_path_json(ckpt: Checkpoint) -> str:
    """The trace of ``stored_kinds``' path, computed again, as lossless JSON."""
    state = ViewState(model="alpha", prompt="ab c", max_new_tokens=4, reroutes=((1, 3),))
    return compute.compute_path(ckpt, state).trace.to_json()


def test_a_new_engine_version_misses_the_cache(ckpt: Checkpoint, cache_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cache, calls = ResultCache(cache_dir), []
    real = compute.compute_path
    monkeypatch.setattr(compute, "compute_path", lambda *a, **k: calls.append(1) or real(*a, **k))
    state = ViewState(model="alpha", prompt="ab", max_new_tokens=2)
    key = compute.path_key(ckpt, state)
    compute.path_for(cache, ckpt, state)
    compute.path_for(cache, ckpt, state)
    assert len(calls) == 1
    monkeypatch.setattr(brillm_core, "ENGINE_VERSION", brillm_core.ENGINE_VERSION + 1)
    assert compute.path_key(ckpt, state) != key
    assert cache_key("graph", "m", {}) != cache_key("graph", "m", {}).replace(f":e{brillm_core.ENGINE_VERSION}:", ":e0:")
    compute.path_for(cache, ckpt, state)
    assert len(calls) == 2


def test_a_pickle_planted_in_the_result_store_is_never_loaded(cache_dir: Path, tmp_path: Path) -> None:
    ResultCache(cache_dir / "results").set("warm", [1])
    marker = tmp_path / "ran"
    plant(cache_dir / "results", "path:e2:x:y", marker)
    cache = ResultCache(cache_dir / "results")
    assert cache.get("path:e2:x:y") is None and not marker.exists()
    assert cache.get("warm") == [1]


# --- the cache directory must be the user's own -------------------------------------------------------

def test_default_cache_dir_is_the_users_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_root: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "brillm-explorer"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "brillm-explorer"
    served: dict = {}
    monkeypatch.setattr(cli, "make_server", FakeServer(served))
    assert cli.main([str(model_root), "--port", PORT]) == 0 and served["serving"]
    made = tmp_path / "home" / ".cache" / "brillm-explorer"
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert all(stat.S_IMODE((made / sub).stat().st_mode) == 0o700 for sub in ("results", "jobs"))
    assert stat.S_IMODE((made / "signing-secret").stat().st_mode) == 0o600


def unsafe_dirs(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Cache directories another user could write to, each holding a planted job store."""
    writable = tmp_path / "world-writable"
    writable.mkdir()
    writable.chmod(0o777)
    yield "writable by other users", writable
    if os.geteuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o755)
        os.chown(foreign, OTHER_UID, OTHER_UID)
        yield "belongs to another user", foreign
        foreign_jobs = tmp_path / "foreign-jobs"
        (foreign_jobs / "jobs").mkdir(parents=True, mode=0o755)
        os.chown(foreign_jobs / "jobs", OTHER_UID, OTHER_UID)
        yield "belongs to another user", foreign_jobs


def test_an_unsafe_cache_dir_is_refused_before_anything_is_unpickled(
    model_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory to another user (the world-writable case has its own test)")
    monkeypatch.setattr(cli, "make_server", lambda *a, **kw: pytest.fail("an unsafe cache must not be served"))
    cases = list(unsafe_dirs(tmp_path))
    assert len(cases) == 3
    for reason, directory in cases:
        marker = tmp_path / f"ran-{directory.name}"
        plant(directory / "jobs", SIGNING_KEY, marker)
        with pytest.raises(CacheDirError, match=reason):
            create_app([model_root], directory)
        assert cli.main([str(model_root), "--cache-dir", str(directory)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and reason in err and "Traceback" not in err
        assert not marker.exists()


def test_a_world_writable_cache_dir_is_refused(model_root: Path, tmp_path: Path) -> None:
    reason, directory = next(unsafe_dirs(tmp_path))
    marker = tmp_path / "ran"
    plant(directory / "jobs", SIGNING_KEY, marker)
    with pytest.raises(CacheDirError, match=reason):
        create_app([model_root], directory)
    assert not marker.exists()


def test_wsgi_refuses_an_unsafe_cache_dir(model_root: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    _, directory = next(unsafe_dirs(tmp_path))
    env = {**os.environ, "BRILLM_MODEL_DIRS": str(model_root), "BRILLM_CACHE_DIR": str(directory)}
    done = subprocess.run([sys.executable, "-c", "import explorer.wsgi"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "error: " in done.stderr and "Traceback" not in done.stderr


def test_an_empty_or_readable_signing_key_is_refused(model_root: Path, cache_dir: Path) -> None:
    create_app([model_root], cache_dir)
    key = cache_dir / "signing-secret"
    assert len(key.read_bytes()) == 64 and create_app([model_root], cache_dir).server.secret_key == key.read_bytes()
    key.chmod(0o644)
    with pytest.raises(CacheDirError, match="readable by other users"):
        create_app([model_root], cache_dir)
    key.chmod(0o600)
    key.write_bytes(b"")
    with pytest.raises(CacheDirError, match="holds no usable key"):
        create_app([model_root], cache_dir)


@pytest.fixture
def served_app(model_root: Path, cache_dir: Path) -> Iterator[tuple[str, Path]]:
    """The app on a free loopback port in this process, with a pickle planted under Dash's
    signing-secret key in its (private) job store beforehand; yields (url, marker path)."""
    marker = cache_dir.parent / "ran"
    cache_dir.mkdir(mode=0o700)
    plant(cache_dir / "jobs", SIGNING_KEY, marker)
    server = make_server("127.0.0.1", 0, create_app([model_root], cache_dir).server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", marker
    server.shutdown()
    thread.join(10)


def test_job_handles_are_signed_with_a_key_kept_as_data(served_app: tuple[str, Path]) -> None:
    url, marker = served_app
    http = requests.Session()
    assert http.get(url + "/", timeout=30).status_code == 200
    trace(DashSession(url, dependencies(url, http), http), "alpha", "abc", 3)  # signs and checks a job handle
    assert not marker.exists()


# --- healing deletes only what the cache made ---------------------------------------------------------

def users_folder(path: Path) -> dict[str, bytes]:
    """Fill ``path`` with a user's files, including names diskcache itself uses; returns them."""
    files = {"notes.txt": b"mine", "ab/photo.val": b"also mine", "cache.db-journal.bak": b"mine too"}
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return files


def corrupt(store: Path) -> None:
    """Overwrite a store's SQLite files (database, write-ahead log, shared memory) with garbage."""
    for name in ("cache.db", "cache.db-wal", "cache.db-shm"):
        if (store / name).exists():
            (store / name).write_bytes(b"\0garbage, not SQLite" * 512)


def assert_intact(path: Path, files: dict[str, bytes]) -> None:
    """Every file of ``users_folder`` is still there, unchanged."""
    assert {name: (path / name).read_bytes() for name in files} == files


def test_user_files_in_the_results_dir_survive_a_corrupt_database_at_start(model_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "p" / "results"
    results.mkdir(parents=True)
    files = users_folder(results)
    (results / "cache.db").write_bytes(b"not a database" * 100)
    with pytest.raises(CacheDirError, match="nothing in it is deleted"):
        create_app([model_root], tmp_path / "p")
    assert_intact(results, files)
    assert (results / "cache.db").read_bytes() == b"not a database" * 100


def test_user_files_survive_a_deleted_then_corrupt_database_at_run_time(tmp_path: Path) -> None:
    results = tmp_path / "p" / "results"
    results.mkdir(parents=True)
    files = users_folder(results)
    cache = ResultCache(results)
    cache.set("k", {"v": 1})
    (results / "cache.db").unlink()
    forget_memory(cache)
    assert cache.get("k") is None  # reopened empty, nothing deleted
    cache.set("k", {"v": 2})
    assert (results / "cache.db").is_file()
    assert_intact(results, files)
    corrupt(results)
    forget_memory(cache)
    assert cache.get("k") is None
    cache.set("k", {"v": 3})  # kept in memory: the disk layer is off rather than deleting
    assert cache.get("k") == {"v": 3}
    assert_intact(results, files)
    assert not (results / MARKER).exists()


def test_a_job_store_in_a_users_folder_is_never_cleared(tmp_path: Path) -> None:
    jobs = tmp_path / "p" / "jobs"
    jobs.mkdir(parents=True)
    files = users_folder(jobs)
    store = HealingCache(str(jobs))
    store.set("k", 1)
    (jobs / "cache.db").unlink()
    assert store.get("k") is None and store.set("k", 2) and store.get("k") == 2  # reopened, nothing deleted
    corrupt(jobs)
    with pytest.raises(CacheDirError):
        store.get("k")
    assert_intact(jobs, files)


def test_the_cache_clears_only_diskcache_files_in_a_dir_it_made(cache_dir: Path) -> None:
    cache = ResultCache(cache_dir / "results", size_limit=2**20)
    cache.set("big", b"x" * 100_000)  # large enough for diskcache to keep it in a value file
    (cache_dir / "results" / "later-note.txt").write_text("left by someone")
    corrupt(cache_dir / "results")
    forget_memory(cache)
    assert cache.get("big") is None
    cache.set("k", 1)
    forget_memory(cache)
    assert cache.get("k") == 1
    assert (cache_dir / "results" / "later-note.txt").read_text() == "left by someone"
    assert not any(p.suffix == ".val" for p in (cache_dir / "results").rglob("*"))


def test_a_database_replaced_by_another_process_is_followed(cache_dir: Path) -> None:
    first, second = ResultCache(cache_dir), ResultCache(cache_dir)
    first.set("k", 1)
    shutil.rmtree(cache_dir)
    second.set("k", 2)  # the second process heals first, making a new database
    forget_memory(first)
    assert first.get("k") == 2  # the first one reads the new database, not its deleted file


# --- production: gunicorn workers follow a deleted cache directory ------------------------------------

GUNICORN_PORT = int(os.environ.get("DASH_TEST_PORT_BASE", "8900")) + 61


def test_gunicorn_recovers_when_its_cache_dir_is_deleted(model_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    proc = start_server("gunicorn", model_root, cache, GUNICORN_PORT, workers=2, threads=4)
    try:
        url = f"http://127.0.0.1:{GUNICORN_PORT}"
        http = requests.Session()
        session = DashSession(url, dependencies(url, http), http)
        for prompt in ("abc", "bcd", "cde"):  # both workers open their stores and sign handles
            trace(session, "alpha", prompt, 3)
        shutil.rmtree(cache)
        for n, prompt in enumerate(["new one", "another", "third try", "fourth", "fifth", "sixth"]):
            trace(session, "alpha" if n % 2 else "beta", prompt, 2 + n % 3)  # each a new job, polled by either worker
        assert (cache / "results" / "cache.db").is_file() and (cache / "jobs" / "cache.db").is_file()
        assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    finally:
        stop_server(proc)


def test_decoding_builds_only_the_projects_dataclasses() -> None:
    from dataclasses import dataclass

    import explorer.cache_codec as codec

    assert codec.project_dataclass("brillm_core.trace:Trace") is brillm_core.Trace
    for name in ("subprocess:Popen", "dataclasses:Field", "brillm_core.trace:Trace.__init__",
                 "brillm_core.trace:Path", "explorer.never_imported:Thing", "brillm_core.trace:propagate"):
        with pytest.raises(ValueError):
            codec.project_dataclass(name)

    @dataclass
    class Elsewhere:
        x: int

    with pytest.raises(ValueError):
        decode(encode(Elsewhere(1)))  # a dataclass outside the project's modules is not rebuilt
