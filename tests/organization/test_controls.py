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
