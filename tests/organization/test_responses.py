"""Responses from trace tensors: node-gated and landscape columns, pooling into TRs by hand."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from brillm_core.organization.responses import (
    landscape_responses,
    node_gated_responses,
    pool_to_trs,
    pooling_matrix,
    trace_responses,
)

TARGETS = torch.tensor([3, 1, 3, 0])
OUTPUTS = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])


def test_node_gated_full_layout():
    g = node_gated_responses(TARGETS, OUTPUTS, n_nodes=4, only_active=False)
    expected = np.zeros((4, 8))
    expected[0, 6:8] = [1, 2]
    expected[1, 2:4] = [3, 4]
    expected[2, 6:8] = [5, 6]
    expected[3, 0:2] = [7, 8]
    np.testing.assert_array_equal(g.matrix.toarray(), expected)
    assert g.nodes.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and g.units.tolist() == [0, 1] * 4


def test_node_gated_only_active_nodes():
    g = node_gated_responses(TARGETS, OUTPUTS)
    assert g.nodes.tolist() == [0, 0, 1, 1, 3, 3]
    full = node_gated_responses(TARGETS, OUTPUTS, n_nodes=4, only_active=False).matrix.toarray()
    np.testing.assert_array_equal(g.matrix.toarray(), full[:, [0, 1, 2, 3, 6, 7]])


def test_node_gated_bad_input():
    with pytest.raises(ValueError, match="one row per target"):
        node_gated_responses(TARGETS[:3], OUTPUTS)
    with pytest.raises(ValueError, match="out of range"):
        node_gated_responses(TARGETS, OUTPUTS, n_nodes=3, only_active=False)
    with pytest.raises(ValueError, match="NaN"):
        node_gated_responses(TARGETS, OUTPUTS * float("nan"))


def test_landscape_nan_is_zero():
    e = torch.tensor([[1.0, float("nan")], [float("nan"), 2.0]])
    np.testing.assert_array_equal(landscape_responses(e), [[1.0, 0.0], [0.0, 2.0]])


def test_pooling_by_hand():
    values = np.array([[1.0], [2.0], [4.0], [8.0]])
    times = np.array([0.1, 1.9, 1.0, 4.5])  # TR 2: volumes 0, 0, 0, 2
    np.testing.assert_array_equal(pool_to_trs(values, times, 2.0, 3, "sum"), [[7.0], [0.0], [8.0]])
    np.testing.assert_allclose(pool_to_trs(values, times, 2.0, 3, "mean"), [[7 / 3], [0.0], [8.0]])
    np.testing.assert_array_equal(pool_to_trs(values, times, 2.0, 3, "last"), [[2.0], [0.0], [8.0]])
    same_time = pool_to_trs(values[:2], [0.5, 0.5], 2.0, 1, "last")
    assert same_time[0, 0] == 2.0  # later step wins ties


def test_pooling_errors_and_drop():
    with pytest.raises(ValueError, match="after the last volume"):
        pooling_matrix([0.0, 7.0], 2.0, 3)
    assert pooling_matrix([0.0, 7.0], 2.0, 3, strict=False).sum() == 1
    with pytest.raises(ValueError, match=">= 0"):
        pooling_matrix([-1.0], 2.0, 3)
    with pytest.raises(ValueError, match="pooling"):
        pooling_matrix([0.0], 2.0, 3, how="max")
    with pytest.raises(ValueError, match="step times"):
        pool_to_trs(np.ones((3, 2)), [0.0, 1.0], 2.0, 2)


def test_trace_responses_duck_typed():
    energies = torch.tensor([[0.5, float("nan"), 1.0, 2.0]] * 4)
    trace = SimpleNamespace(sources=torch.tensor([2, 3, 1, 3]), targets=TARGETS, outputs=OUTPUTS, energies=energies)
    x, nodes, units = trace_responses(trace, [0.0, 0.5, 2.5, 2.6], tr=2.0, n_tr=2)
    np.testing.assert_array_equal(x, [[0, 0, 3, 4, 1, 2], [7, 8, 0, 0, 5, 6]])
    assert nodes.tolist() == [0, 0, 1, 1, 3, 3] and units.tolist() == [0, 1] * 3
    x, nodes, units = trace_responses(trace, [0.0, 0.5, 2.5, 2.6], tr=2.0, n_tr=2, kind="landscape", how="mean")
    np.testing.assert_allclose(x, [[0.5, 0, 1, 2]] * 2)
    assert (units == -1).all()
    with pytest.raises(ValueError, match="kind"):
        trace_responses(trace, [0.0] * 4, 2.0, 2, kind="other")
