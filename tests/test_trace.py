"""Traces: lossless JSON round trip, the documented schema, DataFrames."""

from __future__ import annotations

import json
import math

import pytest
import torch

from brillm_core import BriLLMError, DecodeSettings, Trace

from .conftest import make_checkpoint


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality with NaN equal to NaN."""
    return a.shape == b.shape and bool(((a == b) | (a.isnan() & b.isnan())).all())


def test_json_round_trip_is_lossless() -> None:
    ckpt = make_checkpoint(seed=4)
    settings = DecodeSettings(max_new_tokens=6, greedy=False, temperature=0.8, top_k=5, seed=11,
                              release_decoder=True, start_signal=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6))
    trace = ckpt.trace("ab zq", settings)
    back = Trace.from_json(trace.to_json())
    for name in ("path", "energies", "probabilities", "signals_in", "outputs", "forced"):
        assert same(getattr(back, name), getattr(trace, name)), name
    assert all(same(a, b) for a, b in zip(back.memory, trace.memory))
    assert back.settings == trace.settings and back.tokens == trace.tokens
    assert back.unknown == trace.unknown and back.model_id == trace.model_id
    assert back.to_json() == trace.to_json()


def test_schema_has_one_value_per_node_and_null_for_non_candidates() -> None:
    ckpt = make_checkpoint(seed=4)
    trace = ckpt.trace([1, 2, 3], DecodeSettings(max_new_tokens=2, release_decoder=True))
    doc = json.loads(trace.to_json())
    assert doc["schema"] == "brillm-trace" and doc["version"] == 1
    assert len(doc["steps"]) == 4
    for i, step in enumerate(doc["steps"]):
        assert {"source", "target", "energies", "probabilities", "signal_in", "output", "memory_weights", "forced"} <= set(step)
        assert len(step["energies"]) == len(step["probabilities"]) == 12
        assert step["energies"][step["source"]] is None  # release decoder: no self-loop candidate
        assert len(step["memory_weights"]) == i
        assert math.isclose(sum(p for p in step["probabilities"] if p is not None), 1.0, rel_tol=1e-5)


def test_frames_agree_with_steps() -> None:
    trace = make_checkpoint(seed=2).trace("abc", DecodeSettings(max_new_tokens=3))
    frame = trace.to_frame()
    assert list(frame["target"]) == trace.targets.tolist()
    assert list(frame["forced"]) == [True, True, False, False, False]
    for row, step in zip(frame.itertuples(), trace.steps):
        assert row.energy == step.chosen_energy and row.rank == step.chosen_rank
    landscape = trace.landscape_frame()
    assert len(landscape) == 5 * 12
    assert landscape.query("step == 2 and node == 7")["energy"].item() == pytest.approx(float(trace.energies[2, 7]))


@pytest.mark.parametrize("text,message", [("{", "not valid JSON"), ('{"schema": "x"}', "not a trace"),
                                          ('{"schema": "brillm-trace", "version": 9}', "version 9")])
def test_bad_trace_documents(text: str, message: str) -> None:
    with pytest.raises(BriLLMError, match=message):
        Trace.from_json(text)
