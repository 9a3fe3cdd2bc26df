"""Ridge encoding whose penalty and tests respect autocorrelated fMRI noise.

The penalty is chosen per voxel by blocked cross-validation: contiguous folds, with `gap` volumes on each side of
the test fold left out of training, because leave-one-out shares noise between neighbouring volumes and picks far
too small a penalty when noise is autocorrelated. Ridge betas have no closed-form null distribution under
autocorrelated noise, so the test refits, for each atom, the voxel's partial residual (the data minus the other
atoms' fitted parts) on phase-randomised copies of the design (same random phases for every column: each
surrogate keeps the regressors' spectra and cross-correlations but not their alignment with the data). Partial
residuals rather than the data, so that a strong effect of one atom does not inflate the null of the others. A voxel's t is its beta over the root mean square of its surrogate betas; its p comes from a
t distribution with as many degrees of freedom as surrogates.
"""
from __future__ import annotations

import math

import numpy as np

from .surrogates import phase_randomise

__all__ = ["RIDGE_ALPHAS", "N_FOLDS", "N_RIDGE_NULL", "cv_gap", "blocked_folds", "choose_alphas", "ridge_betas",
           "fit_ridge"]

RIDGE_ALPHAS = np.logspace(-2, 4, 13)
N_FOLDS = 5
GAP_SECONDS = 12.0  # volumes within 12 s of a test fold are not trained on: residual autocorrelation fades by then
N_RIDGE_NULL = 200  # phase-randomised designs per ridge fit


def cv_gap(tr: float) -> int:
    """Volumes left out on each side of a test fold at this TR."""
    return int(math.ceil(GAP_SECONDS / tr))


def blocked_folds(n: int, n_folds: int = N_FOLDS, gap: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs: `n_folds` contiguous test blocks, training on the rest minus `gap` on each side
    (at most n / (2 n_folds), so that short series keep most of their volumes for training)."""
    if n_folds < 2 or n < n_folds:
        raise ValueError(f"cannot cut {n} volumes into {n_folds} blocked folds")
    gap = min(gap, n // (2 * n_folds))
    edges = np.linspace(0, n, n_folds + 1).round().astype(int)
    folds = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        train = np.r_[0 : max(lo - gap, 0), min(hi + gap, n) : n]
        folds.append((train, np.arange(lo, hi)))
    return folds


def _centred(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x and y minus their column means, and the means (an unpenalised intercept)."""
    mx, my = x.mean(axis=0), y.mean(axis=0)
    return x - mx, y - my, mx, my


def choose_alphas(x: np.ndarray, y: np.ndarray, alphas: np.ndarray, gap: int, n_folds: int = N_FOLDS) -> np.ndarray:
    """Per voxel, the penalty with the least blocked-CV squared error (x: regressors without intercept)."""
    errors = np.zeros((len(alphas), y.shape[1]))
    for train, test in blocked_folds(x.shape[0], n_folds, gap):
        xc, yc, mx, my = _centred(x[train], y[train])
        u, s, vt = np.linalg.svd(xc, full_matrices=False)
        uy, xt, yt = u.T @ yc, (x[test] - mx) @ vt.T, y[test] - my
        for i, a in enumerate(alphas):
            errors[i] += ((yt - xt @ ((s / (s * s + a))[:, None] * uy)) ** 2).sum(axis=0)
    return np.asarray(alphas, dtype=float)[np.argmin(errors, axis=0)]


def ridge_betas(x: np.ndarray, y: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Ridge coefficients (regressors x voxels) with an unpenalised intercept, one penalty per voxel."""
    xc, yc, _, _ = _centred(x, y)
    return _penalised(xc, yc, alpha)


def _penalised(xc: np.ndarray, yc: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Ridge coefficients of centred data, solving once per distinct penalty."""
    gram, xty = xc.T @ xc, xc.T @ yc
    beta = np.empty_like(xty)
    for a in np.unique(alpha):
        cols = alpha == a
        beta[:, cols] = np.linalg.solve(gram + a * np.eye(len(gram)), xty[:, cols])
    return beta


def fit_ridge(x: np.ndarray, y: np.ndarray, alphas: np.ndarray, gap: int, n_null: int = N_RIDGE_NULL,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Betas, null standard errors, degrees of freedom (n_null) and penalties of a ridge fit (x without intercept)."""
    if n_null < 2:
        raise ValueError(f"the ridge null needs at least 2 surrogates, got {n_null}")
    alpha = choose_alphas(x, y, alphas, gap)
    xc, yc, _, _ = _centred(x, y)
    beta = _penalised(xc, yc, alpha)
    resid = yc - xc @ beta
    groups = [(a, alpha == a) for a in np.unique(alpha)]
    rng = np.random.default_rng(seed)
    null_sq = np.zeros_like(beta)
    for _ in range(n_null):
        surrogate = phase_randomise(xc, rng)
        surrogate -= surrogate.mean(axis=0)
        gram, s_res, s_x = surrogate.T @ surrogate, surrogate.T @ resid, surrogate.T @ xc
        for a, cols in groups:
            inv = np.linalg.inv(gram + a * np.eye(len(gram)))
            # atom k's surrogate beta on its partial residual (resid + x_k beta_k): linear, so computed in one go
            null_sq[:, cols] += (inv @ s_res[:, cols] + np.diag(inv @ s_x)[:, None] * beta[:, cols]) ** 2
    return beta, np.sqrt(null_sq / n_null), n_null, alpha
