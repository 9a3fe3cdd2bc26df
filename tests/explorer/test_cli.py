"""The `explore` command's arguments and its checks before serving."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from explorer import cli


def test_parser_defaults() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli.add_explore_parser(sub)
    args = parser.parse_args(["explore"])
    assert (args.host, args.port, args.model_dirs, args.debug) == ("127.0.0.1", 8050, [], False)
    assert args.handler is cli.run_explore


def test_missing_dir_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_serves_the_given_models(model_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    served = {}
    monkeypatch.setattr("dash.Dash.run", lambda self, **kw: served.update(kw))
    assert cli.main([str(model_root), "--port", "8123", "--cache-dir", str(tmp_path / "c")]) == 0
    assert served == {"host": "127.0.0.1", "port": 8123, "debug": False}
    assert "alpha, beta" in capsys.readouterr().out
