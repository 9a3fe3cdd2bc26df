"""Step explanations and checkpoint comparisons against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from brillm_core import BriLLMError, DecodeSettings
from brillm_core.compare import compare_paths, edge_changes, js_divergence
from brillm_core.explain import explain_step

from .conftest import make_checkpoint
from .reference import ReferenceBriLLM, gelu


@pytest.mark.parametrize("release", [False, True])
def test_explanation_terms_add_up_to_the_traced_numbers(release: bool) -> None:
    ckpt = make_checkpoint(seed=5)
    ref = ReferenceBriLLM.from_model(ckpt.model)
    trace = ckpt.trace([1, 4, 2, 7], DecodeSettings(max_new_tokens=3, temperature=0.5, release_decoder=release))
    for i in range(trace.num_steps):
        for target in (None, 3):
            ex = explain_step(ckpt.model, trace, i, target)
            t = trace.step(i).target if target is None else target
            assert ex.row == ref.rows[(ex.source, t)]
            np.testing.assert_allclose(ex.memory_terms.sum(0).numpy() if i else ex.signal.numpy(), ex.signal.numpy(), atol=1e-5)
            x = ex.signal.double().numpy()
            np.testing.assert_allclose(ex.product.numpy(), x @ ref.W[ex.row], atol=1e-5)
            np.testing.assert_allclose(ex.pe.numpy(), ref.pe[i if release else i + 1], atol=1e-6)
            np.testing.assert_allclose(ex.output.numpy(), gelu(x @ ref.W[ex.row] + ref.b[ex.row] + ref.pe[ex.pe_index]), atol=1e-5)
            if not (release and t == ex.source):
                assert ex.energy == pytest.approx(float(trace.energies[i, t]), abs=1e-5)
                assert ex.probability == pytest.approx(float(trace.probabilities[i, t]), abs=1e-5)


def test_js_divergence_known_values() -> None:
    p = torch.tensor([1.0, 0.0])
    q = torch.tensor([0.0, 1.0])
    assert js_divergence(p, q) == pytest.approx(1.0)
    assert js_divergence(p, p) == pytest.approx(0.0)
    r = torch.tensor([0.5, 0.5])
    # JS([1,0],[.5,.5]) = 0.5*log2(1/.75) + 0.5*(0.5*log2(.5/.75) + 0.5*log2(.5/.25))
    expected = 0.5 * math.log2(1 / 0.75) + 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25))
    assert js_divergence(p, r) == pytest.approx(expected)
    assert js_divergence(torch.tensor([float("nan"), 1.0]), torch.tensor([0.0, 1.0])) == pytest.approx(0.0)


def test_compare_two_checkpoints_of_one_vocabulary() -> None:
    a, b = make_checkpoint(seed=1), make_checkpoint(seed=1)
    with torch.no_grad():
        b.model.weights[0] += 0.3  # change the shared row only
    settings = DecodeSettings(max_new_tokens=6)
    same = compare_paths(a, a, "abc", settings)
    assert same.first_divergence is None and same.to_frame()["js_divergence"].abs().max() < 1e-9
    result = compare_paths(a, b, "abc", settings)
    frame = result.to_frame()
    assert len(frame) == result.trace_a.num_steps
    for i, row in frame.iterrows():
        assert row.probability_b == pytest.approx(float(result.b_on_a.probabilities[i, row.target_a]))
    if result.first_divergence is not None:
        k = result.first_divergence
        assert result.trace_a.path[: k + 1].tolist() == result.trace_b.path[: k + 1].tolist()
        assert int(result.trace_a.path[k + 1]) != int(result.trace_b.path[k + 1])
    changes = edge_changes(a.model, b.model, top=None)
    shared = changes[changes.source == -1].iloc[0]
    assert shared.weight_change == pytest.approx(0.3 * a.model.hidden_size, rel=1e-4)  # 0.3 on d*d entries
    assert (changes[changes.source >= 0].weight_change == 0).all()


def test_edge_changes_flag_rows_gained() -> None:
    a, b = make_checkpoint(seed=1, own=0.1), make_checkpoint(seed=2, own=0.4)
    changes = edge_changes(a.model, b.model, top=None)
    gained = changes[changes.gained_own_row]
    assert len(gained) > 0
    for row in gained.itertuples():
        key = row.source * 12 + row.target
        assert key in b.model.edge_keys.tolist() and key not in a.model.edge_keys.tolist()
        expected = (b.model.weights[row.row_b] - a.model.weights[0]).norm()
        assert row.weight_change == pytest.approx(float(expected), rel=1e-5)


def test_different_vocabularies_are_refused() -> None:
    with pytest.raises(BriLLMError, match="different vocabularies"):
        compare_paths(make_checkpoint(vocab_size=12), make_checkpoint(vocab_size=10), "ab", DecodeSettings())


def test_loss_history_reads_the_trainers_metadata() -> None:
    from brillm_core import loss_history

    ckpt = make_checkpoint()
    assert loss_history(ckpt).empty
    ckpt.metadata = {"training": {"loss_history": [3.0, float("nan"), 2.0]}}
    frame = loss_history(ckpt)
    assert frame["step"].tolist() == [1, 3] and frame["loss"].tolist() == [3.0, 2.0]
