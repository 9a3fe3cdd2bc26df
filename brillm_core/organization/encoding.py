"""Voxel-wise encoding of brain data by HRF-convolved atoms, with AR(1)-prewhitened OLS or ridge and FDR control."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.linear_model import RidgeCV

from .hrf import convolve_hrf
from .tables import read_matrix

__all__ = [
    "METHODS",
    "BrainData",
    "EncodingResult",
    "prepare_brain",
    "load_brain",
    "design_matrix",
    "variance_inflation",
    "prais_winsten",
    "ar1_coefficients",
    "fdr_bh",
    "fit_encoding",
    "held_out_prediction",
]

METHODS = ("ols_ar1", "ols", "ridge")
RIDGE_ALPHAS = np.logspace(-2, 4, 13)
RHO_DECIMALS = 2  # AR(1) coefficients are binned to 0.01 so that voxels sharing a bin share one whitened design


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


def variance_inflation(design: np.ndarray) -> np.ndarray:
    """Variance inflation factor of each regressor of a design whose last column is the intercept: 1 / (1 - R^2)."""
    c = np.corrcoef(design[:, :-1], rowvar=False)
    return np.diag(np.linalg.inv(np.atleast_2d(c)))


def prais_winsten(x: np.ndarray, rho: float) -> np.ndarray:
    """Whiten rows of x for AR(1) noise with coefficient rho: first row times sqrt(1-rho^2), then x_t - rho x_{t-1}."""
    out = np.empty_like(x, dtype=float)
    out[0] = np.sqrt(1.0 - rho**2) * x[0]
    out[1:] = x[1:] - rho * x[:-1]
    return out


def ar1_coefficients(residuals: np.ndarray, design: np.ndarray | None = None) -> np.ndarray:
    """AR(1) coefficient of each residual column, bias-corrected for the fit when `design` is given, in [-0.99, 0.99].

    Without a design this is the lag-1 autocorrelation c1. OLS residuals e = R y (R = I - X X^+) are biased
    towards negative autocorrelation by the projection, most for smooth regressors; with the design, rho solves
    c1 = (tr(R D) + rho tr(R D R S2)) / (tr(R) + rho tr(R S2)) (Worsley et al. 2002, NeuroImage 15:1, first
    order), where S2 is the lag-1 shift plus its transpose and D = S2 / 2.
    """
    e = np.asarray(residuals, dtype=float)
    den = (e * e).sum(axis=0)
    c1 = np.divide((e[1:] * e[:-1]).sum(axis=0), den, out=np.zeros_like(den), where=den > 0)
    if design is None:
        return np.clip(c1, -0.99, 0.99)
    n = e.shape[0]
    r = np.eye(n) - design @ np.linalg.pinv(design)
    s2 = np.eye(n, k=1) + np.eye(n, k=-1)
    rs2 = r @ s2
    tr_r, tr_rd, m2, m3 = np.trace(r), np.trace(rs2) / 2, np.trace(rs2), np.trace(rs2 @ rs2) / 2
    return np.clip((c1 * tr_r - tr_rd) / (m3 - c1 * m2), -0.99, 0.99)


def fdr_bh(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values along an axis (reject where adjusted p <= q)."""
    return stats.false_discovery_control(np.asarray(p, dtype=float), axis=axis, method="bh")


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """OLS of every column of y on x: betas (p x voxels), standard errors (p x voxels), residual dof."""
    xtx_inv = np.linalg.inv(x.T @ x)
    beta = xtx_inv @ (x.T @ y)
    resid = y - x @ beta
    dof = x.shape[0] - x.shape[1]
    s2 = (resid * resid).sum(axis=0) / dof
    return beta, np.sqrt(np.outer(np.diag(xtx_inv), s2)), dof


def _ols_ar1(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Two-pass AR(1) GLM: bias-corrected rho per voxel from OLS residuals, Prais-Winsten whitening, refit by rho bin."""
    beta0 = np.linalg.lstsq(x, y, rcond=None)[0]
    rho = np.round(ar1_coefficients(y - x @ beta0, x), RHO_DECIMALS)
    beta = np.empty((x.shape[1], y.shape[1]))
    se = np.empty_like(beta)
    dof = x.shape[0] - x.shape[1]
    for r in np.unique(rho):
        cols = np.flatnonzero(rho == r)
        beta[:, cols], se[:, cols], _ = _ols(prais_winsten(x, r), prais_winsten(y[:, cols], r))
    return beta, se, dof, rho


def _ridge(x: np.ndarray, y: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """RidgeCV (efficient leave-one-out, one alpha per voxel) with approximate sandwich standard errors.

    Ridge betas are shrunk towards zero, so its t statistics are conservative approximations; dof per voxel is
    n - trace(hat matrix).
    """
    xc = x[:, :-1]
    model = RidgeCV(alphas=alphas, alpha_per_target=True).fit(xc, y)
    beta = np.atleast_2d(model.coef_).T  # K x voxels
    alpha = np.broadcast_to(model.alpha_, (y.shape[1],)).astype(float)
    resid = y - model.predict(xc).reshape(y.shape)
    xm = xc - xc.mean(axis=0)
    gram = xm.T @ xm
    se = np.empty_like(beta)
    dof = np.empty(y.shape[1])
    for a in np.unique(alpha):
        cols = np.flatnonzero(alpha == a)
        inv = np.linalg.inv(gram + a * np.eye(len(gram)))
        d = x.shape[0] - 1 - np.trace(gram @ inv)
        s2 = (resid[:, cols] ** 2).sum(axis=0) / d
        se[:, cols] = np.sqrt(np.outer(np.diag(inv @ gram @ inv), s2))
        dof[cols] = d
    return beta, se, dof, alpha


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
    rho: np.ndarray | None  # AR(1) coefficient used (ols_ar1 only): voxels if joint, else K x voxels
    ridge_alpha: np.ndarray | None  # ridge only: voxels if joint, else K x voxels
    voxel_mask: np.ndarray  # voxels, True where the voxel was used


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


def _fit(
    x: np.ndarray, y: np.ndarray, method: str, ridge_alphas: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | int, np.ndarray | None, np.ndarray | None]:
    """Atom betas, standard errors, dof, AR(1) rho and ridge alpha of one design (last column the intercept)."""
    if method == "ridge":
        beta, se, dof, alpha = _ridge(x, y, np.asarray(ridge_alphas, dtype=float))
        return beta, se, dof, None, alpha
    if method == "ols":
        beta, se, dof = _ols(x, y)
        return beta[:-1], se[:-1], dof, None, None
    beta, se, dof, rho = _ols_ar1(x, y)
    return beta[:-1], se[:-1], dof, rho, None


def fit_encoding(
    atoms: np.ndarray,
    brain: BrainData | np.ndarray,
    tr: float,
    method: str = "ols_ar1",
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
    if x.shape[1] >= x.shape[0]:
        raise ValueError(f"{x.shape[1] - 1} atoms leave no residual degrees of freedom with {x.shape[0]} volumes")
    y = b.data
    if joint:
        beta, se, dof, rho, alpha = _fit(x, y, method, ridge_alphas)
    else:
        fits = [_fit(x[:, [k, -1]], y, method, ridge_alphas) for k in range(x.shape[1] - 1)]
        beta, se = np.vstack([f[0] for f in fits]), np.vstack([f[1] for f in fits])
        dof = np.vstack([np.broadcast_to(f[2], (y.shape[1],)) for f in fits])
        rho = None if fits[0][3] is None else np.vstack([f[3] for f in fits])
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
        rho=None if rho is None else _full(rho, b),
        ridge_alpha=None if alpha is None else _full(alpha, b),
        voxel_mask=b.mask,
    )


def held_out_prediction(
    atoms: np.ndarray,
    brain: BrainData | np.ndarray,
    tr: float,
    test_fraction: float = 0.2,
    method: str = "ols_ar1",
    ridge_alphas: np.ndarray = RIDGE_ALPHAS,
) -> np.ndarray:
    """Pearson r per voxel between BOLD and its prediction on the last `test_fraction` of volumes, fitted on the rest.

    OLS methods predict with the OLS fit (prewhitening changes the tests, not the prediction); ridge uses RidgeCV.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    x = design_matrix(atoms, tr)
    b = _as_brain(brain, x.shape[0])
    n_test = int(round(test_fraction * x.shape[0]))
    n_train = x.shape[0] - n_test
    if n_test < 3 or n_train <= x.shape[1]:
        raise ValueError(f"a {test_fraction} split of {x.shape[0]} volumes leaves too few volumes to fit or test")
    y = b.data
    if method == "ridge":
        model = RidgeCV(alphas=ridge_alphas, alpha_per_target=True).fit(x[:n_train, :-1], y[:n_train])
        pred = model.predict(x[n_train:, :-1]).reshape(n_test, -1)
    else:
        pred = x[n_train:] @ np.linalg.lstsq(x[:n_train], y[:n_train], rcond=None)[0]
    yt = y[n_train:] - y[n_train:].mean(axis=0)
    pt = pred - pred.mean(axis=0)
    den = np.sqrt((yt * yt).sum(axis=0) * (pt * pt).sum(axis=0))
    r = np.divide((yt * pt).sum(axis=0), den, out=np.zeros(y.shape[1]), where=den > 0)
    return _full(r, b)
