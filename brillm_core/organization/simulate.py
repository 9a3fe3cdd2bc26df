"""Simulator with known atoms, sub-groups and couplings, so the method can be checked without fMRI data."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .hrf import convolve_hrf

__all__ = ["NETWORK_NAMES", "SimulatedData", "simulate"]

NETWORK_NAMES = (
    "Auditory",
    "Language",
    "Default mode",
    "Visual",
    "Somatomotor",
    "Dorsal attention",
    "Ventral attention",
    "Frontoparietal control",
)


@dataclass(frozen=True)
class SimulatedData:
    """Simulated stimulus, AN responses, BOLD and templates together with the truth that generated them."""

    tr: float
    atoms: np.ndarray  # time x K_true, zero-mean unit-norm columns
    loadings: np.ndarray  # K_true x ANs
    an_primary: np.ndarray  # ANs, the atom each AN mainly loads on
    an_secondary: np.ndarray  # ANs, the secondary atom or -1
    an_nodes: np.ndarray  # ANs, node id of each AN
    an_units: np.ndarray  # ANs, unit index inside its node
    node_names: list[str]
    responses: np.ndarray  # time x ANs
    couplings: np.ndarray  # K_true x voxels
    coupled_mask: np.ndarray  # K_true x voxels, bool
    bold: np.ndarray  # time x voxels
    templates: np.ndarray  # voxels x networks (one network per atom)
    network_names: list[str]
    words: list[str]
    onsets: np.ndarray  # seconds

    @property
    def null_mask(self) -> np.ndarray:
        """Voxels coupled to no atom."""
        return ~self.coupled_mask.any(axis=0)


def simulate(
    n_tr: int = 300,
    tr: float = 1.5,
    k_true: int = 8,
    n_nodes: int = 100,
    units_per_node: int = 32,
    n_voxels: int = 4000,
    voxels_per_atom: int = 250,
    secondary_fraction: float = 0.3,
    smoothness: float = 3.0,
    an_noise: float = 0.5,
    coupling_snr: tuple[float, float] = (0.35, 0.7),
    noise_rho: float = 0.3,
    word_rate: float = 2.5,
    seed: int = 0,
) -> SimulatedData:
    """Generate the shared page's ground truth: smooth atoms, AN sub-groups, coupled voxels and AR(1) noise.

    Atoms are Gaussian-smoothed white noise (`smoothness` in TRs), centred and unit-norm. Each AN loads
    U(0.5, 1.5) on one atom, plus U(0.2, 0.5) on a second atom for `secondary_fraction` of ANs, with white
    noise of total norm `an_noise`. Voxel v coupled to atom k gets BOLD = c * conv(atom k) with c set so the
    signal's SD over the noise's SD is U(coupling_snr); noise is AR(1) with unit variance.
    """
    n_ans = n_nodes * units_per_node
    if k_true * voxels_per_atom > n_voxels:
        raise ValueError(f"{k_true} atoms x {voxels_per_atom} coupled voxels exceed {n_voxels} voxels")
    if not 0 <= noise_rho < 1:
        raise ValueError(f"noise_rho must be in [0, 1), got {noise_rho}")
    rng = np.random.default_rng(seed)

    atoms = gaussian_filter1d(rng.standard_normal((n_tr, k_true)), smoothness, axis=0, mode="wrap")
    atoms -= atoms.mean(axis=0)
    atoms /= np.linalg.norm(atoms, axis=0)

    cols = np.arange(n_ans)
    primary = rng.integers(0, k_true, n_ans)
    loadings = np.zeros((k_true, n_ans))
    loadings[primary, cols] = rng.uniform(0.5, 1.5, n_ans)
    secondary = np.full(n_ans, -1)
    has_second = rng.random(n_ans) < secondary_fraction
    if k_true > 1:
        secondary[has_second] = (primary[has_second] + rng.integers(1, k_true, has_second.sum())) % k_true
        loadings[secondary[has_second], cols[has_second]] = rng.uniform(0.2, 0.5, has_second.sum())
    responses = atoms @ loadings + rng.standard_normal((n_tr, n_ans)) * an_noise / np.sqrt(n_tr)

    regressors = convolve_hrf(atoms, tr)
    order = rng.permutation(n_voxels)
    coupled = np.zeros((k_true, n_voxels), dtype=bool)
    couplings = np.zeros((k_true, n_voxels))
    for k in range(k_true):
        vox = order[k * voxels_per_atom : (k + 1) * voxels_per_atom]
        coupled[k, vox] = True
        couplings[k, vox] = rng.uniform(*coupling_snr, voxels_per_atom) / regressors[:, k].std()
    innovations = rng.standard_normal((n_tr, n_voxels)) * np.sqrt(1 - noise_rho**2)
    noise = np.empty_like(innovations)
    noise[0] = rng.standard_normal(n_voxels)
    for t in range(1, n_tr):
        noise[t] = noise_rho * noise[t - 1] + innovations[t]
    bold = regressors @ couplings + noise

    names = [NETWORK_NAMES[k] if k < len(NETWORK_NAMES) else f"Network {k + 1}" for k in range(k_true)]
    node_names = [f"word{v:03d}" for v in range(n_nodes)]
    n_words = int(n_tr * tr * word_rate)
    onsets = np.sort(rng.uniform(0.0, n_tr * tr, n_words))
    words = [node_names[i] for i in rng.integers(0, n_nodes, n_words)]
    return SimulatedData(
        tr=tr,
        atoms=atoms,
        loadings=loadings,
        an_primary=primary,
        an_secondary=secondary,
        an_nodes=cols // units_per_node,
        an_units=cols % units_per_node,
        node_names=node_names,
        responses=responses,
        couplings=couplings,
        coupled_mask=coupled,
        bold=bold,
        templates=coupled.T.astype(float),
        network_names=names,
        words=words,
        onsets=onsets,
    )
