"""Sparse dictionary learning of AN responses into atoms (time courses) and sparse AN loadings, with stability checks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["INITS", "STABILITY_WARN", "AtomModel", "Subgroup", "Stability", "count_varying", "standardise",
           "sparse_codes", "learn_dictionary", "fit_atoms", "fit_best_atoms", "match_atoms", "atom_stability"]

INITS = ("svd", "random")
# Warn when an atom of another start matches the chosen one below |r| = 0.9 (under 81 % shared variance): such an
# atom cannot meet the recovery target |r| >= 0.95 the simulator holds the method to; on the default simulator
# every start agrees at 0.999, a start that loses an atom (twice the neuron noise) reads 0.15-0.24.
STABILITY_WARN = 0.9
NEAR_BEST = 0.01  # a start within 1 % of the lowest objective is an equally good answer, not a worse local minimum
OBJECTIVE_TOL = 1e-6  # dictionary learning stops when an iteration lowers the objective by less than this share
CODE_TOL = 1e-7  # sparse coding stops when no coefficient moves more than this share of the largest
MAX_SWEEPS = 1000  # coordinate-descent sweeps per sparse coding at most
RELATIVE_CONSTANT = 1e-10  # an AN varying less than this share of its size is constant up to rounding


@dataclass(frozen=True)
class Subgroup:
    """The ANs that load on one atom, strongest first."""

    atom: int
    ans: np.ndarray  # AN (column) indices
    loadings: np.ndarray  # their loadings on the atom


@dataclass(frozen=True)
class AtomModel:
    """X (time x ANs), centred per AN and divided by `scales`, ~ atoms (time x K) @ loadings (K x ANs)."""

    atoms: np.ndarray  # time x K, unit-norm columns
    loadings: np.ndarray  # K x ANs, sparse
    alpha: float
    seed: int
    init: str  # "svd" (leading right singular vectors) or "random" (K neurons chosen by the seed)
    objective: float  # 0.5 ||X - loadings' atoms'||^2 + alpha ||loadings||_1, standardised responses (lower is better)
    scales: np.ndarray  # ANs, each centred AN was divided by this (its unit's scale; 1 for a constant AN)
    r2: float  # share of the standardised responses' sum of squares reconstructed
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

    def read_from(self, responses: np.ndarray) -> np.ndarray:
        """The atoms' time courses (time x K) in other responses of the same ANs, read with this model's centring,
        standardisation and loadings: the least-squares atoms given the loadings (on the responses the model was
        fitted to, its atoms up to their unit norm and the part the loadings leave out)."""
        x = np.asarray(responses, dtype=float)
        if x.shape[1] != self.loadings.shape[1]:
            raise ValueError(f"responses have {x.shape[1]} ANs, the atoms were learnt from {self.loadings.shape[1]}")
        return ((x - x.mean(axis=0)) / self.scales) @ np.linalg.pinv(self.loadings)

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
    varying = count_varying(x)
    if k > varying:
        raise ValueError(f"K = {k} exceeds the {varying} ANs whose response varies")
    return x


def _neuron_sd(x: np.ndarray) -> np.ndarray:
    """Each AN's standard deviation over time, 0 for an AN that is constant up to rounding (its variation under
    1e-10 of its own size), so that standardising never blows rounding noise up into a response."""
    sd = x.std(axis=0)
    return np.where(sd > RELATIVE_CONSTANT * np.abs(x).max(axis=0), sd, 0.0)


def count_varying(responses: np.ndarray) -> int:
    """How many ANs (columns) vary beyond rounding: at most this many atoms can be learnt."""
    return int(np.count_nonzero(_neuron_sd(np.asarray(responses, dtype=float)) > 0))


def standardise(responses: np.ndarray, units: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Responses centred per AN and divided by their unit's scale (constant ANs stay 0), and each AN's divisor.

    ANs of one unit (BriLLM: the same component k of every node's signal) share a scale, the root mean square norm
    of their varying ANs; without `units` all ANs are one unit. Per unit, so that one channel's scale (BriLLM's
    energy channel sits thousands of times above the others) cannot decide the atoms alone. Not per AN: a node-gated
    AN of a word heard once is a single spike, and scaled to the norm of a frequent word's AN, hundreds of such
    spikes would become the atoms.
    """
    x = np.asarray(responses, dtype=float)
    xc = x - x.mean(axis=0)
    varying = _neuron_sd(x) > 0
    group = (np.zeros(x.shape[1], dtype=np.int64) if units is None
             else np.unique(np.asarray(units), return_inverse=True)[1])
    if group.shape != (x.shape[1],):
        raise ValueError(f"{group.size} unit labels for {x.shape[1]} ANs")
    sq = np.where(varying, (xc * xc).sum(axis=0), 0.0)
    per_unit = np.sqrt(np.bincount(group, sq) / np.maximum(np.bincount(group, varying), 1))
    scales = np.where(varying & (per_unit[group] > 0), per_unit[group], 1.0)
    return np.where(varying, xc / scales, 0.0), scales


def sparse_codes(data: np.ndarray, dictionary: np.ndarray, alpha: float, code: np.ndarray | None = None,
                 tol: float = CODE_TOL, max_sweeps: int = MAX_SWEEPS) -> np.ndarray:
    """Lasso codes of every row of `data` (samples x features) on the rows of `dictionary` (K x features), all rows
    at once: min 0.5 ||x - c D||^2 + alpha ||c||_1 per row, by coordinate descent over the K coefficients, each
    step a vector operation over the samples still moving. A sample stops when none of its coefficients moved more
    than `tol` times the largest coefficient in a sweep (warm start from `code`)."""
    gram = dictionary @ dictionary.T
    cov = data @ dictionary.T
    c = np.zeros_like(cov) if code is None else np.array(code, dtype=float)
    diag = np.diag(gram)
    c[:, diag <= 0] = 0.0
    active = np.arange(c.shape[0])
    for _ in range(max_sweeps):
        sub, subcov = c[active], cov[active]
        moved = np.zeros(active.size)
        for j in np.flatnonzero(diag > 0):
            r = subcov[:, j] - sub @ gram[:, j] + sub[:, j] * diag[j]
            new = np.sign(r) * np.maximum(np.abs(r) - alpha, 0.0) / diag[j]
            moved = np.maximum(moved, np.abs(new - sub[:, j]))
            sub[:, j] = new
        c[active] = sub
        active = active[moved > tol * max(float(np.abs(c).max(initial=0.0)), 1e-300)]
        if active.size == 0:
            break
    return c


def _update_dictionary(dictionary: np.ndarray, data: np.ndarray, code: np.ndarray, rng: np.random.Generator) -> None:
    """Block coordinate descent on the atoms (rows) given the codes, each projected onto the unit ball; an atom no
    sample uses is restarted from a random sample plus a little noise (as scikit-learn's dictionary learning)."""
    a, b = code.T @ code, data.T @ code
    for j in range(dictionary.shape[0]):
        if a[j, j] > 1e-6:
            dictionary[j] += (b[:, j] - a[j] @ dictionary) / a[j, j]
        else:
            fresh = data[rng.integers(data.shape[0])]
            dictionary[j] = fresh + rng.normal(0.0, 0.01 * (fresh.std() or 1.0), fresh.size)
            code[:, j] = 0.0
        dictionary[j] /= max(float(np.linalg.norm(dictionary[j])), 1.0)


def learn_dictionary(data: np.ndarray, dictionary: np.ndarray, alpha: float, max_iter: int, tol: float = OBJECTIVE_TOL,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Alternate sparse codes and atoms from a starting dictionary (K x features) until the objective
    0.5 ||data - code dictionary||^2 + alpha ||code||_1 falls by less than `tol` of itself; returns (dictionary,
    code, iterations). The same algorithm as scikit-learn's DictionaryLearning with coordinate descent, with the
    codes of all samples solved together instead of one Lasso fit per sample."""
    d = np.array(dictionary, dtype=float)
    code = data @ d.T
    rng = np.random.default_rng(seed)
    total = float((data * data).sum())
    previous = np.inf
    iteration = 0
    for iteration in range(1, max_iter + 1):
        code = sparse_codes(data, d, alpha, code)
        _update_dictionary(d, data, code, rng)
        # |data - code d|^2 without the samples x features residual
        sse = total - 2 * float((code * (data @ d.T)).sum()) + float(((code.T @ code) * (d @ d.T)).sum())
        cost = 0.5 * max(sse, 0.0) + alpha * float(np.abs(code).sum())
        if previous - cost < tol * cost:
            break
        previous = cost
    return d, code, iteration


def fit_atoms(responses: np.ndarray, k: int, alpha: float = 0.2, seed: int = 0, max_iter: int = 100,
              init: str = "svd", units: np.ndarray | None = None) -> AtomModel:
    """Learn K unit-norm atoms and sparse loadings (L1 penalty alpha) of the standardised responses.

    Each AN is centred and divided by its unit's scale (see `standardise`), so the root mean square AN norm is 1 and
    alpha is comparable across inputs: a loading below about alpha is set to zero. The dictionary starts from the K
    leading right singular vectors (init "svd": no seed involved, and it avoids the local minima random starts fall
    into) or from the time courses of K ANs the seed picks (init "random"). Atoms are ordered by decreasing sum of
    squared loadings and signed so their loadings sum to a non-negative number.
    """
    x = _check_responses(responses, k)
    if alpha < 0:
        raise ValueError(f"sparsity alpha must be >= 0, got {alpha}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    xs_t, scales = standardise(x, units)
    xs = xs_t.T  # ANs x time: samples are ANs, features are time points
    if init == "svd":
        dict_init = np.linalg.svd(xs, full_matrices=False)[2][:k]
    else:
        varying = np.flatnonzero(np.abs(xs).max(axis=1) > 0)
        start = np.random.default_rng(seed).choice(varying, size=k, replace=False)
        dict_init = xs[start] / np.linalg.norm(xs[start], axis=1, keepdims=True)
    components, code, n_iter = learn_dictionary(xs, dict_init, alpha, max_iter, seed=seed)
    atoms, loadings = components.T.copy(), code.T.copy()
    order = np.argsort(-(loadings**2).sum(axis=1), kind="stable")
    atoms, loadings = atoms[:, order], loadings[order]
    sign = np.where(loadings.sum(axis=1) < 0, -1.0, 1.0)
    atoms, loadings = atoms * sign, loadings * sign[:, None]
    resid = xs.T - atoms @ loadings
    sse = float((resid * resid).sum())
    objective = 0.5 * sse + alpha * float(np.abs(loadings).sum())
    return AtomModel(atoms, loadings, alpha, seed, init, objective, scales, 1.0 - sse / float((xs * xs).sum()), n_iter,
                     n_iter < max_iter)


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
    """How well the atoms of other starts match the chosen fit's atoms (Hungarian-matched |r|)."""

    chosen: str  # the start with the lowest objective
    objectives: dict[str, float]  # start -> final objective
    mean_abs_r: dict[str, float]  # other start -> mean matched |r| with the chosen atoms
    min_abs_r: dict[str, float]  # other start -> weakest matched atom
    threshold: float = STABILITY_WARN

    def equally_good(self) -> list[str]:
        """Other starts whose objective is within `NEAR_BEST` of the chosen one's: alternative answers, where a
        start ending higher is a worse local minimum."""
        best = self.objectives[self.chosen]
        return [s for s in self.min_abs_r if self.objectives[s] <= best * (1 + NEAR_BEST)]

    @property
    def worst_equally_good_r(self) -> float | None:
        """Weakest matched atom among the equally good starts (None if every other start ended worse)."""
        near = self.equally_good()
        return min(self.min_abs_r[s] for s in near) if near else None

    @property
    def stable(self) -> bool:
        """False when an equally good start has an atom matching the chosen atoms below the threshold."""
        worst = self.worst_equally_good_r
        return worst is None or worst >= self.threshold

    def describe(self) -> str:
        """One line for the report."""
        parts = [f"{s}: |r| mean {self.mean_abs_r[s]:.3f} min {self.min_abs_r[s]:.3f}, objective "
                 f"{100 * (self.objectives[s] / self.objectives[self.chosen] - 1):+.1f} %" for s in self.min_abs_r]
        return f"atoms of other starts vs the chosen start ({self.chosen}, lowest objective): " + "; ".join(parts)


def _start_name(model: AtomModel) -> str:
    """'svd' or 'seed N'."""
    return "svd" if model.init == "svd" else f"seed {model.seed}"


def atom_stability(models: Sequence[AtomModel]) -> Stability:
    """Agreement of every fit with the one of lowest objective (same data and K, different starts)."""
    if len(models) < 2:
        raise ValueError("stability needs at least two fitted models")
    best = min(models, key=lambda m: m.objective)
    r = {_start_name(m): match_atoms(best.atoms, m.atoms)[2] for m in models if m is not best}
    return Stability(_start_name(best), {_start_name(m): m.objective for m in models},
                     {name: float(v.mean()) for name, v in r.items()}, {name: float(v.min()) for name, v in r.items()})


def fit_best_atoms(responses: np.ndarray, k: int, alpha: float = 0.2, seeds: Sequence[int] = (1, 2),
                   units: np.ndarray | None = None) -> tuple[AtomModel, Stability | None]:
    """Fit from the SVD start and from one random start per seed; keep the lowest objective, and report how well
    the other starts agree with it (None without seeds)."""
    models = [fit_atoms(responses, k, alpha, init="svd", units=units)] + [
        fit_atoms(responses, k, alpha, s, init="random", units=units) for s in seeds]
    best = min(models, key=lambda m: m.objective)
    return best, atom_stability(models) if len(models) > 1 else None
