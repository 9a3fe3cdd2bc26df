"""The engine's command line, run as a user would: exit codes, messages, files written."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from brillm_core.cli import COMMAND_GROUP, build_parser
from tests.cli_runner import brillm

COMMANDS = ["import-release", "generate", "trace", "recall", "score", "info"]


def test_every_command_has_help() -> None:
    parser = build_parser()
    assert set(COMMANDS) <= set(parser._subparsers._group_actions[0].choices)
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, "--help"])
        assert exit_info.value.code == 0


def test_trace_writes_one_step_per_edge(saved_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "trace.json"
    result = brillm("trace", str(saved_checkpoint), "--ids", "3,1,4", "--max-new-tokens", "5",
                    "--temperature", "0.8", "--top-k", "3", "--seed", "1", "--json", str(out))
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert [s["source"] for s in doc["steps"]][:2] == [3, 1] and len(doc["steps"]) == 7
    assert all(len(s["energies"]) == 12 and len(s["probabilities"]) == 12 for s in doc["steps"])
    assert doc["settings"]["top_k"] == 3 and doc["settings"]["greedy"] is False


def test_generate_info_recall_score(saved_checkpoint: Path, tmp_path: Path) -> None:
    gen = brillm("generate", str(saved_checkpoint), "--prompt", "abc", "--max-new-tokens", "4", "--release-decoder")
    assert gen.returncode == 0 and gen.stdout.decode().startswith("abc")
    info = brillm("info", str(saved_checkpoint), "--json")
    assert json.loads(info.stdout)["nodes"] == 12
    recall = brillm("recall", str(saved_checkpoint), "--prompt", "ab", "--hops", "2", "--csv", str(tmp_path / "r.csv"))
    assert recall.returncode == 0 and (tmp_path / "r.csv").read_text().startswith("node,token,activation,first_hop")
    reverse = brillm("recall", str(saved_checkpoint), "--ids", "1", "--reverse", "c")
    assert reverse.returncode == 0 and "source" in reverse.stdout.decode()
    text = tmp_path / "t.txt"
    text.write_text("abcab cab")
    score = brillm("score", str(saved_checkpoint), str(text), "--json")
    assert json.loads(score.stdout)["tokens"] == 8
    previous_only = brillm("score", str(saved_checkpoint), str(text), "--json", "--memory-window", "1")
    figures, whole = json.loads(previous_only.stdout), json.loads(score.stdout)
    assert figures["tokens"] == 8 and figures["nll"] != whole["nll"]  # the ablation scores another model


@pytest.mark.parametrize(
    "args,message",
    [
        (["trace", "{ckpt}", "--prompt", "", "--json", "{out}"], "--ids NODE_ID"),
        (["trace", "{ckpt}", "--ids", "1," * 500 + "1", "--max-new-tokens", "20", "--json", "{out}"], "position table"),
        (["trace", "{ckpt}", "--ids", "1,x", "--json", "{out}"], "comma-separated"),
        (["generate", "{ckpt}", "--prompt-file", "{bad}"], "not valid UTF-8"),
        (["generate", "{tmp}/missing", "--prompt", "a"], "not found"),
        (["score", "{ckpt}", "{bad}"], "not valid UTF-8"),
        (["generate", "{ckpt}", "--prompt", "a", "--temperature", "0"], "temperature"),
        (["import-release", "{bad}", "--vocab", "{bad}", "--counts", "{bad}", "-o", "{ckpt}"], "already exists"),
    ],
)
def test_user_errors_exit_1_with_a_message_and_write_nothing(saved_checkpoint: Path, tmp_path: Path, args, message) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ab\xff\xfe")
    out = tmp_path / "out.json"
    fields = {"ckpt": str(saved_checkpoint), "out": str(out), "bad": str(bad), "tmp": str(tmp_path)}
    result = brillm(*[a.format(**fields) for a in args])
    assert result.returncode == 1, result.stderr
    assert message in result.stderr.decode() and "Traceback" not in result.stderr.decode()
    assert not out.exists()


def test_unknown_prompt_characters_warn(saved_checkpoint: Path) -> None:
    result = brillm("generate", str(saved_checkpoint), "--prompt", "ab~", "--max-new-tokens", "1")
    assert result.returncode == 0 and "'~'" in result.stderr.decode() and "unknown node" in result.stderr.decode()


def test_usage_errors_exit_2() -> None:
    assert brillm("trace").returncode == 2
    # and through the real entry point, a new interpreter running `python -m brillm_core`
    real = subprocess.run([sys.executable, "-m", "brillm_core", "trace"], capture_output=True, timeout=120)
    assert real.returncode == 2 and b"usage: brillm trace" in real.stderr


def test_greedy_wins_over_seed_and_sampling_follows_seed(saved_checkpoint: Path) -> None:
    parser = build_parser()
    from brillm_core.cli.engine import _settings

    assert _settings(parser.parse_args(["trace", "m", "--ids", "1", "--greedy", "--seed", "3", "--json", "-"])).greedy
    sampled = _settings(parser.parse_args(["trace", "m", "--ids", "1", "--top-k", "3", "--json", "-"]))
    assert not sampled.greedy and sampled.top_k == 3 and sampled.temperature == 1.0


def test_engine_commands_never_import_the_app(saved_checkpoint: Path) -> None:
    """`brillm trace` runs without importing Dash or the explorer (the app registers only `explore`)."""
    code = ("import sys; from brillm_core.cli import main; "
            f"code = main(['trace', {str(saved_checkpoint)!r}, '--ids', '3,1', '--max-new-tokens', '2', '--json', '-']); "
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dash', 'plotly', 'explorer')); "
            "print('LOADED', code, loaded, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "LOADED 0 []" in result.stderr.decode()


def declared_commands() -> list[EntryPoint]:
    """The commands pyproject.toml adds to `brillm` through entry points, as installing it registers them."""
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"][COMMAND_GROUP]
    return [EntryPoint(name, value, COMMAND_GROUP) for name, value in declared.items()]


def test_console_script_is_the_cores_and_the_app_adds_explore(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyproject's `brillm` script is the core's main; the app adds `explore` by an entry point, listed in --help."""
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["brillm"] == "brillm_core.cli:main"
    assert [(p.name, p.value) for p in declared_commands()] == [("explore", "explorer.cli:main")]
    monkeypatch.setattr("brillm_core.cli.entry_points", lambda group: declared_commands() if group == COMMAND_GROUP else [])
    assert "explore" in build_parser().format_help()


def test_every_model_command_takes_a_run_folder(tmp_path: Path) -> None:
    """`info RUN_DIR` and `trace RUN_DIR` (like `eval RUN_DIR`) read the run's newest checkpoint."""
    from tests.conftest import make_checkpoint

    run = tmp_path / "run"
    older = make_checkpoint(seed=1).save(run / "checkpoints" / "step-00000002")
    newer = make_checkpoint(seed=2).save(run / "checkpoints" / "step-00000010")

    def model_id(path: Path) -> str:
        result = brillm("info", str(path), "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["model_id"]

    assert model_id(run) == model_id(newer) != model_id(older)
    trace = brillm("trace", str(run), "--ids", "3,1", "--max-new-tokens", "1", "--json", "-")
    assert trace.returncode == 0, trace.stderr
    assert json.loads(trace.stdout)["model_id"] == model_id(newer)
