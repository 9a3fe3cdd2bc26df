"""Controls: word-occurrence responses, context-free responses, and the three verdicts of the lexical control."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from brillm_core.organization.controls import lexical_responses
from brillm_core.organization.hrf import convolve_hrf
from brillm_core.organization.pipeline import run_organization
from brillm_core.organization.responses import context_free, node_gated_responses, pooling_matrix
from brillm_core.organization.simulate import simulate_noise

N_TR, TR, N_VOX, COUPLED = 200, 1.5, 300, 120


def test_lexical_by_hand():
    x, vocab = lexical_responses(["the", "cat", "the", "sat"], [0.2, 1.1, 2.5, 2.9], tr=2.0, n_tr=2)
    assert vocab == ["the", "cat", "sat"]
    np.testing.assert_array_equal(x, [[1, 1, 0], [1, 0, 1]])
    with pytest.raises(ValueError, match="onsets"):
        lexical_responses(["a"], [0.0, 1.0], 2.0, 2)


def test_context_free_by_hand():
    steps = np.array([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0], [5.0, 6.0]])
    np.testing.assert_array_equal(context_free(steps, np.array([7, 7, 2, 7])),
                                  [[3.0, 4.0], [3.0, 4.0], [10.0, 0.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="keys"):
        context_free(steps, np.array([1, 2]))


@pytest.fixture(scope="module")
def world():
    """A token stream whose node-gated outputs are each token's mean output plus a slow context signal."""
    rng = np.random.default_rng(0)
    n_steps, n_types, d = 700, 30, 6
    onsets = np.sort(rng.uniform(0, N_TR * TR, n_steps))
    ids = rng.choice(n_types, n_steps, p=np.arange(n_types, 0, -1) / np.arange(n_types, 0, -1).sum())
    context = gaussian_filter1d(rng.standard_normal((n_steps, 2)), 15, axis=0)
    context /= context.std(axis=0)
    outputs = rng.normal(0, 1, (n_types, d))[ids] + context @ rng.normal(0, 1.5, (2, d))
    pool = pooling_matrix(onsets, TR, N_TR, "sum", strict=True)
    model = np.asarray((pool @ node_gated_responses(ids, outputs).matrix).todense())
    lexical = np.asarray((pool @ node_gated_responses(ids, context_free(outputs, ids)).matrix).todense())
    slow = pool @ context  # the context signal per volume, which no token identity carries
    return model, lexical, slow


def _brain(signals: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """AR(1) noise plus HRF-convolved signals, each in its own voxel set (signal SD / noise SD 0.8); templates."""
    rng = np.random.default_rng(seed)
    bold = simulate_noise("ar1", N_TR, N_VOX, rng, 0.4)
    templates = np.zeros((N_VOX, max(signals.shape[1], 1)))
    per = COUPLED // max(signals.shape[1], 1)
    for j in range(signals.shape[1]):
        reg = convolve_hrf(signals[:, j], TR)
        bold[:, j * per:(j + 1) * per] += 0.8 * ((reg - reg.mean()) / reg.std())[:, None]
        templates[j * per:(j + 1) * per, j] = 1.0
    if not signals.shape[1]:
        templates[:COUPLED, 0] = 1.0
    return bold, templates


def _verdict(world, bold, templates) -> dict:
    model, lexical, _ = world
    report = run_organization(model, bold, templates, tr=TR, k=4, n_perm=20, stability_seeds=(), n_phase_null=0,
                              controls={"lexical": lexical}, paired=("lexical",))
    return report.controls["lexical"]


def test_lexical_by_construction_is_called_lexical(world):
    _, lexical, _ = world
    u = np.linalg.svd(lexical - lexical.mean(axis=0), full_matrices=False)[0]
    verdict = _verdict(world, *_brain(u[:, :3], 1))
    assert verdict["verdict_code"] == "lexical", verdict["verdict"]
    assert verdict["p_control"] <= 0.05 and verdict["p_added_by_model"] > 0.05


def test_brain_that_follows_no_one_is_no_evidence(world):
    verdict = _verdict(world, *_brain(np.zeros((N_TR, 0)), 2))
    assert verdict["verdict_code"] == "no evidence", verdict["verdict"]


def test_model_adding_context_is_beyond_lexical(world):
    _, _, slow = world
    verdict = _verdict(world, *_brain(slow, 3))
    assert verdict["verdict_code"] == "beyond lexical", verdict["verdict"]
    assert verdict["r2_added_by_model"] > 0 and verdict["p_added_by_model"] <= 0.05


def test_best_penalty_errors_by_hand():
    """The statistic's closed form equals fitting ridge fold by fold and summing squared test errors."""
    from brillm_core.organization.ridge import best_penalty_errors, blocked_folds, ridge_betas

    rng = np.random.default_rng(4)
    designs, y = rng.standard_normal((3, 60, 4)), rng.standard_normal((60, 7))
    folds, alphas = blocked_folds(60, gap=2), np.array([0.1, 10.0, 1000.0])
    got = best_penalty_errors(designs, y, folds, alphas)
    for x, value in zip(designs, got):
        by_alpha = []
        for a in alphas:
            err = 0.0
            for train, test in folds:
                beta = ridge_betas(x[train], y[train], np.full(7, a))
                pred = (x[test] - x[train].mean(axis=0)) @ beta + y[train].mean(axis=0)
                err += ((y[test] - pred) ** 2).sum()
            by_alpha.append(err)
        assert value == pytest.approx(min(by_alpha), rel=1e-9)


@pytest.mark.parametrize("brain_from", ["lexical", "context"])
def test_the_control_refitted_is_never_beyond_itself(world, brain_from):
    """A 'model' whose neurons respond as the control's (the control's own responses, re-fitted by the same
    procedure) has nothing outside the control: never beyond it, whatever the brain follows. (The nested bootstrap
    called this lexical brain 'beyond lexical', p = .049, with the model's atoms equal to the control's.)"""
    _, lexical, slow = world
    signals = np.linalg.svd(lexical - lexical.mean(axis=0), full_matrices=False)[0][:, 3:6] if brain_from == "lexical" \
        else slow
    bold, templates = _brain(signals, 0)
    report = run_organization(lexical, bold, templates, tr=TR, k=4, n_perm=20, stability_seeds=(1, 2),
                              n_phase_null=0, controls={"lexical": lexical}, paired=("lexical",))
    verdict = report.controls["lexical"]
    assert verdict["model_regressors_outside_control"] == 0 and verdict["p_added_by_model"] == 1.0
    assert not verdict["verdict_code"].startswith("beyond") and verdict["r2_added_by_model"] == 0.0
    assert min(verdict["canonical_correlations"]) > 0.999 and verdict["non_control_share"] < 1e-12
    assert any("span nearly the same space" in w for w in report.warnings)


@pytest.fixture(scope="module")
def bundled_story():
    """The bundled flagship checkpoint's responses to 300 volumes of text it wrote itself (sampled, seeded), with
    the words and their times: whatever numbers the bundled model holds, its own text is in its vocabulary."""
    from pathlib import Path

    from brillm_core import load_checkpoint
    from brillm_core.organization.checkpoints import model_text
    from brillm_core.organization.stimulus import stimulus_from_text, stimulus_responses, tokenize_stimulus

    checkpoint = load_checkpoint(Path(__file__).parents[2] / "sample_models" / "kjv-final", device="cpu")
    stimulus = stimulus_from_text(model_text(checkpoint, 1080), 2.5)  # 2.5 words/s over 300 volumes of 1.5 s
    responses = stimulus_responses(checkpoint.model, tokenize_stimulus(checkpoint.tokenizer, stimulus), TR, 300)
    return stimulus, responses


@pytest.mark.slow
@pytest.mark.parametrize("snr", [1.0, 2.0])
def test_a_lexical_brain_is_lexical_on_the_bundled_model(bundled_story, snr):
    """Brain data driven only by what each word is (log frequency, punctuation, length, five frequent words) are
    called lexical, not beyond lexical, at SNR 1 and 2."""
    from brillm_core.organization.simulate import lexical_brain

    stimulus, responses = bundled_story
    bold, templates, names = lexical_brain(stimulus.words, stimulus.onsets, TR, 300, snr=snr)
    report = run_organization(responses.matrix, bold, templates, names, tr=TR, k=8, n_perm=20, n_phase_null=0,
                              units=responses.units, controls={"lexical": responses.lexical}, paired=("lexical",))
    verdict = report.controls["lexical"]
    assert verdict["verdict_code"] == "lexical", verdict["verdict"]


@pytest.mark.slow
def test_short_complete_nulls_are_not_called_beyond():
    """Model, control and brain unrelated, 57 volumes (the page's default length) of strongly autocorrelated noise:
    the bootstrap over volumes called 7 of these 80 'beyond lexical' (p_added <= .05 in 8.8 %); the tests against
    phase-randomised copies hold their rate and almost never call a null beyond."""
    from scipy.ndimage import gaussian_filter1d

    beyond, added = 0, 0
    for seed in range(80):
        rng = np.random.default_rng(seed)
        model = gaussian_filter1d(rng.standard_normal((57, 60)), 2, axis=0) @ rng.standard_normal((60, 120))
        control = gaussian_filter1d(rng.standard_normal((57, 60)), 2, axis=0) @ rng.standard_normal((60, 120))
        bold = simulate_noise("ar1", 57, 100, rng, 0.85)
        report = run_organization(model, bold, np.repeat(np.eye(2), 50, axis=0), tr=TR, k=4, n_perm=10,
                                  stability_seeds=(), n_phase_null=0, n_surrogates=100, controls={"lexical": control})
        verdict = report.controls["lexical"]
        beyond += verdict["verdict_code"] == "beyond lexical"
        added += verdict["p_added_by_model"] <= 0.05
    assert beyond <= 2 and added <= 6, (beyond, added)


def test_no_beyond_unless_the_model_beats_the_mean():
    """The teaching page's numbers: the model's atoms (R2 -0.17, p = .998) and the control (R2 -0.30) predict worse
    than the mean, while the model's rest 'adds' (p = .0005): no evidence, said with both questions apart."""
    from brillm_core.organization.controls import _verdict

    verdict = _verdict("lexical", -0.30, -0.17, 0.08, 0.6, 0.998, 0.0005, 0.05, 2000, 3, True)
    assert verdict["verdict_code"] == "no evidence" and not verdict["model_adds"]
    assert "a model that does not beat the mean is no finding" in verdict["verdict"]
    assert set(verdict["questions"]) == {"p_model", "p_control", "p_added_by_model"}
    assert verdict["questions"]["p_model"] != verdict["questions"]["p_added_by_model"]


def test_a_rest_that_would_add_is_never_called_nothing_significant():
    """The control predicts and the model's rest adds, but the model alone does not beat the mean: the control's
    verdict, and the sentence says that the rest would add (it said "adds nothing significant (p = 0.0199)")."""
    from brillm_core.organization.controls import _verdict

    verdict = _verdict("untrained", 0.0087, 0.0021, 0.003, 0.0149, 0.31, 0.0199, 0.05, 200, 3, True)
    assert verdict["verdict_code"] == "untrained"
    assert "nothing significant" not in verdict["verdict"] and "would add (R2 +0.0030, p = 0.0199)" in verdict["verdict"]
    quiet = _verdict("untrained", 0.0087, 0.0021, -0.001, 0.0149, 0.31, 0.0199, 0.05, 200, 3, True)
    assert "adds nothing significant (R2 -0.0010, p = 0.0199)" in quiet["verdict"]
