"""Sparse dictionary learning of AN responses into atoms (time courses) and sparse AN loadings, with stability checks."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import DictionaryLearning
from sklearn.exceptions import ConvergenceWarning

__all__ = ["AtomModel", "Subgroup", "Stability", "fit_atoms", "match_atoms", "atom_stability"]


@dataclass(frozen=True)
class Subgroup:
    """The ANs that load on one atom, strongest first."""

    atom: int
    ans: np.ndarray  # AN (column) indices
    loadings: np.ndarray  # their loadings on the atom


@dataclass(frozen=True)
class AtomModel:
    """X (time x ANs), centred per AN and divided by `scale`, ~ atoms (time x K) @ loadings (K x ANs)."""

    atoms: np.ndarray  # time x K, unit-norm columns
    loadings: np.ndarray  # K x ANs, sparse
    alpha: float
    seed: int
    scale: float  # the centred responses were divided by this (root mean square AN norm)
    r2: float  # share of the centred, scaled responses' sum of squares reconstructed
    n_iter: int
    converged: bool

    @property
    def k(self) -> int:
        """Number of atoms."""
        return self.atoms.shape[1]

    @property
    def primary(self) -> np.ndarray:
        """Per AN, the atom with the largest absolute loading, or -1 for ANs that load on none."""
        idx = np.argmax(np.abs(self.loadings), axis=0)
        return np.where(np.abs(self.loadings).max(axis=0) > 0, idx, -1)

    def subgroups(self) -> list[Subgroup]:
        """Each atom's sub-group: the ANs with a non-zero loading on it, sorted by decreasing |loading|."""
        out = []
        for k, row in enumerate(self.loadings):
            ans = np.flatnonzero(row)
            ans = ans[np.argsort(-np.abs(row[ans]), kind="stable")]
            out.append(Subgroup(k, ans, row[ans]))
        return out


def _check_responses(responses: np.ndarray, k: int) -> np.ndarray:
    """Validate a (time x ANs) response matrix against K and return it as float."""
    x = np.asarray(responses, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"responses must be a (time x ANs) matrix, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"responses contain {np.count_nonzero(~np.isfinite(x))} NaN/inf values")
    if k < 1:
        raise ValueError(f"K must be at least 1, got {k}")
    if k > min(x.shape):
        raise ValueError(f"K = {k} exceeds what {x.shape[0]} time points x {x.shape[1]} ANs allow (at most {min(x.shape)})")
    varying = np.count_nonzero(np.ptp(x, axis=0) > 0)
    if k > varying:
        raise ValueError(f"K = {k} exceeds the {varying} ANs whose response varies")
    return x


def fit_atoms(responses: np.ndarray, k: int, alpha: float = 0.2, seed: int = 0, max_iter: int = 100) -> AtomModel:
    """Learn K unit-norm atoms and sparse loadings with scikit-learn's DictionaryLearning (L1 penalty alpha).

    Responses are centred per AN and scaled so that the root mean square AN norm is 1, which makes alpha
    comparable across inputs: a loading below about alpha is set to zero. The seed picks the K ANs whose
    time courses start the dictionary. Atoms are ordered by decreasing sum of squared loadings and signed so
    their loadings sum to a non-negative number.
    """
    x = _check_responses(responses, k)
    if alpha < 0:
        raise ValueError(f"sparsity alpha must be >= 0, got {alpha}")
    xc = x - x.mean(axis=0)
    scale = float(np.sqrt((xc * xc).sum(axis=0).mean()))
    xs = (xc / scale).T  # ANs x time: samples are ANs, features are time points
    rng = np.random.default_rng(seed)
    start = rng.choice(np.flatnonzero(np.ptp(x, axis=0) > 0), size=k, replace=False)
    dict_init = xs[start] / np.linalg.norm(xs[start], axis=1, keepdims=True)
    model = DictionaryLearning(
        n_components=k,
        alpha=alpha,
        max_iter=max_iter,
        tol=1e-6,
        fit_algorithm="cd",
        transform_algorithm="lasso_cd",
        transform_alpha=alpha,
        dict_init=dict_init,
        code_init=xs @ dict_init.T,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # inner lasso warnings; convergence is reported below
        code = model.fit_transform(xs)
    atoms, loadings = model.components_.T.copy(), code.T.copy()
    order = np.argsort(-(loadings**2).sum(axis=1), kind="stable")
    atoms, loadings = atoms[:, order], loadings[order]
    sign = np.where(loadings.sum(axis=1) < 0, -1.0, 1.0)
    atoms, loadings = atoms * sign, loadings * sign[:, None]
    resid = xs.T - atoms @ loadings
    r2 = 1.0 - float((resid * resid).sum() / (xs * xs).sum())
    n_iter = int(model.n_iter_)
    return AtomModel(atoms, loadings, alpha, seed, scale, r2, n_iter, n_iter < max_iter)


def match_atoms(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair atoms (columns) of two sets one-to-one maximising total |Pearson r| (Hungarian); returns (ref, other, |r|)."""
    a, b = np.asarray(reference, dtype=float), np.asarray(other, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"atom sets must be (time x K) with equal time, got {a.shape} and {b.shape}")
    r = np.abs(_corr_columns(a, b))
    rows, cols = linear_sum_assignment(r, maximize=True)
    return rows, cols, r[rows, cols]


def _corr_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between every column of a and every column of b (0 where a column is constant)."""
    az, bz = a - a.mean(axis=0), b - b.mean(axis=0)
    na, nb = np.linalg.norm(az, axis=0), np.linalg.norm(bz, axis=0)
    az = np.divide(az, na, out=np.zeros_like(az), where=na > 0)
    bz = np.divide(bz, nb, out=np.zeros_like(bz), where=nb > 0)
    return az.T @ bz


@dataclass(frozen=True)
class Stability:
    """Matched |r| between the atoms of runs with different seeds."""

    seeds: list[int]
    pair_mean_abs_r: dict[str, float]  # "s1-s2" -> mean matched |r|
    mean_abs_r: float
    min_abs_r: float  # weakest matched atom over all pairs


def atom_stability(models: Sequence[AtomModel]) -> Stability:
    """How well the atoms of every pair of fits (e.g. different seeds, same data and K) match."""
    if len(models) < 2:
        raise ValueError("stability needs at least two fitted models")
    pairs, worst = {}, 1.0
    for m1, m2 in combinations(models, 2):
        r = match_atoms(m1.atoms, m2.atoms)[2]
        pairs[f"{m1.seed}-{m2.seed}"] = float(r.mean())
        worst = min(worst, float(r.min()))
    return Stability([m.seed for m in models], pairs, float(np.mean(list(pairs.values()))), worst)
