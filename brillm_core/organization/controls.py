"""Null and baseline controls: lexical word-occurrence responses, phase-randomised atoms, comparison with a control."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats

from .responses import pool_to_trs

__all__ = ["lexical_responses", "phase_randomise", "compare_with_control"]


def lexical_responses(
    words: Sequence[str], onsets: Sequence[float], tr: float, n_tr: int, how: str = "sum", strict: bool = True
) -> tuple[np.ndarray, list[str]]:
    """One-hot word-occurrence responses pooled to TRs: (n_tr x vocabulary) and the vocabulary (first-seen order).

    Words are compared exactly as given (no lower-casing), so the caller decides what counts as the same word.
    """
    if len(words) != len(onsets):
        raise ValueError(f"{len(words)} words but {len(onsets)} onsets")
    vocab = list(dict.fromkeys(words))
    index = {w: i for i, w in enumerate(vocab)}
    onehot = np.zeros((len(words), len(vocab)))
    onehot[np.arange(len(words)), [index[w] for w in words]] = 1.0
    return pool_to_trs(onehot, np.asarray(onsets, dtype=float), tr, n_tr, how, strict), vocab


def phase_randomise(atoms: np.ndarray, seed: int = 0) -> np.ndarray:
    """Surrogate time courses with each atom's amplitude spectrum but random Fourier phases.

    The same random phase is added to a frequency in every atom (Prichard and Theiler 1994), so the surrogate
    atoms keep their cross-correlations as well; the mean (and the Nyquist term) are left unchanged.
    """
    a = np.asarray(atoms, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    n = a.shape[0]
    spectrum = np.fft.rfft(a, axis=0)
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi, spectrum.shape[0])
    phase[0] = 0.0
    if n % 2 == 0:
        phase[-1] = 0.0
    return np.fft.irfft(spectrum * np.exp(1j * phase)[:, None], n=n, axis=0)


def compare_with_control(model_r: np.ndarray, control_r: np.ndarray, name: str = "lexical", alpha: float = 0.05) -> dict:
    """Does the model predict held-out BOLD better than a control? One-sided Wilcoxon signed-rank over voxels.

    Voxels are not independent, so p is descriptive; the verdict says the organisation is explained by the
    control (for the lexical baseline: merely lexical) unless the model is significantly better.
    """
    m, c = np.asarray(model_r, dtype=float), np.asarray(control_r, dtype=float)
    if m.shape != c.shape:
        raise ValueError(f"model and control maps differ in shape: {m.shape} vs {c.shape}")
    ok = np.isfinite(m) & np.isfinite(c)
    diff = m[ok] - c[ok]
    p = float(stats.wilcoxon(diff, alternative="greater").pvalue) if np.any(diff != 0) else 1.0
    better = p <= alpha and float(np.median(diff)) > 0
    return {
        "control": name,
        "model_mean_r": float(m[ok].mean()),
        "control_mean_r": float(c[ok].mean()),
        "median_difference": float(np.median(diff)),
        "wilcoxon_p": p,
        "model_better": bool(better),
        "verdict": (
            f"the model's atoms predict held-out BOLD better than the {name} control"
            if better
            else f"the model's atoms predict held-out BOLD no better than the {name} control: "
            f"the organisation found is explained by the {name} control"
        ),
    }
