"""Atom-to-network matching: spatial similarity of atom maps with network templates, permutation tests, summary measures."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.stats import false_discovery_control

__all__ = [
    "VOXEL_NULL",
    "SPATIAL_NULL",
    "map_smoothness",
    "FORMULAS",
    "NetworkMatch",
    "check_templates",
    "templates_from_labels",
    "network_similarity",
    "diversity",
    "consistency",
    "effective_rank",
    "summary_measures",
]

FORMULAS = {
    "pearson_r": "r(atom k, network n) = Pearson correlation over voxels of atom k's t map and template column n",
    "dice": "Dice = 2 |S_k & T_n| / (|S_k| + |T_n|), S_k = FDR-significant voxels of atom k, T_n = voxels with template > 0",
    "permutation_p": "p = (1 + #{null maps with statistic >= observed}) / (1 + n_perm); the null maps are named in the report",
    "match": "atom k matches network n when r >= r_threshold and both permutation p-values (r, Dice), each "
             "FDR-adjusted (Benjamini-Hochberg) across all K x N atom-network pairs, are <= p_threshold",
    "diversity": "diversity = 1 - mean over atom pairs i < j of |Pearson r(D_i, D_j)|",
    "consistency": "consistency = (number of atoms matching exactly one network) / K",
    "effective_rank": "effective rank = exp(-sum_i p_i log p_i), p_i = s_i / sum_j s_j, s = singular values of D",
}


VOXEL_NULL = "voxels permuted (assumes independent voxels: anti-conservative for spatially smooth maps)"
SPATIAL_NULL = ("smooth Gaussian random fields on the image grid, each atom's as smooth as its t map (neighbour "
                "correlation), its significant set the field's top voxels in equal number")
SMOOTHNESS_STEP = 0.25  # atoms whose estimated smoothness rounds to the same step share their null fields


def check_templates(
    templates: np.ndarray, n_voxels: int, names: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Validate a (voxel x network) template matrix against the data's voxel count and return it with names."""
    t = np.asarray(templates, dtype=float)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2:
        raise ValueError(f"templates must be a (voxel x network) matrix, got shape {t.shape}")
    if t.shape[0] != n_voxels:
        hint = " (it looks transposed: rows must be voxels)" if t.shape[1] == n_voxels else ""
        raise ValueError(f"templates have {t.shape[0]} voxels but the brain data has {n_voxels}{hint}")
    if not np.isfinite(t).all():
        raise ValueError("templates contain NaN or inf")
    names = [f"Network {n + 1}" for n in range(t.shape[1])] if names is None else [str(n) for n in names]
    if len(names) != t.shape[1]:
        raise ValueError(f"{len(names)} network names for {t.shape[1]} template columns")
    empty = [names[n] for n in range(t.shape[1]) if not (t[:, n] > 0).any()]
    if empty:
        raise ValueError(f"templates with no voxel > 0: {empty}")
    return t, names


def templates_from_labels(labels: np.ndarray, names: dict[int, str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Turn a per-voxel integer label vector (0 = no network) into a binary (voxel x network) template matrix."""
    lab = np.asarray(labels)
    if lab.ndim != 1 or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError("labels must be a 1-D integer array, one label per voxel, 0 for none")
    ids = [int(i) for i in np.unique(lab) if i != 0]
    if not ids:
        raise ValueError("labels hold no network (all 0)")
    names = names or {}
    return np.stack([lab == i for i in ids], axis=1).astype(float), [names.get(i, f"Network {i}") for i in ids]


def _zscore_rows(x: np.ndarray) -> np.ndarray:
    """Centre each row and scale it to unit norm (zero rows stay zero), so dot products are Pearson r."""
    z = x - x.mean(axis=-1, keepdims=True)
    n = np.linalg.norm(z, axis=-1, keepdims=True)
    return np.divide(z, n, out=np.zeros_like(z), where=n > 0)


@dataclass(frozen=True)
class NetworkMatch:
    """Atom x network similarity tables with permutation p-values and the resulting matches."""

    network_names: list[str]
    r: np.ndarray  # K x N Pearson r of t map vs template
    dice: np.ndarray  # K x N Dice of significant voxels vs template > 0
    p_r: np.ndarray  # K x N permutation p of r
    p_dice: np.ndarray  # K x N permutation p of Dice
    q_r: np.ndarray  # K x N p_r, FDR-adjusted across the K x N pairs
    q_dice: np.ndarray  # K x N p_dice, FDR-adjusted across the K x N pairs
    matches: np.ndarray  # K x N bool
    best: np.ndarray  # K, best-matching network by r among matches, -1 if none
    n_perm: int
    r_threshold: float
    p_threshold: float
    null: str = VOXEL_NULL  # how the null maps were made

    def atoms_per_network(self) -> dict[str, list[int]]:
        """For each network, the atoms whose best match it is."""
        return {name: np.flatnonzero(self.best == n).tolist() for n, name in enumerate(self.network_names)}


def network_similarity(
    t_maps: np.ndarray,
    significant: np.ndarray,
    templates: np.ndarray,
    names: Sequence[str] | None = None,
    voxel_mask: np.ndarray | None = None,
    n_perm: int = 1000,
    seed: int = 0,
    r_threshold: float = 0.2,
    p_threshold: float = 0.05,
    grid: np.ndarray | None = None,
) -> NetworkMatch:
    """Compare each atom's t map and significant voxels with each template, over voxels in `voxel_mask`.

    Null maps, n_perm in [1, 100000]: without `grid`, the voxels are shuffled (the same permutations for every atom
    and network); with `grid` (a 3-D bool mask whose True cells, in C order, are the voxels) they are smooth random
    fields as smooth as each atom's map, which keeps the spatial autocorrelation real maps have (see SPATIAL_NULL).
    Voxels of one network share signal, so the r test alone is anti-conservative; a match also needs the atom's
    FDR-significant voxels to overlap the template beyond chance (Dice p), which an atom without a map never does.
    K x N pairs are tested at once, so both p-values are FDR-adjusted across the pairs before the threshold.
    """
    t_maps = np.atleast_2d(np.asarray(t_maps, dtype=float))
    sig = np.atleast_2d(np.asarray(significant, dtype=bool))
    if sig.shape != t_maps.shape:
        raise ValueError(f"significance shape {sig.shape} differs from t-map shape {t_maps.shape}")
    tmpl, names = check_templates(templates, t_maps.shape[1], names)
    mask = np.isfinite(t_maps).all(axis=0) if voxel_mask is None else np.asarray(voxel_mask, dtype=bool)
    if mask.shape != (t_maps.shape[1],):
        raise ValueError(f"voxel mask has shape {mask.shape}, expected ({t_maps.shape[1]},)")
    if not 1 <= n_perm <= 100_000:
        raise ValueError(f"n_perm must be in [1, 100000], got {n_perm}")
    if grid is not None and int(np.count_nonzero(grid)) != t_maps.shape[1]:
        raise ValueError(f"the grid holds {int(np.count_nonzero(grid))} voxels but the maps have {t_maps.shape[1]}")
    m, s, tm = t_maps[:, mask], sig[:, mask], tmpl[mask]
    if not np.isfinite(m).all():
        raise ValueError("t maps hold NaN inside the voxel mask")
    flat = [names[n] for n in range(tm.shape[1]) if np.ptp(tm[:, n]) == 0]
    if flat:
        raise ValueError(f"templates constant over the usable voxels (correlation undefined): {flat}")
    mz, tz, tpos = _zscore_rows(m), _zscore_rows(tm.T).T, (tm > 0).astype(float)
    size = s.sum(axis=1)[:, None] + tpos.sum(axis=0)[None, :]
    r = mz @ tz
    dice = 2 * (s @ tpos) / size
    rng = np.random.default_rng(seed)
    if grid is None:
        exceed_r, exceed_d = _voxel_null(mz, s, tz, tpos, size, r, dice, n_perm, rng)
    else:
        exceed_r, exceed_d = _spatial_null(t_maps, s, tz, tpos, size, r, dice, n_perm, rng, np.asarray(grid, bool), mask)
    p_r, p_dice = (1 + exceed_r) / (1 + n_perm), (1 + exceed_d) / (1 + n_perm)
    q_r, q_dice = (false_discovery_control(p.ravel(), method="bh").reshape(p.shape) for p in (p_r, p_dice))
    matches = (r >= r_threshold) & (q_r <= p_threshold) & (q_dice <= p_threshold)
    best = np.where(matches.any(axis=1), np.argmax(np.where(matches, r, -np.inf), axis=1), -1)
    return NetworkMatch(names, r, dice, p_r, p_dice, q_r, q_dice, matches, best, n_perm, r_threshold, p_threshold,
                        VOXEL_NULL if grid is None else SPATIAL_NULL)


def _voxel_null(mz, s, tz, tpos, size, r, dice, n_perm, rng) -> tuple[np.ndarray, np.ndarray]:
    """Exceedance counts of r and Dice over voxel permutations (shared by all atoms and networks)."""
    exceed_r, exceed_d = np.zeros_like(r), np.zeros_like(dice)
    base = np.arange(mz.shape[1])
    chunk = max(1, 4_000_000 // mz.size)  # permutations per batch, bounding memory to a few tens of MB
    for start in range(0, n_perm, chunk):
        idx = rng.permuted(np.tile(base, (min(chunk, n_perm - start), 1)), axis=1)  # chunk x voxels
        exceed_r += (np.einsum("kcv,vn->kcn", mz[:, idx], tz) >= r[:, None, :] - 1e-12).sum(axis=1)
        exceed_d += (2 * np.einsum("kcv,vn->kcn", s[:, idx].astype(float), tpos) / size[:, None, :] >= dice[:, None, :] - 1e-12).sum(axis=1)
    return exceed_r, exceed_d


def map_smoothness(values: np.ndarray, grid: np.ndarray) -> float:
    """Gaussian kernel width (voxels) that gives a white field the map's mean neighbour correlation on the grid:
    neighbours of a field smoothed by sigma correlate exp(-1 / (4 sigma^2))."""
    vol = np.full(grid.shape, np.nan)
    vol[grid] = values
    corrs = []
    for axis in range(vol.ndim):
        a, b = np.moveaxis(vol, axis, 0)[1:].ravel(), np.moveaxis(vol, axis, 0)[:-1].ravel()
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() > 2 and np.ptp(a[ok]) > 0 and np.ptp(b[ok]) > 0:
            corrs.append(np.corrcoef(a[ok], b[ok])[0, 1])
    rho = float(np.clip(np.mean(corrs) if corrs else 0.0, 0.01, 0.99))
    return float(np.sqrt(-1.0 / (4.0 * np.log(rho))))


def _spatial_null(t_maps, s, tz, tpos, size, r, dice, n_perm, rng, grid, mask) -> tuple[np.ndarray, np.ndarray]:
    """Exceedance counts of r and Dice over smooth random fields matched to each atom's smoothness."""
    exceed_r, exceed_d = np.zeros_like(r), np.zeros_like(dice)
    sigmas = np.array([map_smoothness(np.where(mask, t, np.nan), grid) for t in t_maps])
    steps = np.round(sigmas / SMOOTHNESS_STEP) * SMOOTHNESS_STEP
    n_sig = s.sum(axis=1)
    for sigma in np.unique(steps):
        atoms = np.flatnonzero(steps == sigma)
        for _ in range(n_perm):
            field = gaussian_filter(rng.standard_normal(grid.shape), sigma, mode="reflect")[grid][mask]
            fz = _zscore_rows(field)
            exceed_r[atoms] += fz @ tz >= r[atoms] - 1e-12
            order = np.argsort(-field, kind="stable")
            for k in atoms:
                top = np.zeros(field.size)
                top[order[: n_sig[k]]] = 1.0
                exceed_d[k] += 2 * (top @ tpos) / size[k] >= dice[k] - 1e-12
    return exceed_r, exceed_d


def diversity(atoms: np.ndarray) -> float:
    """1 - mean |Pearson r| over pairs of atom time courses (NaN for fewer than two atoms)."""
    a = np.asarray(atoms, dtype=float)
    if a.shape[1] < 2:
        return float("nan")
    c = _zscore_rows(a.T) @ _zscore_rows(a.T).T
    return float(1.0 - np.abs(c[np.triu_indices(a.shape[1], 1)]).mean())


def consistency(match: NetworkMatch) -> float:
    """Share of atoms whose map matches exactly one network."""
    return float((match.matches.sum(axis=1) == 1).mean())


def effective_rank(atoms: np.ndarray) -> float:
    """Entropy-based effective rank of the atom matrix (Roy and Vetterli 2007)."""
    s = np.linalg.svd(np.asarray(atoms, dtype=float), compute_uv=False)
    p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def summary_measures(atoms: np.ndarray, match: NetworkMatch) -> dict[str, dict[str, float | str]]:
    """Diversity, consistency and effective rank, each with its formula."""
    return {
        "diversity": {"value": diversity(atoms), "formula": FORMULAS["diversity"]},
        "consistency": {"value": consistency(match), "formula": FORMULAS["consistency"]},
        "effective_rank": {"value": effective_rank(atoms), "formula": FORMULAS["effective_rank"]},
    }
