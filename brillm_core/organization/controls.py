"""Controls: word-occurrence responses, and the nested test of whether the model adds to a control.

A control wins when it should: the verdict compares out-of-fold (blocked cross-validated) predictions of held-out
BOLD by the control's atoms (C), the model's atoms (M) and both (C+M), each fitted by the same encoding model with
the same number of atoms, and tests the gains with a moving-block bootstrap over time (which keeps the dependence
between neighbouring volumes and between voxels, unlike a test over voxels).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .encoding import BrainData, cross_validated_predictions, design_matrix
from .responses import pool_to_trs
from .surrogates import block_bootstrap_means, phase_randomise

__all__ = ["N_BOOT", "BLOCK_SECONDS", "lexical_responses", "phase_randomise", "compare_with_control"]

N_BOOT = 2000
BLOCK_SECONDS = 32.0  # bootstrap blocks span the HRF's length, so one block holds a whole response


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


def _gains(y: np.ndarray, predictions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-volume squared error of each prediction, divided by each voxel's total sum of squares, voxel-averaged."""
    sst = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return {name: (((y - pred) ** 2) / sst).mean(axis=1) for name, pred in predictions.items()}


def compare_with_control(
    model_atoms: np.ndarray, control_atoms: np.ndarray, brain: BrainData, tr: float, name: str = "lexical",
    alpha: float = 0.05, n_boot: int = N_BOOT, seed: int = 0,
) -> dict:
    """Does the model add to a control in predicting held-out BOLD? Nested comparison with a block bootstrap.

    Every design is fitted by ridge with each voxel's penalty chosen by blocked CV inside the training volumes, so
    that voxels a design does not predict cost it almost nothing (OLS would lose R^2 there in proportion to its
    number of regressors, whatever the encoding method of the maps). Statistics are mean-over-voxels differences
    of out-of-fold R^2 (blocked CV): control vs the training mean,
    model vs the training mean, and control+model vs control. Each is a sum over volumes, so blocks of volumes are
    resampled; p = (1 + #{bootstrap difference - observed >= observed}) / (1 + n_boot). Verdict: "beyond <name>"
    when control+model beats the control; else "<name>" when the control predicts; else "inconclusive" when only
    the model predicts; else "no evidence" (neither predicts).
    """
    y = brain.data
    xm, xc = design_matrix(model_atoms, tr), design_matrix(control_atoms, tr)
    designs = {"base": np.ones((y.shape[0], 1)), "model": xm, "control": xc,
               "both": np.column_stack([xc[:, :-1], xm])}
    errors = _gains(y, {d: cross_validated_predictions(x, y, tr, "ridge") for d, x in designs.items()})
    per_volume = np.column_stack([errors["base"] - errors["control"], errors["base"] - errors["model"],
                                  errors["control"] - errors["both"]])
    observed = per_volume.sum(axis=0)
    block = int(math.ceil(BLOCK_SECONDS / tr))
    boot = block_bootstrap_means(per_volume, block, n_boot, seed) * y.shape[0]
    p = (1 + ((boot - observed) >= observed).sum(axis=0)) / (1 + n_boot)
    control_predicts, model_predicts, adds = (bool(observed[i] > 0 and p[i] <= alpha) for i in range(3))
    if adds:
        code, text = f"beyond {name}", (f"the model's atoms add to the {name} control's prediction of held-out BOLD "
                                        f"(R2 +{observed[2]:.4f}, p = {p[2]:.3g})")
    elif control_predicts:
        code, text = name, (f"the {name} control predicts held-out BOLD (R2 {observed[0]:+.4f}, p = {p[0]:.3g}) and "
                            f"the model's atoms add nothing significant (p = {p[2]:.3g}): the organisation is {name}")
    elif model_predicts:
        code, text = "inconclusive", (f"the model's atoms predict held-out BOLD (p = {p[1]:.3g}) but add nothing "
                                      f"significant to the {name} control (p = {p[2]:.3g})")
    else:
        code, text = "no evidence", (f"neither the model's atoms (p = {p[1]:.3g}) nor the {name} control "
                                     f"(p = {p[0]:.3g}) predict held-out BOLD: no evidence either way")
    return {
        "control": name,
        "verdict_code": code,
        "verdict": text,
        "r2_control": float(observed[0]),
        "r2_model": float(observed[1]),
        "r2_added_by_model": float(observed[2]),
        "p_control": float(p[0]),
        "p_model": float(p[1]),
        "p_added_by_model": float(p[2]),
        "model_adds": adds,
        "test": "out-of-fold R2 averaged over voxels (blocked CV, nested ridge); moving-block bootstrap over time, "
                f"blocks of {block} volumes, {n_boot} resamples",
    }
