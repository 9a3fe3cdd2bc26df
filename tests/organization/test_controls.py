"""Controls: lexical one-hot responses by hand, phase randomisation, the lexical verdict."""
import numpy as np
import pytest

from brillm_core.organization.controls import compare_with_control, lexical_responses, phase_randomise


def test_lexical_by_hand():
    x, vocab = lexical_responses(["the", "cat", "the", "sat"], [0.2, 1.1, 2.5, 2.9], tr=2.0, n_tr=2)
    assert vocab == ["the", "cat", "sat"]
    np.testing.assert_array_equal(x, [[1, 1, 0], [1, 0, 1]])
    with pytest.raises(ValueError, match="onsets"):
        lexical_responses(["a"], [0.0, 1.0], 2.0, 2)


def test_phase_randomise_keeps_spectrum_changes_time_course():
    rng = np.random.default_rng(0)
    for n in (100, 101):
        a = np.cumsum(rng.standard_normal((n, 3)), axis=0)
        s = phase_randomise(a, seed=1)
        np.testing.assert_allclose(np.abs(np.fft.rfft(s, axis=0)), np.abs(np.fft.rfft(a, axis=0)), atol=1e-9)
        np.testing.assert_allclose(s.mean(axis=0), a.mean(axis=0), atol=1e-9)
        assert np.abs([np.corrcoef(a[:, j], s[:, j])[0, 1] for j in range(3)]).max() < 0.9
        np.testing.assert_allclose(np.corrcoef(s.T), np.corrcoef(a.T), atol=0.35)  # shared phases keep cross-structure
    np.testing.assert_array_equal(phase_randomise(a, 4), phase_randomise(a, 4))


def test_compare_with_control_verdicts():
    rng = np.random.default_rng(0)
    base = rng.normal(0.1, 0.05, 500)
    better = compare_with_control(base + 0.05, base, "lexical")
    assert better["model_better"] and "better than the lexical" in better["verdict"]
    same = compare_with_control(base + rng.normal(0, 0.01, 500), base, "lexical")
    assert not same["model_better"] and "explained by the lexical control" in same["verdict"]
    with pytest.raises(ValueError):
        compare_with_control(base, base[:3])
