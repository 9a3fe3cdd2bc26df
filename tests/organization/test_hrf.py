"""The canonical HRF against SPM's double-gamma written out by hand, and the convolution against np.convolve."""
import math

import numpy as np
import pytest

from brillm_core.organization.hrf import convolve_hrf, spm_hrf


def _hand_hrf(tr: float) -> np.ndarray:
    """t^5 e^-t / 5! - (1/6) t^15 e^-t / 15!, sampled every TR over 32 s and normalised to sum 1."""
    t = np.arange(0, int(32 / tr + 1e-9) + 1) * tr
    h = np.array([x**5 * math.exp(-x) / math.factorial(5) - x**15 * math.exp(-x) / math.factorial(15) / 6 for x in t])
    return h / h.sum()


@pytest.mark.parametrize("tr", [1.5, 2.0, 0.72])
def test_hrf_matches_hand_formula(tr):
    np.testing.assert_allclose(spm_hrf(tr), _hand_hrf(tr), rtol=1e-10, atol=1e-14)


def test_hrf_shape():
    h = spm_hrf(0.1)
    assert h[0] == 0
    assert abs(np.argmax(h) * 0.1 - 5.0) < 1e-9  # gamma(6) peaks at 5 s
    assert 12 < np.argmin(h) * 0.1 < 18 and h.min() < 0  # the undershoot


def test_convolution_is_causal_fir():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 3))
    h = spm_hrf(2.0)
    y = convolve_hrf(x, 2.0)
    for j in range(3):
        np.testing.assert_allclose(y[:, j], np.convolve(x[:, j], h)[:50], atol=1e-12)
    impulse = np.zeros(40)
    impulse[3] = 1
    np.testing.assert_allclose(convolve_hrf(impulse, 2.0)[3 : 3 + h.size], h, atol=1e-15)


def test_bad_tr():
    with pytest.raises(ValueError, match="TR"):
        spm_hrf(0)
