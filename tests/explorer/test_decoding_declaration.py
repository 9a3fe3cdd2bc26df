"""The decoding settings are declared once (brillm_core.decoding): the command line's options, the explorer's
form, its link keys and both validations are made from that declaration."""

from __future__ import annotations

import sys
from pathlib import Path
from dataclasses import fields

import pytest
from dash import dcc, html

from brillm_core import BriLLMError, DecodeSettings
from brillm_core import decoding
from brillm_core.cli import build_parser
from brillm_core.decoding import DECODING, MIN_TEMPERATURE, Setting
from explorer import components as ui
from explorer import state as st
from explorer.compute import settings_of
from explorer.pathview import FORM, PathPage

NAMES = [s.name for s in DECODING]


def options(command: str) -> dict[str, str]:
    """Each option of a ``brillm`` command and its help."""
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    return {a.option_strings[0]: a.help for a in sub._actions if a.option_strings}


def controls(panel: html.Details) -> dict[str, str]:
    """Each control of the settings panel by id, with the text of the label around it."""
    found, stack = {}, [(panel, "")]
    while stack:
        item, label = stack.pop()
        children = getattr(item, "children", None)
        children = children if isinstance(children, list) else [children] if children is not None else []
        if isinstance(item, html.Label):
            label = " ".join(c for c in children if isinstance(c, str)) + " ".join(
                c.children for c in children if isinstance(c, html.Span) and isinstance(c.children, str))
        if isinstance(item, (dcc.Input, dcc.RadioItems, dcc.Checklist)):
            found[item.id] = label + str(getattr(item, "options", ""))
        stack.extend((c, label) for c in reversed(children))
    return found


def test_every_declared_setting_is_a_field_of_the_engine_and_of_the_view() -> None:
    assert [f.name for f in fields(DecodeSettings)] == NAMES
    assert set(NAMES) <= {f.name for f in fields(st.ViewState)}
    assert FORM == ("prompt", *NAMES)


def with_extra_setting(monkeypatch: pytest.MonkeyPatch) -> Setting:
    """One more declared setting, seen by every module that reads the declaration."""
    extra = Setting("extra_knob", int, 7, "Extra knob", "a knob declared only by this test", "xk", low=1, high=9)
    declared = decoding.DECODING
    for module in list(sys.modules.values()):
        if getattr(module, "DECODING", None) is declared:
            monkeypatch.setattr(module, "DECODING", (*declared, extra))
    return extra


def test_the_command_line_options_are_made_from_the_declaration(monkeypatch: pytest.MonkeyPatch) -> None:
    for command in ("generate", "trace"):
        made = options(command)
        for s in DECODING:
            assert made[s.option].startswith(s.help)
    assert {"--release-decoder", "--memory-window"} <= set(options("score"))
    extra = with_extra_setting(monkeypatch)
    assert options("generate")[extra.option] == f"{extra.help}; 1..9 (default 7)"


def test_the_form_is_made_from_the_declaration(monkeypatch: pytest.MonkeyPatch) -> None:
    made = controls(ui.settings_panel("x"))
    assert list(made) == [ui.setting_id("x", n) for n in NAMES]
    for s in DECODING:
        assert s.label in made[ui.setting_id("x", s.name)]
    assert PathPage("x").form_ids == ["x-prompt", *made]
    extra = with_extra_setting(monkeypatch)
    assert controls(ui.settings_panel("x"))[ui.setting_id("x", extra.name)] == "Extra knob (1..9)"


def test_the_link_keys_are_the_declared_ones_and_every_setting_round_trips() -> None:
    changed = st.ViewState(max_new_tokens=3, greedy=False, temperature=0.25, top_k=4, seed=12,
                           release_decoder=True, start_signal=(0.5, -2.0), memory_window=2)
    link = st.to_hash(changed)
    for s in DECODING:
        assert f"{s.key}=" in link
    assert st.from_hash(link) == (changed, [])


@pytest.mark.parametrize("setting", [s for s in DECODING if s.kind in (int, float)], ids=lambda s: s.name)
def test_the_explorer_accepts_what_the_engine_accepts_and_nothing_else(setting: Setting) -> None:
    low, high = st.view_range(setting)
    for raw in (-1e30, 1e30):  # clamped into the view's range: a value the engine takes
        state, warnings = st.from_hash(f"#{setting.key}={raw:g}")
        assert warnings
        settings_of(state)
    if setting.low is not None:  # the engine's own lower bound is taken as it is
        state, warnings = st.from_hash(f"#{setting.key}={setting.low}")
        assert warnings == [] and getattr(settings_of(state), setting.name) == setting.low
        if setting.kind is float:
            with pytest.raises(BriLLMError, match=f"{setting.name} must be at least"):
                DecodeSettings(**{setting.name: setting.low / 2})


def test_the_temperature_range_is_the_engines() -> None:
    state, warnings = st.from_hash("#t=0.01&g=0")
    assert (state.temperature, warnings) == (0.01, [])
    assert st.view_range(decoding.SETTINGS["temperature"])[0] == MIN_TEMPERATURE


def test_the_signal_path_page_documents_every_declared_setting() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "views" / "signal-path.md").read_text()
    rows = [line.split("|")[1:-1] for line in doc.splitlines() if line.startswith("| ") and "`--" in line]
    documented = {cells[2].strip().strip("`"): (cells[1].strip(), cells[3].strip().strip("`")) for cells in rows}
    assert documented == {s.option: (s.label, s.key) for s in DECODING}
