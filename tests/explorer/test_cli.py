"""The `explore` command's arguments and its checks before serving."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from explorer import cli

ROOT = Path(__file__).resolve().parents[2]


def test_parser_defaults() -> None:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.model_dirs, args.debug) == ("127.0.0.1", 8050, [], False)
    assert args.handler is cli.run_explore


def test_missing_dir_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


PORT = str(int(os.environ.get("DASH_TEST_PORT_BASE", "8050")) + 77)  # a port of this test run's own range


class FakeServer:
    """Records what make_server was given; serve_forever returns at once."""

    def __init__(self, served: dict) -> None:
        self.served = served

    def __call__(self, host: str, port: int, app: object, threaded: bool) -> "FakeServer":
        self.served.update(host=host, port=port, threaded=threaded)
        return self

    def serve_forever(self) -> None:
        self.served["serving"] = True


def test_serves_the_given_models_with_one_start_line(model_root: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    served: dict = {}
    monkeypatch.setattr(cli, "make_server", FakeServer(served))
    gc.unfreeze()
    assert cli.main([str(model_root), "--port", PORT, "--cache-dir", str(tmp_path / "c")]) == 0
    assert served == {"host": "127.0.0.1", "port": int(PORT), "threaded": True, "serving": True}
    assert gc.get_freeze_count() > 10_000  # the built app is kept out of full collections
    out = capsys.readouterr()
    assert out.out.count("\n") == 1 and "alpha, beta" in out.out and "Dash is running" not in out.out + out.err


def test_a_taken_port_prints_only_the_error(model_root: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        assert cli.main([str(model_root), "--port", port, "--cache-dir", str(tmp_path / "c")]) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("error: cannot listen on 127.0.0.1:" + port)
    assert out.err.count("\n") == 1


def test_non_loopback_host_warns_and_refuses_debug(model_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    served: dict = {}
    monkeypatch.setattr(cli, "make_server", FakeServer(served))
    assert cli.main([str(model_root), "--host", "0.0.0.0", "--port", PORT, "--cache-dir", str(tmp_path / "c")]) == 0
    assert served["host"] == "0.0.0.0" and "not loopback" in capsys.readouterr().err
    assert cli.main([str(model_root), "--host", "::1", "--port", PORT, "--cache-dir", str(tmp_path / "c")]) == 0
    assert "warning" not in capsys.readouterr().err
    assert cli.main([str(model_root), "--host", "192.168.1.5", "--debug"]) == 2
    assert "loopback --host only" in capsys.readouterr().err
    assert [cli.is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "localhost", "[::1]", "0.0.0.0", "example.org")] \
        == [True, True, True, True, False, False]


def test_wsgi_reads_model_folders_from_the_environment(model_root: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRILLM_MODEL_DIRS", str(model_root))
    monkeypatch.setenv("BRILLM_CACHE_DIR", str(tmp_path / "cache"))
    wsgi = importlib.import_module("explorer.wsgi")
    assert wsgi.server.config["BRILLM_MODELS"] == ["alpha", "beta"] and (tmp_path / "cache" / "jobs").is_dir()
    assert wsgi.model_dirs_from(f"{model_root}:{model_root / 'alpha'}") == [model_root, model_root / "alpha"]
    with pytest.raises(SystemExit, match="names no directory"):
        wsgi.model_dirs_from(str(tmp_path / "missing"))


def test_a_wsgi_worker_keeps_its_built_app_out_of_full_collections(model_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "BRILLM_MODEL_DIRS": str(model_root), "BRILLM_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", "import gc, explorer.wsgi; print(gc.get_freeze_count())"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 10_000


def test_brillm_explore_runs_the_apps_command(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The core's `brillm` hands `explore` and its arguments to this module, through the entry point pyproject declares."""
    from brillm_core.cli import COMMAND_GROUP, main
    from tests.test_cli import declared_commands

    monkeypatch.setattr("brillm_core.cli.entry_points", lambda group: declared_commands() if group == COMMAND_GROUP else [])
    assert main(["explore", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err
