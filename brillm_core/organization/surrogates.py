"""Surrogates that keep time structure: phase-randomised time courses and a moving-block bootstrap over time."""
from __future__ import annotations

import numpy as np

__all__ = ["phase_randomise", "block_bootstrap_means"]


def phase_randomise(atoms: np.ndarray, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Surrogate time courses with each column's amplitude spectrum but random Fourier phases.

    The same random phase is added to a frequency in every column (Prichard and Theiler 1994), so the surrogate
    columns keep their cross-correlations as well; the mean (and the Nyquist term) are left unchanged.
    """
    a = np.asarray(atoms, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    n = a.shape[0]
    spectrum = np.fft.rfft(a, axis=0)
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi, spectrum.shape[0])
    phase[0] = 0.0
    if n % 2 == 0:
        phase[-1] = 0.0
    return np.fft.irfft(spectrum * np.exp(1j * phase)[:, None], n=n, axis=0)


def block_bootstrap_means(values: np.ndarray, block: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """Means of (time x statistics) rows resampled in circular blocks of `block` consecutive time points.

    Returns (n_boot x statistics). Resampling whole blocks keeps the dependence between neighbouring volumes
    (and between the statistics of one volume), which an independent resampling of time points or voxels ignores.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[:, None]
    n = v.shape[0]
    block = int(min(max(block, 1), n))
    n_blocks = -(-n // block)
    starts = np.random.default_rng(seed).integers(0, n, (n_boot, n_blocks))
    idx = ((starts[:, :, None] + np.arange(block)) % n).reshape(n_boot, -1)[:, :n]
    return v[idx].mean(axis=1)
