"""AR(p) noise model for the encoding GLM: order chosen from the residuals, pooled over voxels, shrunk per voxel.

Why pooled and shrunk: a per-voxel AR estimate from 300 volumes is noisy (at rho .85 its standard error moves the
low-frequency noise power, where HRF-convolved regressors live, by +/- 40 %), and that noise alone inflates p < .05
to 6-7 %. The pooled model (as SPM and FSL pool) is precise; each voxel's own estimate is kept only as far as the
voxels really differ (empirical-Bayes shrinkage), so homogeneous noise gets the pooled model exactly.
Why bias-corrected: OLS residuals are the noise projected off the design, which lowers their autocorrelation; the
pooled coefficients are found by indirect inference (the AR model whose projected residuals have the observed
autocorrelations), which is exact for the whole autocorrelation, not only its first lags.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_toeplitz, toeplitz
from scipy.signal import lfilter

__all__ = ["MAX_AR_ORDER", "NoiseModel", "ar_autocorrelation", "yule_walker", "fit_noise_model", "whiten"]

MAX_AR_ORDER = 10  # AIC chooses among orders 0..10; 1/f noise needs about 10 at 300 volumes
INDIRECT_ITERATIONS = 30
STATIONARY_MARGIN = 0.995  # largest allowed modulus of the AR polynomial's roots
N_REPLICAS = 400  # series simulated from the pooled model to measure the per-voxel estimates' sampling variance
BURN_IN = 200


def ar_autocorrelation(phi: np.ndarray, n: int) -> np.ndarray:
    """Autocorrelations at lags 0..n-1 of the AR(p) process x_t = sum_j phi_j x_{t-j} + e_t; phi may be (rows x p),
    one process per row, and then so is the result (rows x n)."""
    phi = np.asarray(phi, dtype=float)
    rows = np.atleast_2d(phi)
    count, p = rows.shape
    rho = np.zeros((count, max(n, p + 1)))
    rho[:, 0] = 1.0
    if p:
        m = np.broadcast_to(np.eye(p), (count, p, p)).copy()  # Yule-Walker rho_k = sum_j phi_j rho_|k-j|, k = 1..p
        for k in range(1, p + 1):
            for j in range(1, p + 1):
                if j != k:
                    m[:, k - 1, abs(k - j) - 1] -= rows[:, j - 1]
        rho[:, 1 : p + 1] = np.linalg.solve(m, rows[..., None])[..., 0]
        for k in range(p + 1, rho.shape[1]):
            rho[:, k] = (rows * rho[:, k - p : k][:, ::-1]).sum(axis=1)
    return rho[:, :n] if phi.ndim == 2 else rho[0, :n]


def yule_walker(rho: np.ndarray, p: int) -> tuple[np.ndarray, float]:
    """AR(p) coefficients from autocorrelations rho_0..rho_p, and the innovation variance per unit variance."""
    if p == 0:
        return np.zeros(0), 1.0
    phi = solve_toeplitz(rho[:p], rho[1 : p + 1])
    return phi, float(1.0 - phi @ rho[1 : p + 1])


def _stationary_rows(phi: np.ndarray) -> np.ndarray:
    """Per row of (rows x p) AR coefficients: do all roots of z^p - phi_1 z^(p-1) - ... - phi_p lie inside the unit
    circle (with a margin)? The roots are the eigenvalues of the companion matrix, found for all rows at once."""
    rows, p = phi.shape
    if p == 0:
        return np.ones(rows, dtype=bool)
    companion = np.zeros((rows, p, p))
    companion[:, 0, :] = phi
    companion[:, 1:, :-1] = np.eye(p - 1)
    return np.abs(np.linalg.eigvals(companion)).max(axis=1) < STATIONARY_MARGIN


def _stationary(phi: np.ndarray) -> bool:
    """`_stationary_rows` for one coefficient vector."""
    return bool(_stationary_rows(np.atleast_2d(phi))[0])


def _sample_acf(e: np.ndarray, lags: int) -> np.ndarray:
    """Autocorrelations at lags 0..lags of each column (lags x columns), 0 for a constant column."""
    den = (e * e).sum(axis=0)
    acf = np.array([(e[k:] * e[: e.shape[0] - k]).sum(axis=0) for k in range(lags + 1)])
    return np.divide(acf, den, out=np.zeros_like(acf), where=den > 0)


def _expected_residual_acf(phi: np.ndarray, basis: np.ndarray, lags: int) -> np.ndarray:
    """Expected autocorrelations (lags 0..lags) of residuals R e when e is AR(phi), R = I - Q Q' for an orthonormal
    basis Q of the design: sums of the diagonals of R V R = V - Q Q'V - V Q Q' + Q (Q'V Q) Q'."""
    n = basis.shape[0]
    v = toeplitz(ar_autocorrelation(phi, n))
    qv = basis.T @ v
    rvr = v - basis @ qv - qv.T @ basis.T + basis @ (qv @ basis) @ basis.T
    sums = np.array([np.trace(rvr, offset=k) for k in range(lags + 1)])
    return sums / sums[0]


def _indirect(observed: np.ndarray, p: int, basis: np.ndarray) -> np.ndarray:
    """AR(p) coefficients whose projected residuals have the observed autocorrelations (fixed-point iteration)."""
    target = yule_walker(observed, p)[0]
    phi = target.copy()
    for _ in range(INDIRECT_ITERATIONS):
        step = target - yule_walker(_expected_residual_acf(phi, basis, p), p)[0]
        while not _stationary(phi + step) and np.abs(step).max() > 1e-6:
            step = step / 2
        phi = phi + step
        if np.abs(step).max() < 1e-5:
            break
    return phi


@dataclass(frozen=True)
class NoiseModel:
    """The AR(p) noise model of one design: pooled coefficients, each voxel's coefficients and how they were found."""

    order: int
    pooled: np.ndarray  # p, coefficients of the pooled model
    voxel: np.ndarray  # voxels x p, coefficients used for each voxel
    shrinkage: np.ndarray  # p, weight kept of each voxel's own estimate (0 = pooled model for every voxel)
    aic: np.ndarray  # orders 0..MAX_AR_ORDER, the criterion that chose the order


def fit_noise_model(residuals: np.ndarray, design: np.ndarray, max_order: int = MAX_AR_ORDER) -> NoiseModel:
    """Choose the AR order by AIC on the pooled, bias-corrected residual autocorrelation, then shrink voxels to it.

    residuals are OLS residuals (time x voxels) of `design`. Pooled: the AR(max_order) model found by indirect
    inference gives bias-corrected autocorrelations, AIC of the pooled likelihood ((n - rank(design)) x voxels
    samples: the pooled estimate is precise, so the order grows while it captures autocorrelation) picks p, and
    Yule-Walker at p gives the pooled coefficients. Per voxel: its residual autocorrelations minus the bias the
    pooled model implies, Yule-Walker, then shrunk towards the pooled coefficients by w = 1 - (sampling variance) /
    (variance across voxels), clipped to [0, 1], the sampling variance measured on series simulated from the pooled
    model and projected alike; a non-stationary result falls back to the pooled coefficients.
    """
    e = np.asarray(residuals, dtype=float)
    n = e.shape[0]
    u, sv, _ = np.linalg.svd(design, full_matrices=False)
    basis = u[:, sv > sv.max() * 1e-10]
    n_eff = n - basis.shape[1]
    max_order = int(min(max_order, max(0, n_eff // 10)))
    acf = _sample_acf(e, max_order)
    pooled_acf = acf.mean(axis=1)
    corrected = ar_autocorrelation(_indirect(pooled_acf, max_order, basis), max_order + 1)
    samples = n_eff * e.shape[1]
    aic = np.array([samples * np.log(max(yule_walker(corrected, p)[1], 1e-12)) + 2 * p for p in range(max_order + 1)])
    order = int(np.argmin(aic))
    if order == 0:
        return NoiseModel(0, np.zeros(0), np.zeros((e.shape[1], 0)), np.zeros(0), aic)
    pooled = yule_walker(corrected, order)[0]
    bias = _expected_residual_acf(pooled, basis, order) - ar_autocorrelation(pooled, order + 1)
    voxel = _voxel_estimates(acf[: order + 1], bias, order)
    rng = np.random.default_rng(0)
    simulated = lfilter([1.0], np.r_[1.0, -pooled], rng.standard_normal((n + BURN_IN, N_REPLICAS)), axis=0)[BURN_IN:]
    replicas = simulated - basis @ (basis.T @ simulated)
    sampling = _voxel_estimates(_sample_acf(replicas, order), bias, order).var(axis=0)
    spread = voxel.var(axis=0)
    weight = np.clip(1.0 - np.divide(sampling, spread, out=np.ones_like(spread), where=spread > 0), 0.0, 1.0)
    voxel = pooled + weight * (voxel - pooled)
    if weight.any():
        voxel[~_stationary_rows(voxel)] = pooled
    else:
        voxel[:] = pooled
    return NoiseModel(order, pooled, voxel, weight, aic)


def _voxel_estimates(acf: np.ndarray, bias: np.ndarray, order: int) -> np.ndarray:
    """Yule-Walker AR(order) coefficients (columns x order) of residual autocorrelations (lags x columns) minus bias."""
    own = acf - bias[:, None]
    own[0] = 1.0
    lags = np.abs(np.subtract.outer(np.arange(order), np.arange(order)))
    with np.errstate(all="ignore"):  # a singular voxel gives non-finite coefficients, replaced by the caller's check
        phi = np.linalg.solve(own.T[:, lags], own[1 : order + 1].T[..., None])[..., 0]
    return np.nan_to_num(phi, nan=2.0, posinf=2.0, neginf=2.0)  # 2 is never stationary


def whiten(x: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Rows p.. of x filtered by the AR(p) inverse filter, x_t - sum_j phi_j x_{t-j} (the first p rows are dropped).

    x is (time x columns) with one phi for all columns, or phi is (columns x p) with one row per column of x.
    """
    phi = np.asarray(phi, dtype=float)
    p = phi.shape[-1]
    n = x.shape[0]
    out = x[p:].astype(float, copy=True)
    for j in range(1, p + 1):
        out -= (phi[..., j - 1] if phi.ndim == 1 else phi[:, j - 1]) * x[p - j : n - j]
    return out
