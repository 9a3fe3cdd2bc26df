"""Controls, and the tests of whether the model's atoms predict brain data beyond a control.

A control (the same neurons' context-free responses, word occurrences, an untrained model's responses) gets
exactly the model's procedure: the same standardisation, K, dictionary starts and selection. Three questions are
then asked of held-out BOLD, each with out-of-fold R^2 (blocked cross-validation, ridge, drift removed) averaged
over voxels:

- p_model: do the model's atoms predict the brain better than its mean?
- p_control: do the control's atoms?
- p_added: does the part of the model's atoms that the control cannot give add to the control? The control's side
  holds the control's atoms and, for a paired control (responses of the model's own neurons), the model's atoms
  read from the control's responses with the model's own loadings (`AtomModel.read_from`): what the model's atoms
  would be if its neurons responded as the control's do. Only the rest of the model's atoms, projected off that
  side, can add; a model whose neurons respond as the control's (the control re-fitted, a model whose neurons
  respond lexically) has no rest and is never called beyond it. A control on other columns (word occurrences)
  has only its atoms on its side: projecting the model's atoms on all its columns would let hundreds of word
  weights, fitted to the atoms themselves, imitate any smooth time course.

Each p compares a statistic with the same statistic on phase-randomised copies of the regressors in question,
projected and scaled alike, so the null has the same spectra, number of regressors and folds as the real
regressors (a per-fold shift of prediction error, which a bootstrap over volumes cannot see in a short recording,
is in the null too). The R^2 shown are honest (one penalty for all voxels, chosen inside the training folds); the
statistic is the out-of-fold error summed over the voxels scaled to equal sums of squares (computed on their
principal components: the same sum, at most as many columns as volumes) with the one penalty of the grid that
makes it least: optimistic, but scored alike for real and surrogate regressors, and cheap enough for hundreds.
"Beyond <control>" needs p_added and p_model at most alpha and both R^2 above zero: the model must also beat the
mean.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .atoms import AtomModel
from .drift import drift_basis, high_pass
from .encoding import BrainData, cross_validated_predictions
from .hrf import convolve_hrf
from .responses import pool_to_trs
from .ridge import best_penalty_errors, blocked_folds, cv_gap
from .surrogates import phase_randomise

__all__ = ["N_SURROGATES", "SAME_SPACE", "MEANINGS", "QUESTIONS", "lexical_responses", "non_control_share",
           "canonical_correlations", "compare_with_control"]

N_SURROGATES = 200
SAME_SPACE = 0.95  # model and control atoms whose smallest canonical correlation reaches this span the same space
NOTHING_OUTSIDE = 1e-6  # a rest of the model's regressors below this share of their norm is rounding, not signal
RANK_TOL = 1e-10  # singular values below this share of the largest do not count in a span
MEANINGS = {
    "beyond": "the model's neurons carry something the {name} control does not, and the brain data follow it",
    "control": "what the brain data follow here, the {name} control gives as well: no sign of organisation beyond "
               "{name}",
    "inconclusive": "the model's atoms predict the brain data, but this test cannot tell them from the {name} control",
    "no evidence": "nothing to conclude either way: more volumes or a stronger signal would be needed",
}
QUESTIONS = {
    "p_model": "do the model's atoms predict held-out brain data better than its mean?",
    "p_control": "does the {name} control predict it better than its mean?",
    "p_added_by_model": "does the part of the model's atoms that the {name} control cannot give add to the "
                        "control's prediction?",
}


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


def _span(x: np.ndarray) -> np.ndarray:
    """An orthonormal basis (time x rank) of the column space of x."""
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    return u[:, s > RANK_TOL * max(float(s.max(initial=0.0)), 1e-300)]


def non_control_share(model: AtomModel, responses: np.ndarray, control: np.ndarray, paired: bool) -> float:
    """Share of the model's scaled responses' sum of squares that the control does not carry: for a paired control
    what each neuron keeps after a least-squares fit of its control response (so an untrained model's other scale
    does not count), otherwise what is left after projecting on all of the control's responses."""
    x = (responses - responses.mean(axis=0)) / model.scales
    total = float((x * x).sum())
    if total == 0:
        return 0.0
    if paired:
        c = control - control.mean(axis=0)
        cc = (c * c).sum(axis=0)
        rest = x - c * np.divide((c * x).sum(axis=0), cc, out=np.zeros(cc.shape), where=cc > 0)
    else:
        basis = _span(control - control.mean(axis=0))
        rest = x - basis @ (basis.T @ x)
    return float((rest * rest).sum()) / total


def canonical_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Canonical correlations of two sets of time courses (columns), strongest first: 1 where they share a
    direction, so all near 1 means the two sets span nearly the same space."""
    qa, qb = _span(a - a.mean(axis=0)), _span(b - b.mean(axis=0))
    return np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), 0.0, 1.0)


class _Regressors:
    """HRF convolution, drift removal and scaling of time courses into ridge regressors, with the volumes' folds."""

    def __init__(self, n: int, tr: float) -> None:
        self.tr = tr
        self.drift = np.column_stack([np.full(n, 1 / np.sqrt(n)), drift_basis(n, tr)])  # and the mean
        self.folds = blocked_folds(n, gap=cv_gap(tr))

    def clean(self, x: np.ndarray) -> np.ndarray:
        """Drift and mean removed, columns scaled to unit standard deviation, as the encoding's (a column with
        nothing left is dropped)."""
        x = high_pass(x, self.drift)
        norm = np.linalg.norm(x, axis=0)
        keep = norm > RANK_TOL * max(float(norm.max(initial=0.0)), 1e-300)
        return x[:, keep] / norm[keep] * np.sqrt(len(x))

    def of(self, time_courses: np.ndarray) -> np.ndarray:
        """Regressors of time courses: HRF-convolved, then cleaned."""
        return self.clean(convolve_hrf(time_courses, self.tr))


def _honest_errors(x: np.ndarray, y: np.ndarray, tr: float) -> np.ndarray:
    """Out-of-fold squared error per voxel of nested-CV ridge on regressors x (intercept added), one penalty for
    all voxels chosen inside each training fold: per-voxel choices from short inner folds overfit often enough to
    make every design look worse than the mean."""
    pred = cross_validated_predictions(np.column_stack([x, np.ones(len(x))]), y, tr, "ridge", shared_penalty=True)
    return ((y - pred) ** 2).sum(axis=0)


def compare_with_control(
    model: AtomModel, responses: np.ndarray, control: AtomModel, control_responses: np.ndarray | None, brain: BrainData,
    tr: float, name: str = "lexical", paired: bool = False, alpha: float = 0.05, n_surrogates: int = N_SURROGATES,
    seed: int = 0, progress: Callable[[float, str], None] | None = None,
) -> dict:
    """Does the model predict held-out BOLD beyond the control? The three tests of the module docstring, a verdict
    in words, and what each p-value asks. `paired`: `control_responses` are the model's neurons' (else unused)."""
    if paired and (control_responses is None or np.shape(control_responses) != np.shape(responses)):
        raise ValueError("a paired control needs responses of the model's neurons, shaped as the model's")
    if n_surrogates < 1:
        raise ValueError(f"the tests need at least one surrogate, got {n_surrogates}")
    n = brain.data.shape[0]
    make = _Regressors(n, tr)
    y = high_pass(brain.data, make.drift[:, 1:])
    sst = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    sst = np.where(sst > 0, sst, 1.0)
    base = sum(((y[test] - y[train].mean(axis=0)) ** 2).sum(axis=0) for train, test in make.folds)
    # the p-values' statistic: out-of-fold error of the voxels scaled to unit sum of squares, on their principal
    # components (the same total with one penalty for all, at most as many columns as volumes)
    u, sv, _ = np.linalg.svd((y - y.mean(axis=0)) / np.sqrt(sst), full_matrices=False)
    components = u * sv
    rng = np.random.default_rng(seed)

    def surrogates(time_courses: np.ndarray, off: np.ndarray | None = None) -> np.ndarray:
        """Regressors of phase-randomised time courses (randomised before the HRF and the drift removal, as the
        real ones went through them; randomising the finished regressors is anti-conservative on slow noise),
        projected off `off` as the real ones were."""
        out = []
        for _ in range(n_surrogates):
            s = make.of(phase_randomise(time_courses, rng))
            out.append(s if off is None else make.clean(s - off @ (off.T @ s)))
        return np.stack(out)

    def p_value(real: np.ndarray, null: np.ndarray) -> float:
        errors = best_penalty_errors(np.concatenate([real[None], null]), components, make.folds)
        return float((1 + (errors[1:] <= errors[0]).sum()) / (1 + len(null)))

    c_reg, d_reg = make.of(control.atoms), make.of(model.atoms)
    if paired:  # the model's atoms and their twins, read alike from the model's and the control's responses
        read_courses = model.read_from(responses)
        side = np.column_stack([c_reg, make.of(model.read_from(control_responses))])
    else:  # the atoms themselves: a model fitted to the control's own responses has the control's atoms
        read_courses, side = model.atoms, c_reg
    reads = make.of(read_courses)
    side_space = _span(side)
    rest = reads - side_space @ (side_space.T @ reads)
    outside = np.linalg.norm(rest, axis=0) > NOTHING_OUTSIDE * np.sqrt(n)
    rest = make.clean(rest[:, outside])

    say = progress or (lambda fraction, message: None)
    say(0.0, "held-out prediction of the control's and the model's atoms")
    r2_control = float(((base - _honest_errors(c_reg, y, tr)) / sst).mean())
    r2_model = float(((base - _honest_errors(d_reg, y, tr)) / sst).mean())
    say(0.2, f"does the control predict the brain data? ({n_surrogates} phase-randomised copies)")
    p_control = p_value(c_reg, surrogates(control.atoms))
    say(0.45, f"does the model predict the brain data? ({n_surrogates} phase-randomised copies)")
    p_model = p_value(d_reg, surrogates(model.atoms))
    say(0.7, f"does the model add to the control? ({n_surrogates} phase-randomised copies)")
    if rest.shape[1]:
        side_errors = _honest_errors(side, y, tr)
        r2_added = float(((side_errors - _honest_errors(np.column_stack([side, rest]), y, tr)) / sst).mean())
        null = surrogates(read_courses[:, outside], side_space)
        p_added = p_value(np.column_stack([side, rest]), np.concatenate(
            [np.broadcast_to(side, (len(null), *side.shape)), null], axis=2))
    else:
        r2_added, p_added = 0.0, 1.0
    return _verdict(name, r2_control, r2_model, r2_added, p_control, p_model, p_added, alpha, n_surrogates,
                    int(rest.shape[1]), paired)


def _verdict(name: str, r2_control: float, r2_model: float, r2_added: float, p_control: float, p_model: float,
             p_added: float, alpha: float, n_surrogates: int, n_rest: int, paired: bool) -> dict:
    """The verdict code and sentence, the numbers behind it, and the question each p-value answers."""
    control_predicts = r2_control > 0 and p_control <= alpha
    model_predicts = r2_model > 0 and p_model <= alpha
    adds = r2_added > 0 and p_added <= alpha
    floor = 1 / (1 + n_surrogates)
    if adds and model_predicts:
        code, text = f"beyond {name}", (
            f"the model's atoms predict held-out brain data (R2 {r2_model:+.4f}, p = {p_model:.3g}), and their part "
            f"that the {name} control cannot give adds to the control's prediction (R2 {r2_added:+.4f}, "
            f"p = {p_added:.3g})")
    elif control_predicts:
        if not n_rest:
            rest = "model's atoms hold nothing the control cannot give"
        elif adds:  # the model's rest would add, but the model alone does not beat the mean: no finding
            rest = (f"part of the model's atoms it cannot give would add (R2 {r2_added:+.4f}, p = {p_added:.3g}), "
                    f"but the model's atoms themselves predict no better than the mean (p = {p_model:.3g})")
        else:
            rest = (f"part of the model's atoms it cannot give adds nothing significant (R2 {r2_added:+.4f}, "
                    f"p = {p_added:.3g})")
        code, text = name, (f"the {name} control predicts held-out brain data (R2 {r2_control:+.4f}, "
                            f"p = {p_control:.3g}) and the {rest}: the organisation is {name}")
    elif model_predicts:
        code, text = "inconclusive", (
            f"the model's atoms predict held-out brain data (R2 {r2_model:+.4f}, p = {p_model:.3g}) but their part "
            f"that the {name} control cannot give adds nothing significant (R2 {r2_added:+.4f}, "
            f"p = {p_added:.3g}), and the control itself does not predict (p = {p_control:.3g})")
    else:
        code, text = "no evidence", (
            f"neither the model's atoms (R2 {r2_model:+.4f}, p = {p_model:.3g}) nor the {name} control "
            f"(R2 {r2_control:+.4f}, p = {p_control:.3g}) predict held-out brain data better than its mean: no "
            "evidence either way" + (f" (the part of the model's atoms outside the control would add, p = "
                                     f"{p_added:.3g}, but a model that does not beat the mean is no finding)"
                                     if adds else ""))
    meaning = MEANINGS["beyond" if code.startswith("beyond") else "control" if code == name else code]
    return {
        "control": name,
        "verdict_code": code,
        "verdict": text,
        "meaning": meaning.format(name=name),
        "r2_control": r2_control,
        "r2_model": r2_model,
        "r2_added_by_model": r2_added,
        "p_control": p_control,
        "p_model": p_model,
        "p_added_by_model": p_added,
        "p_floor": floor,
        "model_adds": bool(adds and model_predicts),
        "model_regressors_outside_control": n_rest,
        "questions": {key: q.format(name=name) for key, q in QUESTIONS.items()},
        "test": (f"out-of-fold R2 of held-out brain data averaged over voxels (blocked CV, ridge, slow drift removed); "
                 f"each p against {n_surrogates} phase-randomised copies of the regressors tested (smallest possible "
                 f"p {floor:.2g}); the control's side holds its atoms"
                 + (" and the model's atoms read from the control's responses of the same neurons" if paired else "")),
    }
