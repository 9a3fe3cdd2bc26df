"""The README is a user's page: short, its links lead somewhere, and its examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from brillm_core.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(language: str) -> list[str]:
    """The README's fenced code blocks of ``language``."""
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_readme_is_a_page_a_newcomer_reads() -> None:
    assert len(README.splitlines()) <= 300
    assert not re.search(r"issue [0-9]|stop [0-9]", README, re.I)
    headings = [h for h in re.findall(r"^## (.+)$", README, re.M)]
    assert headings[:2] == ["Two commands", "The views"] and headings[-1] == "Documentation"


def test_every_local_link_and_picture_exists() -> None:
    targets = re.findall(r"\]\(([^)#]+)[^)]*\)", README)
    local = [t for t in targets if not t.startswith("http")]
    assert local, "the README links its docs"
    assert [t for t in local if not (ROOT / t).exists()] == []


def test_every_command_line_example_names_a_real_command() -> None:
    listed = {m for block in code_blocks("bash") for m in re.findall(r"^brillm ([a-z-]+)", block, re.M)}
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse keeps them there
    assert listed and listed - commands == set()


def test_the_python_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = code_blocks("python")
    monkeypatch.chdir(tmp_path)  # it writes t.json where it runs
    (tmp_path / "sample_models").symlink_to(ROOT / "sample_models")
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - the project's own example
    assert (tmp_path / "t.json").stat().st_size > 0
    assert scope["alt"].path[:4].tolist() == scope["trace"].path[:4].tolist()
