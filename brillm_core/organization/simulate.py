"""Simulator with known atoms, sub-groups and couplings, so the method can be checked without fMRI data.

The defaults generate data exactly as the method assumes (one HRF, AR(1) noise, independent voxels, templates equal
to the coupled sets, words independent of atoms, atoms that wrap around like the phase-randomised surrogates,
neurons that respond at every volume): recovery there shows that the code runs. Each departure real recordings
and models have is a parameter, and `HARD` combines them, so that the method can be seen to fail where it does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d
from scipy.signal import lfilter

from .drift import drift_basis, high_pass
from .hrf import convolve_hrf
from .responses import context_free, pool_to_trs

__all__ = ["NETWORK_NAMES", "NOISE_KINDS", "ATOM_EDGES", "AR2_COEFFICIENTS", "HARD", "SimulatedData", "simulate",
           "simulate_noise", "LEXICAL_FEATURES", "lexical_brain"]

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
NOISE_KINDS = ("ar1", "ar2", "pink")
ATOM_EDGES = ("wrap", "open")  # smoothing of the true atoms: circular (as phase-randomised surrogates are) or not
AR2_COEFFICIENTS = (0.6, 0.25)  # a persistent AR(2) (roots 0.88 and -0.28) that AR(1) whitening leaves coloured
CANONICAL_PEAK = 5.0  # seconds: where the fitted (canonical) HRF peaks
LEXICAL_WORDS_PER_ATOM = 3  # word types whose occurrences drive a lexically driven atom
LEXICAL_FEATURES = ("log frequency", "punctuation", "word length")  # then the five most frequent words
HARD = {  # the --hard preset: every departure at once, each at a level real recordings reach
    "an_noise": 1.0,  # twice the default neuron noise
    "coupling_snr": (0.2, 0.5),
    "noise": "pink",
    "hrf_peak": (4.0, 8.0),
    "atom_correlation": 0.3,
    "smoothness": 6.0,
    "spatial_smoothness": 1.5,
    "template_overlap": 0.6,
    "lexical_drive": 0.5,
    "atom_edges": "open",
    "word_gated": True,
}


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
    grid_mask: np.ndarray | None = None  # 3-D bool: where the voxels lie on a grid (spatially smooth data only)
    settings: dict | None = None  # the departures from the method's assumptions used
    lexical: np.ndarray | None = None  # word-gated neurons only: each neuron's context-free responses (time x ANs)

    @property
    def null_mask(self) -> np.ndarray:
        """Voxels coupled to no atom."""
        return ~self.coupled_mask.any(axis=0)


def simulate_noise(kind: str, n_tr: int, n_voxels: int, rng: np.random.Generator, rho: float = 0.3) -> np.ndarray:
    """Unit-variance noise (time x voxels): AR(1) with coefficient rho, AR(2) with `AR2_COEFFICIENTS`, or pink
    (power proportional to 1/f, drawn in the Fourier domain over 4 n_tr volumes and cut, so it is not periodic)."""
    if kind == "pink":
        m = 4 * n_tr
        f = np.fft.rfftfreq(m)
        amplitude = np.zeros_like(f)
        amplitude[1:] = f[1:] ** -0.5
        spectrum = amplitude[:, None] * (rng.standard_normal((f.size, n_voxels)) + 1j * rng.standard_normal((f.size, n_voxels)))
        x = np.fft.irfft(spectrum, n=m, axis=0)[:n_tr]
        return x / x.std()
    if kind == "ar1":
        if not 0 <= rho < 1:
            raise ValueError(f"noise_rho must be in [0, 1), got {rho}")
        phi = np.array([rho])
    elif kind == "ar2":
        phi = np.array(AR2_COEFFICIENTS)
    else:
        raise ValueError(f"noise must be one of {NOISE_KINDS}, got {kind!r}")
    burn = 200  # volumes discarded so that the series starts in its stationary state
    x = lfilter([1.0], np.r_[1.0, -phi], rng.standard_normal((n_tr + burn, n_voxels)), axis=0)[burn:]
    return x / x.std()


def _grid(n_voxels: int) -> np.ndarray:
    """A cubic grid's mask holding the first n_voxels grid points in C order."""
    side = math.ceil(n_voxels ** (1 / 3))
    mask = np.zeros(side**3, dtype=bool)
    mask[:n_voxels] = True
    return mask.reshape(side, side, side)


def _smooth_on_grid(values: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing (sigma in voxels) of (rows x voxels) values laid on the grid, rescaled to unit SD overall."""
    out = np.empty_like(values)
    vol = np.zeros(mask.shape)
    for i, row in enumerate(values):
        vol[mask] = row
        out[i] = gaussian_filter(vol, sigma, mode="constant")[mask]
    return out / out.std()


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
    noise: str = "ar1",
    noise_rho: float = 0.3,
    hrf_peak: tuple[float, float] = (CANONICAL_PEAK, CANONICAL_PEAK),
    atom_correlation: float = 0.0,
    spatial_smoothness: float = 0.0,
    template_overlap: float = 1.0,
    lexical_drive: float = 0.0,
    atom_edges: str = "wrap",
    word_gated: bool = False,
    word_rate: float = 2.5,
    seed: int = 0,
) -> SimulatedData:
    """Generate the shared page's ground truth: smooth atoms, AN sub-groups, coupled voxels and noise.

    Atoms are Gaussian-smoothed white noise (`smoothness` in TRs; `atom_edges` "wrap" smooths circularly, as the
    phase-randomised surrogates are, "open" does not) freed of what the encoding removes as drift (cosines of
    periods over 128 s), centred and unit-norm; `atom_correlation` mixes
    in a shared time course so that atom pairs correlate about that much; `lexical_drive` makes the first half of
    the atoms that share of their variance from the occurrences of `LEXICAL_WORDS_PER_ATOM` word types each. Each
    AN loads U(0.5, 1.5) on one atom, plus U(0.2, 0.5) on a second atom for `secondary_fraction` of ANs, with white
    noise of total norm `an_noise`; with `word_gated` each AN belongs to a node (a word) and responds only when its
    word is heard, with its loadings on the atoms at that moment plus noise, as BriLLM's node-gated neurons do
    (their context-free responses, each word's mean, are then `lexical`). Voxel v coupled to atom k gets
    BOLD = c * conv(atom k, HRF_v) with c set so the signal's SD over the noise's SD is U(coupling_snr); HRF_v peaks
    at U(hrf_peak) seconds (the fitted one at 5 s).
    Noise (`noise`, see `simulate_noise`) has unit variance. With `spatial_smoothness` > 0 (voxels) the voxels lie on
    a grid, coupled sets are blobs of smooth random fields and the noise is spatially smooth too. Templates keep
    `template_overlap` of each coupled set and fill the rest with other voxels.
    """
    n_ans = n_nodes * units_per_node
    if k_true * voxels_per_atom > n_voxels:
        raise ValueError(f"{k_true} atoms x {voxels_per_atom} coupled voxels exceed {n_voxels} voxels")
    for name, value, lo, hi in (("atom_correlation", atom_correlation, 0, 0.99), ("lexical_drive", lexical_drive, 0, 1),
                                ("template_overlap", template_overlap, 0.01, 1), ("an_noise", an_noise, 0, 1e6)):
        if not lo <= value <= hi:
            raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    if not 1 <= hrf_peak[0] <= hrf_peak[1] <= 20:
        raise ValueError(f"hrf_peak must be a range of seconds within [1, 20], got {hrf_peak}")
    if atom_edges not in ATOM_EDGES:
        raise ValueError(f"atom_edges must be one of {ATOM_EDGES}, got {atom_edges!r}")
    if not 0 <= coupling_snr[0] <= coupling_snr[1]:
        raise ValueError(f"coupling_snr must be a range low <= high of non-negative numbers, got {coupling_snr}")
    rng = np.random.default_rng(seed)

    node_names = [f"word{v:03d}" for v in range(n_nodes)]
    n_words = int(n_tr * tr * word_rate)
    onsets = np.sort(rng.uniform(0.0, n_tr * tr, n_words))
    word_ids = rng.integers(0, n_nodes, n_words)

    mode = "wrap" if atom_edges == "wrap" else "reflect"
    drift = np.column_stack([np.ones(n_tr) / np.sqrt(n_tr), drift_basis(n_tr, tr)])

    def smooth(shape: tuple[int, ...]) -> np.ndarray:
        """Smoothed white noise without what the encoding removes as drift (it could not be told from drift)."""
        x = high_pass(gaussian_filter1d(rng.standard_normal(shape), smoothness, axis=0, mode=mode), drift)
        return x / x.std(axis=0)

    atoms = smooth((n_tr, k_true))
    if atom_correlation > 0:
        atoms = np.sqrt(1 - atom_correlation) * atoms + np.sqrt(atom_correlation) * smooth((n_tr, 1))
    if lexical_drive > 0:
        for k in range((k_true + 1) // 2):
            chosen = rng.choice(n_nodes, LEXICAL_WORDS_PER_ATOM, replace=False)
            counts = pool_to_trs(np.isin(word_ids, chosen)[:, None].astype(float), onsets, tr, n_tr)[:, 0]
            counts = (counts - counts.mean()) / counts.std()
            atoms[:, k] = np.sqrt(1 - lexical_drive) * atoms[:, k] + np.sqrt(lexical_drive) * counts
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
    lexical = None
    if word_gated:
        heard = (cols // units_per_node)[None, :] == word_ids[:, None]  # words x ANs: the AN's word is heard
        volume = np.minimum((onsets / tr).astype(int), n_tr - 1)
        steps = heard * (atoms[volume] @ loadings + rng.standard_normal((n_words, n_ans)) * an_noise / np.sqrt(n_tr))
        responses = pool_to_trs(steps, onsets, tr, n_tr)
        lexical = pool_to_trs(context_free(steps, word_ids), onsets, tr, n_tr)
    else:
        responses = atoms @ loadings + rng.standard_normal((n_tr, n_ans)) * an_noise / np.sqrt(n_tr)

    grid = _grid(n_voxels) if spatial_smoothness > 0 else None
    coupled = np.zeros((k_true, n_voxels), dtype=bool)
    if grid is None:
        order = rng.permutation(n_voxels)
        for k in range(k_true):
            coupled[k, order[k * voxels_per_atom : (k + 1) * voxels_per_atom]] = True
    else:
        fields = _smooth_on_grid(rng.standard_normal((k_true, n_voxels)), grid, spatial_smoothness)
        free = np.ones(n_voxels, dtype=bool)
        for k in range(k_true):
            top = np.argsort(-np.where(free, fields[k], -np.inf), kind="stable")[:voxels_per_atom]
            coupled[k, top] = True
            free[top] = False

    shifts = np.round(rng.uniform(*hrf_peak, n_voxels) * 4) / 4 - CANONICAL_PEAK  # quarter-second bins
    couplings = np.zeros((k_true, n_voxels))
    signal = np.zeros((n_tr, n_voxels))
    for shift in np.unique(shifts):
        vox = np.flatnonzero(shifts == shift)
        regressors = convolve_hrf(atoms, tr, shift)
        snr = rng.uniform(*coupling_snr, (k_true, vox.size)) * coupled[:, vox]
        couplings[:, vox] = snr / regressors.std(axis=0)[:, None]
        signal[:, vox] = regressors @ couplings[:, vox]
    noise_values = simulate_noise(noise, n_tr, n_voxels, rng, noise_rho)
    if grid is not None:
        noise_values = _smooth_on_grid(noise_values, grid, spatial_smoothness)
    bold = signal + noise_values

    templates = coupled.T.astype(float)
    if template_overlap < 1:
        for k in range(k_true):
            members = np.flatnonzero(coupled[k])
            n_swap = int(round((1 - template_overlap) * members.size))
            templates[rng.choice(members, n_swap, replace=False), k] = 0.0
            templates[rng.choice(np.flatnonzero(~coupled[k]), n_swap, replace=False), k] = 1.0

    names = [NETWORK_NAMES[k] if k < len(NETWORK_NAMES) else f"Network {k + 1}" for k in range(k_true)]
    settings = {"an_noise": an_noise, "coupling_snr": list(coupling_snr), "noise": noise, "noise_rho": noise_rho,
                "hrf_peak": list(hrf_peak), "atom_correlation": atom_correlation, "smoothness": smoothness,
                "spatial_smoothness": spatial_smoothness, "template_overlap": template_overlap,
                "lexical_drive": lexical_drive, "atom_edges": atom_edges, "word_gated": word_gated}
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
        templates=templates,
        network_names=names,
        words=[node_names[i] for i in word_ids],
        onsets=onsets,
        grid_mask=grid,
        settings=settings,
        lexical=lexical,
    )


def lexical_brain(words: Sequence[str], onsets: np.ndarray, tr: float, n_tr: int, snr: float = 1.0,
                  voxels_per_signal: int = 150, noise_rho: float = 0.3, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Brain data driven only by what each word is, never by its context: (bold, templates, signal names).

    Eight signals per word, summed in each volume: its log frequency in the stimulus, whether it carries
    punctuation, its length, and the occurrences of the five most frequent words. Each signal, HRF-convolved and
    standardised, drives `voxels_per_signal` voxels at signal SD / noise SD = snr over AR(1) noise; the templates
    are those voxel sets. A model whose organisation is lexical must be called lexical on it.
    """
    w = [str(x) for x in words]
    if len(w) != len(onsets):
        raise ValueError(f"{len(w)} words but {len(onsets)} onsets")
    counts: dict[str, int] = {}
    for x in w:
        counts[x] = counts.get(x, 0) + 1
    frequent = sorted(counts, key=lambda x: (-counts[x], x))[:5]
    per_word = np.column_stack([
        [np.log(counts[x] / len(w)) for x in w],
        [float(any(not c.isalnum() for c in x)) for x in w],
        [float(len(x)) for x in w],
        *[[float(x == f) for x in w] for f in frequent],
    ])
    signals = convolve_hrf(pool_to_trs(per_word, np.asarray(onsets, dtype=float), tr, n_tr), tr)
    sd = signals.std(axis=0)
    signals = (signals - signals.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    rng = np.random.default_rng(seed)
    n_signals = signals.shape[1]
    bold = simulate_noise("ar1", n_tr, n_signals * voxels_per_signal, rng, noise_rho)
    templates = np.zeros((n_signals * voxels_per_signal, n_signals))
    for k in range(n_signals):
        cols = slice(k * voxels_per_signal, (k + 1) * voxels_per_signal)
        bold[:, cols] += snr * signals[:, [k]]
        templates[cols, k] = 1.0
    return bold, templates, [*LEXICAL_FEATURES, *(f"word '{f}'" for f in frequent)]
