"""Output writes land on what a path points at: link targets, devices and FIFOs are never replaced."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from brillm_core import CheckpointError, load_checkpoint
from brillm_core.atomic import atomic_open, write_atomic, write_json_atomic

from .cli_runner import brillm as run_cli
from .conftest import make_checkpoint


def read_fifo_in_thread(fifo: Path) -> tuple[threading.Thread, list[bytes]]:
    """Start a reader of ``fifo``; its bytes land in the returned list when the thread ends."""
    got: list[bytes] = []
    thread = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    thread.start()
    return thread, got


def test_new_and_existing_files_are_replaced_whole_keeping_their_mode(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1} and stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o600)
    write_atomic(path, "second")
    assert path.read_text() == "second" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temporary file left


def test_root_replacing_a_users_file_keeps_its_owner(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can write a file as its owner's")
    path = tmp_path / "theirs.json"
    path.write_text("old")
    os.chown(path, 54321, 54322)
    write_json_atomic(path, {"new": True})
    assert (path.stat().st_uid, path.stat().st_gid) == (54321, 54322) and json.loads(path.read_text()) == {"new": True}


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as handle:
            handle.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_symlink_stays_a_link_and_its_target_gets_the_content(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_json_atomic(link, [1, 2])
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text()) == [1, 2]
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(elsewhere / "new.txt")
    write_atomic(dangling, b"bytes")
    assert dangling.is_symlink() and (elsewhere / "new.txt").read_bytes() == b"bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling.txt", "elsewhere", "link.json"]


def test_a_fifo_gets_the_bytes_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    thread, got = read_fifo_in_thread(fifo)
    write_json_atomic(fifo, {"through": "a pipe"})
    thread.join(10)
    assert json.loads(got[0]) == {"through": "a pipe"}
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_dev_null_is_written_not_replaced() -> None:
    write_atomic("/dev/null", "discarded")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def brillm(*args: str) -> subprocess.CompletedProcess:
    """Run the core's command line in a new process, its output as text."""
    return run_cli(*args, text=True)


def test_trace_json_through_a_link_and_into_a_fifo(tmp_path: Path, saved_checkpoint: Path) -> None:
    target = tmp_path / "real.json"
    link = tmp_path / "trace.json"
    link.symlink_to(target)
    done = brillm("trace", str(saved_checkpoint), "--prompt", "ab", "--max-new-tokens", "2", "--json", str(link))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and json.loads(target.read_text())["schema"] == "brillm-trace"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    thread, got = read_fifo_in_thread(fifo)
    done = brillm("trace", str(saved_checkpoint), "--prompt", "ab", "--max-new-tokens", "2", "--json", str(fifo))
    thread.join(10)
    assert done.returncode == 0, done.stderr
    assert json.loads(got[0])["path"] == json.loads(target.read_text())["path"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_recall_csv_through_a_link(tmp_path: Path, saved_checkpoint: Path) -> None:
    target = tmp_path / "real.csv"
    link = tmp_path / "recall.csv"
    link.symlink_to(target)
    done = brillm("recall", str(saved_checkpoint), "--prompt", "ab", "--hops", "1", "--csv", str(link))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and target.read_text().startswith("node,")


def test_checkpoint_saved_through_a_link_replaces_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    real = make_checkpoint(seed=1).save(tmp_path / "real")
    link = tmp_path / "current"
    link.symlink_to(real, target_is_directory=True)
    newer = make_checkpoint(seed=2)
    newer.save(link, overwrite=True)
    assert link.is_symlink() and load_checkpoint(real).model_id == newer.model_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "real"]


def test_checkpoint_onto_a_file_or_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("keep me")
    for path in (tmp_path / "file", Path("/dev/null")):
        with pytest.raises(CheckpointError, match="not a directory"):
            make_checkpoint().save(path, overwrite=True)
    assert (tmp_path / "file").read_text() == "keep me" and stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_report_directory_through_a_dangling_link_is_made_at_its_target(tmp_path: Path) -> None:
    from brillm_core.organization.commands import write_atomically

    link = tmp_path / "report"
    link.symlink_to(tmp_path / "reports-here", target_is_directory=True)
    write_atomically(link, lambda d: (d / "summary.json").write_text("{}"))
    assert link.is_symlink() and (tmp_path / "reports-here" / "summary.json").read_text() == "{}"
