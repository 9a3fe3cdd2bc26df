"""Figures on a synthetic trace shaped like the KJV sample models': every energy near 5e4 with
differences of about 1, memory weights all on the last output, one signal unit near 5e4.
They must show those differences while keeping the engine's exact values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from brillm_core import DecodeSettings, Trace
from explorer.figures import common, compare, recall, signal

CHANNEL = 5e4
OFFSETS = [0.0, -1.0, -2.31, -0.5, -3.75, float("nan")]  # node 5 is not a candidate


def token(n: int) -> str:
    """Token text of the synthetic vocabulary."""
    return f"t{n}"


def large_trace() -> Trace:
    """Three steps over 6 nodes, d = 3: energies 5e4 + OFFSETS (rolled per step), memory on the last output."""
    energies = torch.tensor([np.roll(np.array(OFFSETS[:5]), i).tolist() + [OFFSETS[5]] for i in range(3)],
                            dtype=torch.float32) + CHANNEL
    probabilities = torch.softmax(torch.nan_to_num(energies.double(), nan=-np.inf), dim=1).float()
    probabilities[energies.isnan()] = float("nan")
    signals = torch.tensor([[0.0, 1.0, -2.0], [CHANNEL, 3.0, -1.0], [CHANNEL + 0.25, 2.0, 0.5]], dtype=torch.float32)
    memory = [torch.zeros(0), torch.tensor([1.0]), torch.tensor([1e-13, 1.0], dtype=torch.float32)]
    path = torch.tensor([0, int(np.nanargmax(energies[0])), int(np.nanargmax(energies[1])), 3])
    return Trace(path=path, energies=energies, probabilities=probabilities, signals_in=signals,
                 outputs=signals.clone(), memory=memory, forced=torch.tensor([True, False, False]),
                 settings=DecodeSettings(max_new_tokens=2))


def test_energy_bars_show_differences_near_5e4() -> None:
    trace = large_trace()
    fig = signal.energy_bars(trace, 0, token, k=5)
    bar = fig.data[0]
    energies = trace.energies[0, :5]
    np.testing.assert_array_equal(np.array(bar.y, dtype=np.float32), energies[[0, 3, 1, 2, 4]].numpy())
    lo, hi = fig.layout.yaxis.range
    assert CHANNEL - 10 < lo < CHANNEL - 3.75 and CHANNEL < hi < CHANNEL + 3  # not from 0: differences visible
    assert min(bar.y) - lo >= 3.75 - 1e-3  # the lowest bar keeps a length (as long as the spread)
    assert list(bar.text) == ["best", "−0.50", "−1.00", "−2.31", "−3.75"]
    assert [c[4] for c in bar.customdata] == [float(e) - float(energies[0]) for e in energies[[0, 3, 1, 2, 4]]]
    assert "from 49,99" in fig.layout.title.text and "not 0" in fig.layout.title.text
    assert "%{y:.9~g}" in bar.hovertemplate  # the true float32 energy on hover, all its digits


def test_energy_axis_starts_at_zero_for_small_energies() -> None:
    assert common.difference_range([2.0, 5.0, 8.0])[0] == 0
    assert common.axis_note(common.difference_range([2.0, 5.0, 8.0])) == ""
    assert common.relative_texts([8.0, 5.0, float("nan")], 8.0) == ["best", "−3.00", ""]


def test_heatmap_shades_each_unit_and_hovers_the_true_signal() -> None:
    trace = large_trace()
    heat = signal.signal_heatmap(trace)["data"][0]
    assert heat["customdata"] == trace.signals_in.T.tolist()  # exact float32 values
    z = np.array(heat["z"])
    assert z[1].min() == 0 and z[1].max() == 1 and z[2].tolist() == [0.0, 1 / 2.5, 1.0]  # small units not flat
    assert z[0].tolist() == [0.0, CHANNEL / (CHANNEL + 0.25), 1.0]


def test_memory_ribbon_says_the_weight_is_on_the_last_output() -> None:
    memory = signal.memory_steps(large_trace(), token)
    assert any("last output has a = 1 (float32)" in line for line in memory["caption"])
    assert memory["weights"][2] == [np.float32(1e-13).item(), 1.0]
    assert signal.last_output_note([[], [1.0], [0.5, 0.5]]) == ""
    assert "a ≥ 0.9949" in signal.last_output_note([[], [1.0], [0.00501, 0.99499]])  # rounded down, never up


def test_reverse_bars_show_differences_near_5e4() -> None:
    frame = pd.DataFrame({"source": [3, 1, 2], "energy": np.float32([CHANNEL, CHANNEL - 1.5, CHANNEL - 2.0]),
                          "probability": [0.6, 0.3, 0.1], "own_row": [True, False, True]})
    fig = go.Figure(recall.reverse_bars(frame, 0, token))
    lo, _ = fig.layout.yaxis.range
    assert CHANNEL - 5 < lo < CHANNEL - 2
    assert list(fig.data[0].text) == ["best", "−1.50", "−2.00"] and "not 0" in fig.layout.title.text
    np.testing.assert_array_equal(np.array(fig.data[0].y, dtype=np.float32), frame["energy"].to_numpy())


def test_js_axis_fits_small_divergences() -> None:
    frame = pd.DataFrame({"step": [0, 1, 2], "js_divergence": [0.02, 0.15, 0.05], "token_a": ["a", "b", "c"]})
    assert go.Figure(compare.js_bars(frame, None)).layout.yaxis.range == (0, 0.15 * 1.25)
    assert compare.js_top(pd.Series([0.9, float("nan")])) == 1.0
