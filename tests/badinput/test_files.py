"""Files planted where the program reads or writes: named pipes in a checkpoint, links in shared folders,
a cache folder that another user could swap.

The other user's files are made by giving them away (os.lchown), which needs root; the tests that need
it say so and are skipped otherwise.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from explorer import cli
from explorer.app import create_app
from explorer.cache import CacheDirError
from explorer.testing.dash_client import DashSession, dependencies
from explorer.testing.server import free_port

from ..cli_runner import brillm
from . import corpus

OTHER_UID = 54321
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")


def fifo_in(checkpoint: Path, name: str) -> Path:
    """Replace a checkpoint's file ``name`` with a named pipe that no one writes to."""
    (checkpoint / name).unlink(missing_ok=True)
    os.mkfifo(checkpoint / name)
    return checkpoint


@pytest.mark.parametrize("name, code, fragment", [
    ("config.json", 1, "not a regular file (it is a named pipe)"),
    ("metadata.json", 1, "not a regular file (it is a named pipe)"),
    ("model.safetensors", 1, "model.safetensors is missing"),
    ("chars.json", 1, "holds neither"),
    ("model_id.json", 0, ""),  # only a shortcut: the id is computed from the files instead
])
def test_a_named_pipe_in_a_checkpoint_is_refused_at_once(tmp_path: Path, name: str, code: int, fragment: str) -> None:
    checkpoint = fifo_in(corpus.good_checkpoint(tmp_path / "ck"), name)
    result = brillm("info", str(checkpoint), text=True, timeout=60)  # an open() of the pipe would wait forever
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    if code:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and fragment in errors[0], result.stderr


def test_a_link_to_a_checkpoint_with_a_named_pipe_answers(tmp_path: Path) -> None:
    """``#m=`` naming a checkpoint whose metadata is a named pipe: the page says why, at once (the request
    used to hang, and with it every user)."""
    corpus.good_checkpoint(tmp_path / "models" / "good")
    fifo_in(corpus.good_checkpoint(tmp_path / "models" / "piped"), "metadata.json")
    server = make_server("127.0.0.1", 0, create_app([tmp_path / "models"], tmp_path / "cache").server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        http = requests.Session()
        session = DashSession(url, dependencies(url, http), http, timeout=30)
        out, meta = session.open_link("sp", "#m=piped&p=ab")
        shown = str(out.get("sp-msg-state", "")) + str((meta or {}).get("error", ""))
        assert "not a regular file (it is a named pipe)" in shown
    finally:
        server.shutdown()
        thread.join(10)


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A folder like /tmp: everyone may write, only an entry's owner may rename it (mode 1777)."""
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)
    return folder


@needs_root
@pytest.mark.parametrize("command", [
    ["trace", "{good}", "--prompt", "ab", "--json", "{link}"],
    ["recall", "{good}", "--prompt", "ab", "--hops", "1", "--csv", "{link}"],
])
def test_a_link_planted_by_another_user_in_a_shared_folder_is_not_written_through(
        tmp_path: Path, shared: Path, command: list[str]) -> None:
    """Another user's link in /tmp pointing at the user's file: the user's write must not replace the file."""
    good = corpus.good_checkpoint(tmp_path / "good")
    precious = tmp_path / "home" / ".bashrc"
    precious.parent.mkdir()
    precious.write_text("the user's own settings\n")
    link = shared / "rt_trace.json"
    link.symlink_to(precious)
    os.lchown(link, OTHER_UID, OTHER_UID)
    result = brillm(*(a.format(good=good, link=link) for a in command), text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "a link of another user" in result.stderr and result.stderr.count("error:") == 1
    assert precious.read_text() == "the user's own settings\n"


def test_the_users_own_links_are_still_written_through(tmp_path: Path, shared: Path) -> None:
    good = corpus.good_checkpoint(tmp_path / "good")
    target = tmp_path / "out.json"
    (shared / "mine.json").symlink_to(target)
    result = brillm("trace", str(good), "--prompt", "ab", "--json", str(shared / "mine.json"), text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (shared / "mine.json").is_symlink() and '"brillm-trace"' in target.read_text()


@pytest.mark.parametrize("mode", [0o777, 0o775])
def test_a_cache_folder_inside_a_folder_others_may_write_is_refused(tmp_path: Path, mode: int,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Another user could rename the folder holding the cache and put one of theirs in its place."""
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(mode)
    with pytest.raises(CacheDirError, match="another user could change"):
        create_app([tmp_path], open_folder / "cache")
    assert cli.main([str(tmp_path), "--cache-dir", str(open_folder / "cache"), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "another user could change" in err and "Traceback" not in err
    assert not (open_folder / "cache").exists()


@needs_root
def test_a_cache_folder_inside_another_users_folder_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, OTHER_UID, OTHER_UID)
    with pytest.raises(CacheDirError, match="another user could change"):
        create_app([tmp_path], theirs / "cache")


@needs_root
def test_a_cache_folder_reached_through_another_users_link_is_refused(tmp_path: Path, shared: Path) -> None:
    (tmp_path / "real-cache").mkdir(mode=0o700)
    (shared / "cache").symlink_to(tmp_path / "real-cache")
    os.lchown(shared / "cache", OTHER_UID, OTHER_UID)
    with pytest.raises(CacheDirError, match="a link of another user"):
        create_app([tmp_path], shared / "cache")


def test_a_cache_folder_in_a_sticky_shared_folder_is_accepted(tmp_path: Path, shared: Path) -> None:
    """/tmp-like folders are fine: only the cache's owner may rename what it holds."""
    corpus.good_checkpoint(tmp_path / "models" / "good")
    assert create_app([tmp_path / "models"], shared / "cache").server.config["BRILLM_MODELS"] == ["good"]
