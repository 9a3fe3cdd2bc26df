"""View state: URL hash and JSON round trips, clamping and warnings."""

from __future__ import annotations

import json

import pytest

from brillm_core.decoding import MIN_TEMPERATURE
from explorer import state as st


def test_hash_round_trip_keeps_every_field() -> None:
    s = st.ViewState(model="alpha", prompt="hi there & = #", max_new_tokens=7, greedy=False, temperature=0.7, top_k=5,
                     seed=9, release_decoder=True, start_signal=(0.5, -1.0), step=3, reroutes=((1, 4), (2, 5)),
                     node=7, graph_k=2, hops=4, branch=3, beam=10)
    back, warnings = st.from_hash(st.to_hash(s))
    assert back == s and warnings == []


def test_defaults_give_empty_hash() -> None:
    assert st.to_hash(st.DEFAULT) == ""
    assert st.from_hash("") == (st.DEFAULT, [])


@pytest.mark.parametrize("text, field, value", [
    ("#n=99999", "max_new_tokens", st.VIEW_LIMITS["max_new_tokens"]),
    ("#n=abc", "max_new_tokens", st.DEFAULT.max_new_tokens),
    ("#t=nan", "temperature", st.DEFAULT.temperature),
    ("#t=0", "temperature", MIN_TEMPERATURE),
    ("#s=-4", "step", 0),
    ("#g=maybe", "greedy", True),
    ("#ss=1,x", "start_signal", ()),
    ("#r=1:2;bad;3:-1", "reroutes", ((1, 2),)),
    ("#gk=0", "graph_k", 1),
    ("#bm=1e9", "beam", st.MAX_BEAM),
])
def test_nonsense_values_are_clamped_with_a_warning(text: str, field: str, value: object) -> None:
    s, warnings = st.from_hash(text)
    assert getattr(s, field) == value
    assert warnings


def test_unknown_keys_ignored_and_model_is_only_a_name() -> None:
    s, warnings = st.from_hash("#m=../../etc/passwd&evil=1")
    assert s.model == "../../etc/passwd" and warnings == []


def test_overlong_prompt_is_cut() -> None:
    s, warnings = st.from_hash("#p=" + "a" * (st.MAX_PROMPT_CHARS + 10))
    assert len(s.prompt) == st.MAX_PROMPT_CHARS and warnings


def test_export_import_round_trip() -> None:
    s = st.ViewState(model="beta", prompt="abc", step=2)
    text = st.export_document("signal", s, {"x": [1, 2]})
    assert json.loads(text)["data"] == {"x": [1, 2]}
    view, back, warnings = st.import_document(text)
    assert (view, back, warnings) == ("signal", s, [])


@pytest.mark.parametrize("text", ["not json", "[]", '{"schema": "other"}',
                                  '{"schema": "brillm-explorer/view", "version": 99, "state": {}}'])
def test_import_rejects_foreign_files(text: str) -> None:
    with pytest.raises(ValueError):
        st.import_document(text)


def test_a_link_without_checkpoint_opens_the_pages_preferred_one() -> None:
    from explorer.pathview import resolve_model
    from explorer.state import ViewState

    names = ["kjv-early", "kjv-final", "teaching"]
    assert resolve_model(ViewState(), names, "teaching") == (ViewState(model="teaching"), [])
    assert resolve_model(ViewState(), names)[0].model == "kjv-early"
    assert resolve_model(ViewState(), names, "missing")[0].model == "kjv-early"
    state, messages = resolve_model(ViewState(model="../x"), names, "teaching")
    assert state.model == "teaching" and "not in the configured model folders" in messages[0]


def test_a_view_file_written_before_the_settings_took_their_declared_names_still_opens() -> None:
    text = json.dumps({"schema": st.VIEW_SCHEMA, "version": st.VIEW_VERSION, "view": "signal-path",
                       "state": {"model": "alpha", "prompt": "ab", "new_tokens": 5}, "data": None})
    assert st.import_document(text) == ("signal-path", st.ViewState(model="alpha", prompt="ab", max_new_tokens=5), [])


def test_a_float_in_a_link_reads_back_as_the_same_float() -> None:
    state = st.ViewState(temperature=0.123456789, start_signal=(1 / 3, 2.5))
    assert st.from_hash(st.to_hash(state)) == (state, [])
    assert "t=2&" in st.to_hash(st.ViewState(temperature=2.0, seed=4)) + "&"
