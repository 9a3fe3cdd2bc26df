"""Voxel-wise encoding of brain data by HRF-convolved atoms: AR(p)-prewhitened OLS or ridge, FDR control, and
cross-validated prediction with blocked folds (see `noise` and `ridge` for why each test holds its nominal rate).
Slow drift (a discrete cosine basis, see `drift`) is a nuisance of every fit."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from .drift import HIGH_PASS_SECONDS, drift_basis, high_pass
from .hrf import convolve_hrf
from .noise import NoiseModel, fit_noise_model, whiten
from .ridge import RIDGE_ALPHAS, blocked_folds, choose_alphas, cv_gap, fit_ridge, ridge_betas
from .tables import read_matrix

__all__ = [
    "METHODS",
    "BrainData",
    "EncodingResult",
    "prepare_brain",
    "load_brain",
    "design_matrix",
    "nuisance_matrix",
    "variance_inflation",
    "fdr_bh",
    "fit_encoding",
    "cross_validated_predictions",
    "held_out_prediction",
]

METHODS = ("ols_ar", "ols", "ridge")
GLS_CHUNK = 512  # voxels whitened at once (each has its own whitened design): bounds memory to tens of MB


@dataclass(frozen=True)
class BrainData:
    """Brain data with unusable voxels removed: `data` holds the kept columns, the rest is reported."""

    data: np.ndarray  # time x kept voxels
    n_voxels: int  # voxels in the input
    kept: np.ndarray  # indices of kept voxels in the input
    nan_voxels: np.ndarray  # indices excluded because they hold NaN or inf
    constant_voxels: np.ndarray  # indices excluded because their signal never varies
    voxel_names: list[str] | None = None

    @property
    def mask(self) -> np.ndarray:
        """Boolean mask over the input voxels, True where kept."""
        m = np.zeros(self.n_voxels, dtype=bool)
        m[self.kept] = True
        return m

    def report(self) -> dict:
        """What was excluded and why, for display and for the JSON report."""
        return {
            "n_volumes": int(self.data.shape[0]),
            "n_voxels": self.n_voxels,
            "n_kept": int(self.kept.size),
            "nan_voxels": self.nan_voxels.tolist(),
            "constant_voxels": self.constant_voxels.tolist(),
            "rule": "voxels with any NaN/inf value or with zero variance are excluded; their maps are NaN",
        }


def prepare_brain(
    data: np.ndarray, n_tr: int | None = None, tr: float | None = None, voxel_names: list[str] | None = None
) -> BrainData:
    """Check a (time x voxel) matrix against the stimulus length and exclude NaN and constant voxels with a report."""
    y = np.asarray(data, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"brain data must be a (time x voxel) matrix, got shape {y.shape}")
    if n_tr is not None and y.shape[0] != n_tr:
        hint = " (it looks transposed: rows must be volumes)" if y.shape[1] == n_tr else ""
        at = f" at TR {tr} s" if tr is not None else ""
        raise ValueError(f"brain data has {y.shape[0]} volumes but the stimulus{at} gives {n_tr}{hint}")
    if voxel_names is not None and len(voxel_names) != y.shape[1]:
        raise ValueError(f"{len(voxel_names)} voxel names for {y.shape[1]} voxels")
    bad = ~np.isfinite(y).all(axis=0)
    with np.errstate(invalid="ignore"):
        constant = ~bad & (np.ptp(np.where(np.isfinite(y), y, 0.0), axis=0) == 0)
    kept = np.flatnonzero(~bad & ~constant)
    if kept.size == 0:
        raise ValueError(f"no usable voxel: {bad.sum()} hold NaN/inf and {constant.sum()} are constant")
    if y.shape[0] < 3:
        raise ValueError(f"brain data has {y.shape[0]} volumes; an encoding model needs more")
    return BrainData(y[:, kept], y.shape[1], kept, np.flatnonzero(bad), np.flatnonzero(constant), voxel_names)


def load_brain(source: str | Path | bytes, n_tr: int | None = None, tr: float | None = None,
               name: str | Path | None = None) -> BrainData:
    """Read a time x voxel matrix from .npy or .csv (an optional header row names the voxels) and prepare it;
    ``source`` is a path or a file's bytes (then ``name`` gives the format)."""
    data, names = read_matrix(source, name or str(source), "brain data")
    return prepare_brain(data, n_tr=n_tr, tr=tr, voxel_names=names)


def design_matrix(atoms: np.ndarray, tr: float) -> np.ndarray:
    """HRF-convolved atoms, z-scored, followed by an intercept column; betas are per SD of each regressor."""
    a = np.asarray(atoms, dtype=float)
    if a.ndim != 2:
        raise ValueError(f"atoms must be (time x K), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("atoms contain NaN or inf")
    x = convolve_hrf(a, tr)
    sd = x.std(axis=0)
    if (sd == 0).any():
        raise ValueError(f"atoms {np.flatnonzero(sd == 0).tolist()} are constant after HRF convolution")
    x = np.column_stack([(x - x.mean(axis=0)) / sd, np.ones(len(x))])
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise ValueError("the HRF-convolved atoms are collinear; reduce K or drop duplicate atoms")
    return x


def nuisance_matrix(n: int, tr: float) -> np.ndarray:
    """The drift cosines (see `drift_basis`) and the intercept, as the last columns of every encoding design."""
    return np.column_stack([drift_basis(n, tr), np.ones(n)])


def variance_inflation(design: np.ndarray) -> np.ndarray:
    """Variance inflation factor of each regressor of a design whose last column is the intercept: 1 / (1 - R^2)."""
    c = np.corrcoef(design[:, :-1], rowvar=False)
    return np.diag(np.linalg.inv(np.atleast_2d(c)))


def fdr_bh(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values along an axis (reject where adjusted p <= q)."""
    return stats.false_discovery_control(np.asarray(p, dtype=float), axis=axis, method="bh")


def _ols(x: np.ndarray, y: np.ndarray, removed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """OLS of every column of y on x: betas (p x voxels), standard errors (p x voxels), residual dof (`removed`
    dimensions were regressed out of x and y beforehand)."""
    xtx_inv = np.linalg.inv(x.T @ x)
    beta = xtx_inv @ (x.T @ y)
    resid = y - x @ beta
    dof = x.shape[0] - x.shape[1] - removed
    s2 = (resid * resid).sum(axis=0) / dof
    return beta, np.sqrt(np.outer(np.diag(xtx_inv), s2)), dof


def _ols_ar(x: np.ndarray, y: np.ndarray, removed: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, NoiseModel]:
    """Two-pass GLM: an AR(p) noise model from the OLS residuals (see `noise`), then OLS of the whitened data and
    design, voxel by voxel (batched), since shrinkage may give each voxel its own coefficients. x and y were
    projected off `removed` (time x m, the drift) beforehand: filtered, then whitened, as SPM does."""
    resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    noise = fit_noise_model(resid, np.column_stack([x, removed]))
    p, n, c = noise.order, x.shape[0], x.shape[1]
    dof = n - p - c - removed.shape[1]
    if p == 0:
        beta, se, _ = _ols(x, y, removed.shape[1])
        return beta, se, dof, noise
    lagged = np.stack([x[p - j : n - j] for j in range(p + 1)])  # (p+1) x (n-p) x c
    beta, se = np.empty((c, y.shape[1])), np.empty((c, y.shape[1]))
    for lo in range(0, y.shape[1], GLS_CHUNK):
        cols = slice(lo, lo + GLS_CHUNK)
        phi = noise.voxel[cols]
        xw = lagged[0][None] - (phi @ lagged[1:].reshape(p, -1)).reshape(-1, n - p, c)  # batched matrix products
        yw = whiten(y[:, cols], phi)
        xwt = np.swapaxes(xw, 1, 2)
        inv = np.linalg.inv(xwt @ xw)
        b = (inv @ (xwt @ yw.T[:, :, None]))[:, :, 0]
        r = yw - (xw @ b[:, :, None])[:, :, 0].T
        s2 = (r * r).sum(axis=0) / dof
        beta[:, cols] = b.T
        se[:, cols] = np.sqrt(np.diagonal(inv, axis1=1, axis2=2) * s2[:, None]).T
    return beta, se, dof, noise


@dataclass(frozen=True)
class EncodingResult:
    """Per-atom maps over all input voxels (NaN / False where a voxel was excluded)."""

    method: str
    joint: bool  # one model with all atoms, or one model per atom
    betas: np.ndarray  # K x voxels
    t: np.ndarray  # K x voxels
    p: np.ndarray  # K x voxels, two-sided
    q: np.ndarray  # K x voxels, BH-adjusted across voxels, per atom
    significant: np.ndarray  # K x voxels, q <= fdr_q
    fdr_q: float
    vif: np.ndarray  # K, variance inflation factor of each convolved atom (large = collinear, maps unreliable)
    ar_order: list[int] | None  # ols_ar only: the AR order of each model (one if joint, else one per atom)
    ridge_alpha: np.ndarray | None  # ridge only: voxels if joint, else K x voxels
    voxel_mask: np.ndarray  # voxels, True where the voxel was used
    drift_regressors: int = 0  # discrete cosines of slow drift beside the atoms in every model

    def describe(self) -> str:
        """The test behind the p-values, in one line for the report."""
        drift = f"; {self.drift_regressors} drift cosine(s) (periods over {HIGH_PASS_SECONDS:g} s) as nuisance"
        if self.method == "ols_ar":
            return (f"OLS after AR(p) prewhitening (p = {', '.join(map(str, self.ar_order))} chosen by AIC on the pooled, "
                    "bias-corrected residual autocorrelation; voxel coefficients shrunk to the pooled ones)" + drift)
        if self.method == "ridge":
            return ("ridge, penalty per voxel by blocked cross-validation; t = beta / its standard error under the AR(p) "
                    "noise model of the residuals (as ols_ar)" + drift)
        return "plain OLS (assumes white noise: anti-conservative on autocorrelated fMRI noise)" + drift


def _full(values: np.ndarray, brain: BrainData, fill: float = np.nan) -> np.ndarray:
    """Scatter values over kept voxels back into the input's voxel space."""
    out = np.full(values.shape[:-1] + (brain.n_voxels,), fill, dtype=values.dtype)
    out[..., brain.kept] = values
    return out


def _as_brain(brain: BrainData | np.ndarray, n_tr: int) -> BrainData:
    """Accept prepared brain data or a raw matrix, and check the number of volumes."""
    if isinstance(brain, BrainData):
        if brain.data.shape[0] != n_tr:
            raise ValueError(f"brain data has {brain.data.shape[0]} volumes but the atoms have {n_tr} TRs")
        return brain
    return prepare_brain(brain, n_tr=n_tr)


def _fit(x: np.ndarray, nuisance: np.ndarray, y: np.ndarray, method: str, ridge_alphas: np.ndarray, gap: int
         ) -> tuple[np.ndarray, np.ndarray, int | np.ndarray, int | None, np.ndarray | None]:
    """Atom betas, standard errors, dof, AR order and ridge alpha of the regressors x beside the nuisance columns
    (drift cosines and intercept): data and regressors are filtered (projected off the drift), then fitted with
    an intercept, which for OLS is the same as drift regressors in the design."""
    k = x.shape[1]
    drift = nuisance[:, :-1]  # orthonormal cosines
    rest = high_pass(np.column_stack([x, y]), drift)
    xf, yf = rest[:, :k], rest[:, k:]
    if method == "ridge":
        beta, se, dof, alpha = fit_ridge(xf, yf, np.asarray(ridge_alphas, dtype=float), gap, drift)
        return beta, se, dof, None, alpha
    full = np.column_stack([xf, nuisance[:, -1]])
    if method == "ols":
        beta, se, dof = _ols(full, yf, drift.shape[1])
        return beta[:k], se[:k], dof, None, None
    beta, se, dof, noise = _ols_ar(full, yf, drift)
    return beta[:k], se[:k], dof, noise.order, None


def fit_encoding(
    atoms: np.ndarray,
    brain: BrainData | np.ndarray,
    tr: float,
    method: str = "ols_ar",
    fdr_q: float = 0.05,
    ridge_alphas: np.ndarray = RIDGE_ALPHAS,
    joint: bool = True,
) -> EncodingResult:
    """Fit every voxel on the HRF-convolved atoms and return per-atom beta, t, p and FDR maps.

    joint fits all atoms in one model (each map is the atom's unique contribution; collinear atoms, see `vif`,
    make maps unreliable); joint=False fits one model per atom (atom + intercept), robust to collinearity but
    crediting each atom with what it shares with the others.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0 < fdr_q < 1:
        raise ValueError(f"FDR q must be in (0, 1), got {fdr_q}")
    x = design_matrix(atoms, tr)
    b = _as_brain(brain, x.shape[0])
    nuisance = nuisance_matrix(x.shape[0], tr)
    if x.shape[1] - 1 + nuisance.shape[1] >= x.shape[0]:
        raise ValueError(f"{x.shape[1] - 1} atoms and {nuisance.shape[1] - 1} drift regressors leave no residual degrees "
                         f"of freedom with {x.shape[0]} volumes")
    y, gap = b.data, cv_gap(tr)
    if joint:
        beta, se, dof, order, alpha = _fit(x[:, :-1], nuisance, y, method, ridge_alphas, gap)
        orders = None if order is None else [order]
    else:
        fits = [_fit(x[:, [k]], nuisance, y, method, ridge_alphas, gap) for k in range(x.shape[1] - 1)]
        beta, se = np.vstack([f[0] for f in fits]), np.vstack([f[1] for f in fits])
        dof = np.vstack([np.broadcast_to(f[2], (y.shape[1],)) for f in fits])
        orders = None if fits[0][3] is None else [f[3] for f in fits]
        alpha = None if fits[0][4] is None else np.vstack([f[4] for f in fits])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, beta / se, 0.0)
    p = 2 * stats.t.sf(np.abs(t), dof)
    q = fdr_bh(p, axis=1)
    return EncodingResult(
        method=method,
        joint=joint,
        betas=_full(beta, b),
        t=_full(t, b),
        p=_full(p, b),
        q=_full(q, b),
        significant=_full(q <= fdr_q, b, fill=False),
        fdr_q=fdr_q,
        vif=variance_inflation(x),
        ar_order=orders,
        ridge_alpha=None if alpha is None else _full(alpha, b),
        voxel_mask=b.mask,
        drift_regressors=nuisance.shape[1] - 1,
    )


def cross_validated_predictions(design: np.ndarray, y: np.ndarray, tr: float, method: str = "ols_ar",
                                ridge_alphas: np.ndarray = RIDGE_ALPHAS, shared_penalty: bool = False) -> np.ndarray:
    """Out-of-fold predictions (time x voxels) of y from a design (last column the intercept) by blocked CV.

    Each contiguous fold is predicted by a model trained on the other volumes minus `cv_gap(tr)` on each side of
    the fold. OLS methods predict with the OLS fit (prewhitening changes the tests, not the prediction); ridge
    chooses each voxel's penalty (or one for all, `shared_penalty`) by blocked CV inside the training volumes
    (nested, so the test fold never chooses it).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    gap = cv_gap(tr)
    folds = blocked_folds(design.shape[0], gap=gap)
    if min(len(train) for train, _ in folds) <= design.shape[1]:
        raise ValueError(f"{design.shape[0]} volumes leave too few training volumes per fold for "
                         f"{design.shape[1] - 1} regressors (folds leave {gap} volumes out on each side)")
    pred = np.empty_like(y, dtype=float)
    for train, test in folds:
        if method != "ridge" or design.shape[1] == 1:
            pred[test] = design[test] @ np.linalg.lstsq(design[train], y[train], rcond=None)[0]
        else:
            xt = design[train, :-1]
            alpha = choose_alphas(xt, y[train], np.asarray(ridge_alphas, dtype=float), gap, shared=shared_penalty)
            beta = ridge_betas(xt, y[train], alpha)
            pred[test] = (design[test, :-1] - xt.mean(axis=0)) @ beta + y[train].mean(axis=0)
    return pred


def held_out_prediction(
    atoms: np.ndarray,
    brain: BrainData | np.ndarray,
    tr: float,
    method: str = "ols_ar",
    ridge_alphas: np.ndarray = RIDGE_ALPHAS,
) -> np.ndarray:
    """Pearson r per voxel between BOLD and its blocked cross-validated prediction from the atoms (NaN if excluded),
    both with slow drift removed."""
    x = design_matrix(atoms, tr)
    b = _as_brain(brain, x.shape[0])
    basis = drift_basis(x.shape[0], tr)
    x[:, :-1] = high_pass(x[:, :-1], basis)
    y = high_pass(b.data, basis)
    pred = cross_validated_predictions(x, y, tr, method, ridge_alphas)
    yt, pt = y - y.mean(axis=0), pred - pred.mean(axis=0)
    den = np.sqrt((yt * yt).sum(axis=0) * (pt * pt).sum(axis=0))
    return _full(np.divide((yt * pt).sum(axis=0), den, out=np.zeros(y.shape[1]), where=den > 0), b)
