"""Dictionary learning: recovery at K = 8 and 16, SVD start vs random starts, stability, bad input."""
import numpy as np
import pytest

from brillm_core.organization.atoms import (Stability, atom_stability, fit_atoms, fit_best_atoms, learn_dictionary,
                                            match_atoms, standardise)
from brillm_core.organization.encoding import fit_encoding
from brillm_core.organization.pipeline import atom_recovery


@pytest.fixture(scope="module")
def fit8(full_sim):
    return fit_atoms(full_sim.responses, 8, seed=0)


def test_k8_recovers_atoms_and_subgroups(full_sim, fit8):
    rec = atom_recovery(full_sim, fit8)
    assert rec["atom_abs_r_min"] >= 0.95
    assert rec["subgroup_accuracy"] >= 0.95 and rec["subgroup_accuracy_one_to_one"] >= 0.95
    assert np.allclose(np.linalg.norm(fit8.atoms, axis=0), 1.0)
    assert 0.5 < fit8.r2 < 1.0
    assert (fit8.loadings == 0).mean() > 0.5  # sparse
    assert (fit8.loadings.sum(axis=1) >= 0).all()  # sign convention


@pytest.mark.slow
def test_k16_still_recovers_the_eight_atoms(full_sim):
    model = fit_atoms(full_sim.responses, 16, seed=0)
    rec = atom_recovery(full_sim, model)
    assert rec["k"] == 16 and rec["atom_abs_r_min"] >= 0.95
    assert rec["subgroup_accuracy"] >= 0.95
    # Extra atoms split true ones, so a joint GLM is collinear; separate models per atom still find the voxels.
    joint = fit_encoding(model.atoms, full_sim.bold, full_sim.tr)
    assert joint.vif.max() > 10
    separate = fit_encoding(model.atoms, full_sim.bold, full_sim.tr, joint=False)
    pairs = zip(rec["matched_true_atoms"], rec["matched_fitted_atoms"])
    dice = [2 * (separate.significant[f] & full_sim.coupled_mask[t]).sum()
            / (separate.significant[f].sum() + full_sim.coupled_mask[t].sum()) for t, f in pairs]
    assert np.mean(dice) >= 0.9 and min(dice) >= 0.8


def test_recovery_fails_on_time_shuffled_responses(full_sim):
    x = full_sim.responses[:, :800]
    shuffled = x[np.random.default_rng(0).permutation(x.shape[0])]
    assert match_atoms(full_sim.atoms, fit_atoms(x, 8, seed=0).atoms)[2].min() >= 0.95  # same columns, in order
    assert match_atoms(full_sim.atoms, fit_atoms(shuffled, 8, seed=0).atoms)[2].max() < 0.5


def test_subgroups_list_nonzero_loadings_strongest_first(fit8, full_sim):
    groups = fit8.subgroups()
    assert len(groups) == 8
    for g in groups:
        assert (g.loadings != 0).all() and (np.diff(np.abs(g.loadings)) <= 0).all()
        np.testing.assert_array_equal(g.loadings, fit8.loadings[g.atom, g.ans])
    assert sum(g.ans.size for g in groups) == np.count_nonzero(fit8.loadings)


def test_svd_start_escapes_the_local_minimum_a_random_start_falls_into(full_sim, fit8):
    stuck = fit_atoms(full_sim.responses, 8, seed=4, init="random")
    assert atom_recovery(full_sim, stuck)["atom_abs_r_min"] < 0.5  # seed 4 loses an atom on the default simulator
    assert fit8.init == "svd" and stuck.objective > 1.05 * fit8.objective
    st = atom_stability([fit8, stuck])
    assert st.chosen == "svd" and st.min_abs_r["seed 4"] < 0.5
    assert st.equally_good() == [] and st.stable  # a worse minimum is not an alternative answer


def test_stability_of_equally_good_starts(small_sim):
    best, st = fit_best_atoms(small_sim.responses, 4, seeds=(1, 2))
    assert set(st.objectives) == {"svd", "seed 1", "seed 2"} and best.objective == min(st.objectives.values())
    assert min(st.min_abs_r.values()) > 0.95 and st.stable and "lowest objective" in st.describe()
    split = Stability("svd", {"svd": 100.0, "seed 1": 100.5}, {"seed 1": 0.6}, {"seed 1": 0.2})
    assert split.equally_good() == ["seed 1"] and not split.stable
    with pytest.raises(ValueError, match="two"):
        atom_stability([best])
    assert fit_best_atoms(small_sim.responses, 4, seeds=())[1] is None


def test_match_atoms_finds_permutation_and_sign():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 4))
    rows, cols, r = match_atoms(a, -a[:, [2, 0, 3, 1]])
    assert cols[rows.tolist().index(0)] == 1 and np.allclose(r, 1.0)


def test_bad_input():
    x = np.random.default_rng(0).standard_normal((20, 10))
    with pytest.raises(ValueError, match="exceeds what 20 time points x 10 ANs allow"):
        fit_atoms(x, 11)
    with pytest.raises(ValueError, match="NaN"):
        fit_atoms(np.where(np.eye(20, 10) > 0, np.nan, x), 2)
    y = x.copy()
    y[:, 3:] = 1.0
    with pytest.raises(ValueError, match="3 ANs whose response varies"):
        fit_atoms(y, 4)
    with pytest.raises(ValueError, match="at least 1"):
        fit_atoms(x, 0)
    with pytest.raises(ValueError, match="time x ANs"):
        fit_atoms(x[0], 1)
    with pytest.raises(ValueError, match="init"):
        fit_atoms(x, 2, init="kmeans")


def _scikit_learn_fit(xs: np.ndarray, start: np.ndarray, alpha: float):
    """scikit-learn's DictionaryLearning (coordinate descent, one Lasso per sample) from the same start."""
    import warnings

    from sklearn.decomposition import DictionaryLearning
    from sklearn.exceptions import ConvergenceWarning

    model = DictionaryLearning(n_components=start.shape[0], alpha=alpha, max_iter=100, tol=1e-6, fit_algorithm="cd",
                               transform_algorithm="lasso_cd", dict_init=start, code_init=xs @ start.T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        code = model.fit_transform(xs)
    return model.components_, code, model.n_iter_


@pytest.mark.parametrize("k, start", [(4, "svd"), (6, 2), (5, "noise")])
def test_all_neurons_at_once_equals_scikit_learn(small_sim, k, start):
    """The vectorised dictionary learning is scikit-learn's algorithm: same atoms, codes and iterations (codes to
    scikit-learn's own Lasso tolerance, 1e-4, which moves the atoms as much; ours solve each code more tightly)."""
    x = np.random.default_rng(0).standard_normal((60, 200)) if start == "noise" else small_sim.responses
    xs = standardise(x)[0].T
    first = (np.linalg.svd(xs, full_matrices=False)[2][:k] if start != 2 else
             xs[np.random.default_rng(2).choice(xs.shape[0], k, replace=False)])
    first = first / np.linalg.norm(first, axis=1, keepdims=True)
    ours, code, n_iter = learn_dictionary(xs, first, 0.2, max_iter=100)
    theirs, their_code, their_iter = _scikit_learn_fit(xs, first, 0.2)
    assert n_iter == their_iter
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    np.testing.assert_allclose(code, their_code, atol=1e-4)


def test_a_units_scale_does_not_decide_the_atoms(small_sim):
    """Atoms of responses scaled per unit (channel): scaling a unit changes nothing, and one unit a million times
    larger than the rest and carrying something else (as BriLLM's energy channel does) does not take the atoms,
    where one scale for all lets it."""
    x, units = small_sim.responses, small_sim.an_units
    a = fit_atoms(x, 4, units=units)
    scaled = fit_atoms(x * np.where(units == 0, 1e6, 1.0), 4, units=units)
    assert match_atoms(a.atoms, scaled.atoms)[2].min() > 0.999
    np.testing.assert_allclose(scaled.scales / a.scales, np.where(units == 0, 1e6, 1.0), rtol=1e-9)
    loud = x.copy()
    loud[:, units == 0] = 1e6 * np.random.default_rng(0).standard_normal((x.shape[0], int((units == 0).sum())))
    assert match_atoms(small_sim.atoms, fit_atoms(loud, 4, units=units).atoms)[2].min() > 0.95
    assert match_atoms(small_sim.atoms, fit_atoms(loud, 4).atoms)[2].min() < 0.5
