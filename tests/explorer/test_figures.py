"""Figures as pure functions: their numbers equal the trace's, recall's and graph data's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from brillm_core import Checkpoint, DecodeSettings
from explorer import compute
from explorer.cache import ResultCache
from explorer.figures import card, common, recall, signal
from explorer.graphdata import compute_graph_data
from explorer.state import ViewState


@pytest.fixture(scope="module")
def trace(ckpt: Checkpoint):
    return ckpt.trace("hello world", DecodeSettings(max_new_tokens=6))


def test_energy_bars_equal_trace(ckpt: Checkpoint, trace) -> None:
    for i in (0, 5, trace.num_steps - 1):
        fig = signal.energy_bars(trace, i, ckpt.token, k=5)
        bar = fig.data[0]
        nodes = [int(c[0]) for c in bar.customdata]
        step = trace.step(i)
        assert nodes[:5] == [n for n, _, _ in step.top(5)]
        assert step.target in nodes
        np.testing.assert_array_equal(np.array(bar.y, dtype=np.float32), step.energies[nodes].numpy())
        np.testing.assert_array_equal(np.array([c[1] for c in bar.customdata], dtype=np.float32),
                                      step.probabilities[nodes].numpy())
        chosen = nodes.index(step.target)
        assert bar.marker.color[chosen] != bar.marker.color[(chosen + 1) % len(nodes)]


def test_memory_steps_equal_memory_weights(ckpt: Checkpoint, trace) -> None:
    memory = signal.memory_steps(trace, ckpt.token)
    assert memory["weights"][0] == [] and len(memory["weights"]) == trace.num_steps
    for i in range(trace.num_steps):
        np.testing.assert_array_equal(np.array(memory["weights"][i], dtype=np.float32), trace.memory[i].numpy())
        assert np.array(memory["weights"][i], dtype=np.float32).tolist() == memory["weights"][i]  # exact float32
    assert len(memory["labels"]) == len(memory["texts"]) == trace.num_steps
    assert memory["labels"][2].startswith("c2: output of step 2")
    assert all(re.fullmatch("#[0-9a-f]{6}", c) for c in memory["scale"])  # colours, not scale indices


def test_energy_frames_share_a_margin_that_fits_the_longest_label(ckpt: Checkpoint, trace) -> None:
    frames = signal.energy_frames(trace, ckpt.token, k=5)
    margins = {json.dumps(f["layout"]["margin"]) for f in frames}
    assert len(margins) == 1  # the chart keeps its size from step to step
    longest = max((x for f in frames for x in f["data"][0]["x"]), key=len)
    assert signal.label_margin([longest]) == frames[0]["layout"]["margin"]["b"]
    assert signal.label_margin(["w" * 40]) > signal.label_margin(["w"]) == common.MARGIN["b"]
    assert signal.label_margin(["丁丁"]) > signal.label_margin(["ab"])  # wide characters take more room


def test_signal_heatmap_equals_signals(trace) -> None:
    fig = signal.signal_heatmap(trace)
    assert fig["data"][0]["customdata"] == trace.signals_in.T.tolist()  # exact float32 values, on hover
    cursor = signal.apply_frame(fig, signal.heat_frames(trace)[2])
    assert cursor.layout.shapes[0].x0 == 1.5 and cursor.data[0].z is not None


def test_byte_level_tokens_shown_decoded() -> None:
    assert common.show_token("Ã©t") == "ét" and common.show_token("ĠÃ©") == "␣é"
    assert common.show_token("中") == "中" and common.show_token("Ā") == "Ā"  # a character model's own text
    assert common.show_token("Ã") == "Ã"  # half a character stays raw
    assert common.token_hover(7, lambda n: "Ã©") == "é #7 (raw token 'Ã©')"
    assert common.token_hover(7, lambda n: "ab") == "ab #7"


def test_graph_strength_is_step_zero_energy(ckpt: Checkpoint) -> None:
    g = compute_graph_data(ckpt.model)
    for e in range(0, len(g.sources), max(1, len(g.sources) // 7)):
        s, t = int(g.sources[e]), int(g.targets[e])
        tr = ckpt.trace([s, t])
        assert float(tr.energies[0, t]) == pytest.approx(float(g.strength[e]), rel=1e-5)
    assert g.positions.shape == (ckpt.config.vocab_size, 2) and np.abs(g.positions).max() <= 1


def test_recall_figures_equal_result(ckpt: Checkpoint, tmp_path: Path) -> None:
    state = ViewState(prompt="abc", hops=3, branch=3, beam=8, node=4)
    res = compute.compute_recall(ckpt, state)
    fig = go.Figure(recall.recall_graph(res, ckpt.token))
    nodes = fig.data[-1].customdata
    for n, act, hop in nodes[1:]:
        assert act == pytest.approx(float(res.activation[int(n)])) and hop == int(res.first_hop[int(n)])
    frame = compute.reverse_for(ResultCache(tmp_path / "c"), ckpt, state)
    bars = go.Figure(recall.reverse_bars(frame, 4, ckpt.token, k=5))  # a valid figure
    np.testing.assert_allclose(bars.data[0].y, frame["energy"].head(5))
    assert [int(c[0]) for c in bars.data[0].customdata] == frame["source"].head(5).tolist()


def test_card_series_found_in_metadata(ckpt: Checkpoint) -> None:
    series = card.numeric_series(ckpt.metadata)
    assert series == {"training.loss": [3.4, 3.1, 2.9, 2.85]}
    assert len(card.loss_curves(series).data) == 1


def test_reroute_path_is_cached_and_forced(ckpt: Checkpoint, tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c")
    state = ViewState(prompt="ab", max_new_tokens=5, reroutes=((2, 7),))
    result = compute.path_for(cache, ckpt, state)
    assert int(result.trace.path[3]) == 7 and result.original is not None
    assert result.trace.tokens is not None and bool(result.trace.forced[2])
    assert compute.path_for(cache, ckpt, state) is result
