"""Ridge encoding whose penalty and tests respect autocorrelated fMRI noise.

The penalty is chosen per voxel by blocked cross-validation: contiguous folds, with `gap` volumes on each side of
the test fold left out of training, because leave-one-out shares noise between neighbouring volumes and picks far
too small a penalty when noise is autocorrelated. With the penalty fixed, a ridge beta is a linear function of the
data, beta = H y, so under no effect its variance is H Sigma H' for the noise covariance Sigma: the AR(p) noise
model of the residuals (the one `ols_ar` whitens with, see `noise`) gives Sigma voxel by voxel, and t = beta / SE
is compared with a t distribution. (Earlier the null was phase-randomised designs; it misjudged the spread of the
betas under autocorrelated noise, more so at short recordings.)
"""
from __future__ import annotations

import math

import numpy as np

from .noise import ar_autocorrelation, fit_noise_model

__all__ = ["RIDGE_ALPHAS", "N_FOLDS", "cv_gap", "blocked_folds", "choose_alphas", "ridge_betas", "fit_ridge",
           "best_penalty_errors"]

RIDGE_ALPHAS = np.logspace(-2, 4, 13)
N_FOLDS = 5
GAP_SECONDS = 12.0  # volumes within 12 s of a test fold are not trained on: residual autocorrelation fades by then


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


def choose_alphas(x: np.ndarray, y: np.ndarray, alphas: np.ndarray, gap: int, n_folds: int = N_FOLDS,
                  shared: bool = False) -> np.ndarray:
    """Per voxel, the penalty with the least blocked-CV squared error (x: regressors without intercept); `shared`:
    one penalty for all voxels, the least error summed over voxels each scaled to unit sum of squares (steadier
    than per-voxel choices when the folds are short)."""
    errors = np.zeros((len(alphas), y.shape[1]))
    for train, test in blocked_folds(x.shape[0], n_folds, gap):
        xc, yc, mx, my = _centred(x[train], y[train])
        u, s, vt = np.linalg.svd(xc, full_matrices=False)
        uy, xt, yt = u.T @ yc, (x[test] - mx) @ vt.T, y[test] - my
        for i, a in enumerate(alphas):
            errors[i] += ((yt - xt @ ((s / (s * s + a))[:, None] * uy)) ** 2).sum(axis=0)
    if shared:
        ss = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        best = np.argmin(errors @ (1.0 / np.where(ss > 0, ss, 1.0)))
        return np.full(y.shape[1], float(alphas[best]))
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


def _lag_products(h: np.ndarray) -> np.ndarray:
    """c[l, k] = sum_t h[k, t] h[k, t + l] for lags l = 0..n-1 of each row of h (k x n), by FFT."""
    n = h.shape[1]
    spectrum = np.fft.rfft(h, 2 * n, axis=1)
    return np.fft.irfft(np.abs(spectrum) ** 2, 2 * n, axis=1)[:, :n].T


def _diagonal_sums(m: np.ndarray) -> np.ndarray:
    """Sums of the diagonals 0..n-1 above the main one of a square matrix (lag l: sum_t m[t, t + l])."""
    n = m.shape[0]
    i, j = np.triu_indices(n)
    return np.bincount(j - i, weights=m[i, j], minlength=n)


def fit_ridge(x: np.ndarray, y: np.ndarray, alphas: np.ndarray, gap: int, nuisance: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Betas, standard errors, degrees of freedom (per voxel) and penalties of a ridge fit (x without intercept).

    `nuisance` (time x m, orthonormal) spans what was regressed out of x and y beforehand (slow drift). With
    beta = H y and residuals R y (R = I - centring - nuisance projection - x H), a voxel whose noise has variance
    s^2 and AR autocorrelations rho has Var(beta_k) = s^2 sum_l rho(l) c_l[k] (`_lag_products` of H's rows) and
    E |R y|^2 = s^2 sum_l rho(l) d_l (`_diagonal_sums` of R'R), which gives s^2 from the residuals. The AR model
    itself comes from the least-squares residuals, whose projection the noise model corrects for.
    """
    alpha = choose_alphas(x, y, alphas, gap)
    xc, yc, _, _ = _centred(x, y)
    beta = _penalised(xc, yc, alpha)
    resid = yc - xc @ beta
    n = xc.shape[0]
    removed = np.column_stack([np.full(n, 1 / np.sqrt(n))] + ([] if nuisance is None else [nuisance]))
    design = np.column_stack([xc, removed])  # the noise model's residual correction is for least-squares residuals
    noise = fit_noise_model(yc - xc @ np.linalg.lstsq(xc, yc, rcond=None)[0], design)
    rho = ar_autocorrelation(noise.voxel, n)  # voxels x lags
    weights = np.full(n, 2.0)
    weights[0] = 1.0  # lag 0 once, every other lag on both sides
    gram = xc.T @ xc
    se = np.empty_like(beta)
    dof = np.empty(y.shape[1])
    for a in np.unique(alpha):
        cols = alpha == a
        h = np.linalg.solve(gram + a * np.eye(len(gram)), xc.T)  # beta = h y
        r = np.eye(n) - removed @ removed.T - xc @ h
        dof[cols] = n - removed.shape[1] - np.trace(xc @ h)
        s2 = (resid[:, cols] ** 2).sum(axis=0) / ((rho[cols] * weights) @ _diagonal_sums(r.T @ r))
        se[:, cols] = np.sqrt(s2[:, None] * ((rho[cols] * weights) @ _lag_products(h))).T
    return beta, se, dof, alpha


def best_penalty_errors(designs: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
                        alphas: np.ndarray = RIDGE_ALPHAS) -> np.ndarray:
    """Out-of-fold squared error summed over the columns of y, for each of a stack of designs (designs x time x
    regressors, no intercept: each training fold is centred), with the one penalty of `alphas` that makes it least.

    The choice of penalty sees the test folds, so this is optimistic, not an honest prediction error; it is a
    statistic for comparing a design with surrogates of it, which are scored alike. One penalty for all columns
    lets the error be summed before it is squared out: with B = U'y of a fold's training SVD and Q the test rows
    in its basis, the error at penalty a is |t|^2 - 2 f'(diag Q't B') + f'(Q'Q * BB')f, f = s / (s^2 + a), so each
    penalty costs regressors^2, not test volumes x columns.
    """
    alphas = np.asarray(alphas, dtype=float)
    n_designs = designs.shape[0]
    errors = np.zeros((n_designs, len(alphas)))
    for train, test in folds:
        mx = designs[:, train].mean(axis=1, keepdims=True)
        my = y[train].mean(axis=0)
        target = y[test] - my
        u, sv, vt = np.linalg.svd(designs[:, train] - mx, full_matrices=False)
        b = np.swapaxes(u, 1, 2) @ (y[train] - my)  # designs x p x columns
        q = (designs[:, test] - mx) @ np.swapaxes(vt, 1, 2)  # designs x test x p
        cross = ((np.swapaxes(q, 1, 2) @ target) * b).sum(axis=2)  # designs x p
        quad = (np.swapaxes(q, 1, 2) @ q) * (b @ np.swapaxes(b, 1, 2))  # designs x p x p
        f = sv[:, None, :] / (sv[:, None, :] ** 2 + alphas[None, :, None])  # designs x alphas x p
        errors += float((target * target).sum()) - 2 * (f * cross[:, None, :]).sum(axis=2) + np.einsum(
            "sap,spq,saq->sa", f, quad, f)
    return errors.min(axis=1)
