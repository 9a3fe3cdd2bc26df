"""The Signal path's candidate chart: a value axis cut only when the bars would not differ otherwise, and a
title that says how the taken node was decided, with its bar's colour."""

from __future__ import annotations

import torch

from brillm_core import DecodeSettings, Trace
from explorer.figures import common, signal


def test_the_axis_is_cut_only_when_the_values_barely_differ() -> None:
    assert common.difference_range([15.2, 17.0, 19.8])[0] == 0  # energies of a trained model: read from 0
    assert common.difference_range([7.0, 20.0])[0] == 0
    cut = common.difference_range([50006.1, 50009.0, 50012.3])  # a count-fitted model's: cut, and said so
    assert 49_990 < cut[0] < 50006.1 and "not 0" in common.axis_note(cut)
    assert common.difference_range([3.0, 3.0]) == [0.0, 3.75]
    assert common.difference_range([0.0, 0.0]) == [0.0, 1.0]  # never an empty axis


def one_step_trace(forced: bool, target: int, vocab: int = 20) -> Trace:
    """A one-step trace whose energies are 30 - node (node 0 the best)."""
    energies = (30.0 - torch.arange(vocab, dtype=torch.float32)).reshape(1, vocab)
    return Trace(path=torch.tensor([0, target]), energies=energies, probabilities=energies.softmax(1),
                 signals_in=torch.zeros(1, 2), outputs=torch.zeros(1, 2), memory=[torch.zeros(0)],
                 forced=torch.tensor([forced]), settings=DecodeSettings())


def test_the_title_says_how_the_taken_node_was_decided_and_no_note_covers_the_bars() -> None:
    token = str
    forced = signal.energy_frame(one_step_trace(True, 15), 0, token, k=12)
    title = forced["layout"]["title"]["text"]
    assert "0 #0 → 15 #15, forced by the prompt (the grey bar)" in title
    assert "top 12 of 20 candidates and the grey one (rank 16)" in title
    assert "annotations" not in forced["layout"] and len(forced["data"][0]["x"]) == 13
    assert forced["data"][0]["marker"]["color"][-1] == common.FORCED
    chosen = signal.energy_frame(one_step_trace(False, 0), 0, token, k=12)
    title = chosen["layout"]["title"]["text"]
    assert "chosen (the red bar)" in title and "one (rank" not in title
    rerouted = signal.energy_frame(one_step_trace(False, 3), 0, token, k=12, how=signal.REROUTED_HOW)
    assert "re-routed by you (the purple bar)" in rerouted["layout"]["title"]["text"]
    assert rerouted["data"][0]["marker"]["color"][3] == common.REROUTED


def test_the_labels_get_fixed_margins_not_a_second_drawing() -> None:
    layout = signal.energy_base()["layout"]
    assert layout["xaxis"]["automargin"] is False and layout["yaxis"]["automargin"] is False
    frames = signal.energy_frames(one_step_trace(True, 15), str, k=12)
    assert frames[0]["layout"]["margin"]["b"] >= common.MARGIN["b"]
    assert frames[0]["layout"]["margin"]["l"] < 60  # energies up to 30: two digits
    assert signal.value_margin([[50004.7, 50012.3]]) >= 90  # "50,009.5" and the axis title beside it
