"""Canonical double-gamma haemodynamic response function, so that model time courses can predict BOLD."""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter
from scipy.stats import gamma

__all__ = ["spm_hrf", "convolve_hrf"]


def spm_hrf(
    tr: float,
    peak_delay: float = 6.0,
    undershoot_delay: float = 16.0,
    ratio: float = 1.0 / 6.0,
    length: float = 32.0,
) -> np.ndarray:
    """SPM's canonical HRF sampled every `tr` seconds from 0 to `length`, normalised to sum 1.

    As in SPM's spm_hrf (dispersions 1): gamma.pdf(t, peak_delay) - ratio * gamma.pdf(t, undershoot_delay),
    gamma shapes in seconds with unit scale, so the response itself peaks at 5 s and dips at 15 s.
    """
    if not tr > 0:
        raise ValueError(f"TR must be positive, got {tr}")
    t = np.arange(0.0, length + 1e-9, tr)
    h = gamma.pdf(t, peak_delay) - ratio * gamma.pdf(t, undershoot_delay)
    return h / h.sum()


def convolve_hrf(regressors: np.ndarray, tr: float, shift: float = 0.0) -> np.ndarray:
    """Causally convolve each column of a (time x regressors) matrix with the canonical HRF, keeping the length.

    `shift` seconds move the response and its undershoot later (the simulator's HRF mismatch): shift 1 makes the
    canonical response, which peaks at 5 s, peak at 6 s.
    """
    x = np.asarray(regressors, dtype=float)
    if x.ndim not in (1, 2):
        raise ValueError(f"regressors must be 1-D or (time x regressors), got shape {x.shape}")
    return lfilter(spm_hrf(tr, peak_delay=6.0 + shift, undershoot_delay=16.0 + shift), [1.0], x, axis=0)
