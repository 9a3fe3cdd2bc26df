"""What B changed, measured where it matters: path energy changes and their shares, parameter groups and edges
relative to their size, the largest probability shift, and each checkpoint's training record."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from brillm_core import (DecodeSettings, compare_paths, edge_changes, edge_effects, largest_shift, load_checkpoint,
                         parameter_groups, path_energy_changes, training_record)

from .conftest import make_checkpoint
from .short_run import train_short_run


def twin(seed: int = 1):
    """A checkpoint and an exact copy of it, to change one part of."""
    a = make_checkpoint(seed=seed)
    return a, copy.deepcopy(a)


def test_edges_rank_by_change_relative_to_size_not_by_matrix_change() -> None:
    a, b = twin()
    (sources, targets), d = a.model.edges.own_pairs(), a.model.hidden_size
    with torch.no_grad():
        for m in (a.model, b.model):
            m.weights[1] *= 100 / m.weights[1].norm()  # a matrix of size 100 ...
            m.biases[2, 0] *= 0.1 / m.biases[2, 0].norm()  # and a bias of size 0.1
        b.model.weights[1] += 0.5 / d  # the matrix moves by 0.5: 0.5 % of its size
        b.model.biases[2, 0] += 1 / math.sqrt(d)  # the bias moves by 1: ten times its size
    changes = edge_changes(a.model, b.model, top=None)
    first, second = changes.iloc[0], changes.iloc[1]
    assert (first.source, first.target) == (int(sources[1]), int(targets[1]))  # row 2's edge
    assert first.bias_change == pytest.approx(1.0, rel=1e-5) and first.relative_change == pytest.approx(10, rel=1e-4)
    assert (second.source, second.target) == (int(sources[0]), int(targets[0]))  # row 1's edge
    assert second.weight_change == pytest.approx(0.5, rel=1e-4)
    assert second.relative_change == pytest.approx(0.005, rel=1e-3)
    assert (changes.iloc[2:]["relative_change"] == 0).all()


def test_parameter_groups_measure_each_change_against_its_size() -> None:
    a, b = twin()
    with torch.no_grad():
        b.model.node_bias *= 1.5
        b.model.biases[0] *= 3
    groups = parameter_groups(a.model, b.model).set_index("group")
    assert list(groups.index[:2]) == ["shared bias b[0]", "node biases"]  # largest relative change first
    assert groups.loc["shared bias b[0]", "relative_change"] == pytest.approx(2.0, rel=1e-6)
    assert groups.loc["node biases", "relative_change"] == pytest.approx(0.5, rel=1e-6)
    assert groups.loc["node biases", "size_a"] == pytest.approx(float(a.model.node_bias.detach().double().norm()))
    assert groups.loc["node biases", "parameters"] == a.model.node_bias.numel()
    own = a.model.config.own_rows
    assert groups.loc["edge matrices W", "parameters"] == own * a.model.hidden_size ** 2
    assert groups.loc["edge matrices W", "size_a"] == pytest.approx(float(a.model.weights[1:].detach().double().norm()))
    for group in ("edge matrices W", "edge biases b", "shared matrix W[0]", "memory position logits"):
        assert groups.loc[group, "change"] == 0 and groups.loc[group, "relative_change"] == 0


def test_path_changes_rank_by_probability_moved_and_use_the_traces_numbers() -> None:
    a, b = make_checkpoint(seed=1), make_checkpoint(seed=2)
    comparison = compare_paths(a, b, "abc", DecodeSettings(max_new_tokens=5))
    frame = path_energy_changes(comparison, a.model, b.model, top=12)
    moved = (comparison.b_on_a.probabilities.double() - comparison.trace_a.probabilities.double()).abs()
    largest = torch.sort(moved.flatten(), descending=True).values[:12].numpy()
    np.testing.assert_array_equal(frame["probability_change"].abs().to_numpy(), largest)
    for row in frame.itertuples():
        assert row.source == int(comparison.trace_a.path[row.step])
        assert row.energy_a == float(comparison.trace_a.energies[row.step, row.target])
        assert row.energy_b == float(comparison.b_on_a.energies[row.step, row.target])
        assert row.probability_b == float(comparison.b_on_a.probabilities[row.step, row.target])
        assert row.from_signal + row.from_matrix + row.from_bias == pytest.approx(row.energy_change, abs=1e-5)


def test_energy_shares_name_the_part_that_changed() -> None:
    a, b = twin()
    with torch.no_grad():
        b.model.biases += 0.2 * torch.randn(b.model.biases.shape, generator=torch.Generator().manual_seed(0))
    comparison = compare_paths(a, b, "ab", DecodeSettings(max_new_tokens=3))
    cells = [(0, t) for t in range(a.model.vocab_size)] + [(2, t) for t in range(a.model.vocab_size)]
    frame = edge_effects(comparison, a.model, b.model, cells)
    assert (frame["from_matrix"] == 0).all()  # no matrix changed
    first = frame[frame["step"] == 0]
    assert (first["from_signal"] == 0).all()  # step 0 receives the start signal, the same in both
    np.testing.assert_allclose(first["from_bias"], first["energy_change"], atol=1e-5)
    later = frame[frame["step"] == 2]
    assert later["from_signal"].abs().max() > 0  # by step 2 the changed outputs reach the signal
    np.testing.assert_allclose(later["from_signal"] + later["from_bias"], later["energy_change"], atol=1e-5)


def test_largest_shift_is_at_the_first_divergence() -> None:
    a, b = make_checkpoint(seed=1), make_checkpoint(seed=2)
    comparison = compare_paths(a, b, "abc", DecodeSettings(max_new_tokens=5))
    shift = largest_shift(comparison)
    step = comparison.first_divergence
    assert step is not None and shift.step == step and shift.source == int(comparison.trace_a.path[step])
    change = comparison.b_on_a.probabilities[step].double() - comparison.trace_a.probabilities[step].double()
    assert shift.lost == int(change.argmin()) and shift.gained == int(change.argmax())
    assert largest_shift(compare_paths(a, a, "abc", DecodeSettings(max_new_tokens=5))) is None


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Both checkpoints (steps 20 and 40) of one short ``brillm train`` run with a validation text."""
    return train_short_run(tmp_path_factory.mktemp("one-run"))


def test_training_record_of_two_checkpoints_of_one_run(one_run: list[Path]) -> None:
    early, best = (training_record(load_checkpoint(p, device="cpu")) for p in one_run)
    assert (early.step, best.step) == (20, 40) and early.run_id == best.run_id != ""
    assert early.missing == best.missing == ""
    assert early.loss["step"].tolist() == list(range(1, 21)) and len(best.loss) == 40
    assert early.loss["loss"].tolist() == best.loss["loss"].tolist()[:20]  # the early checkpoint's run is a prefix
    assert best.validation["step"].tolist() == [0, 20, 40] and early.validation["step"].tolist() == [0, 20]
    assert (best.validation["perplexity"] > 1).all()


def test_training_record_says_why_there_is_no_loss_curve() -> None:
    ckpt = make_checkpoint()
    assert "no training run" in training_record(ckpt).missing
    ckpt.metadata = {"training": {"step": 0, "loss_history": [], "settings": {"init": "context"},
                                  "validation_history": [[0, 35.5]], "run_id": "r1"}}
    record = training_record(ckpt)
    assert record.missing == "it took no gradient step: its parameters are the start of a run (--init context)"
    assert record.validation.to_dict("list") == {"step": [0], "perplexity": [35.5]} and record.step == 0
    ckpt.metadata = {"training": {"step": 7, "loss_history": "lost"}}
    assert record.run_id == "r1" and "holds no loss history" in training_record(ckpt).missing
