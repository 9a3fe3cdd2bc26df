"""Slow drift in fMRI recordings: a discrete cosine basis removed from data and regressors alike (as SPM's
high-pass filter), so that scanner drift neither inflates the tests nor counts as prediction."""
from __future__ import annotations

import numpy as np

__all__ = ["HIGH_PASS_SECONDS", "drift_basis", "high_pass"]

HIGH_PASS_SECONDS = 128.0  # SPM's default cut-off: cosines of periods longer than this are drift


def drift_basis(n: int, tr: float, cutoff: float = HIGH_PASS_SECONDS) -> np.ndarray:
    """Orthonormal (n x m) discrete cosines with periods longer than `cutoff` seconds, the constant excluded
    (SPM's spm_dctmtx columns 2..m, m = floor(2 n tr / cutoff) + 1); zero columns for a short recording."""
    m = int(np.floor(2.0 * n * tr / cutoff)) + 1
    t = np.arange(n)
    cos = [np.cos(np.pi * (2 * t + 1) * k / (2 * n)) for k in range(1, min(m, n - 1))]
    basis = np.column_stack(cos) if cos else np.zeros((n, 0))
    return basis / np.linalg.norm(basis, axis=0) if cos else basis


def high_pass(x: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """x (time x columns) minus its projection on the drift basis (orthonormal columns); means are kept."""
    x = np.asarray(x, dtype=float)
    return x - basis @ (basis.T @ x) if basis.shape[1] else x
