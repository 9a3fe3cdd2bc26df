"""Encoding: AR(p) noise model by hand, calibration on complete nulls, blocked CV, OLS vs linregress, FDR, brain input."""
import numpy as np
import pytest
from scipy import stats

from scipy.linalg import toeplitz
from sklearn.linear_model import RidgeCV

from brillm_core.organization.encoding import design_matrix, nuisance_matrix, fdr_bh, fit_encoding, held_out_prediction, load_brain, prepare_brain
from brillm_core.organization.hrf import convolve_hrf
from brillm_core.organization.noise import ar_autocorrelation, fit_noise_model, whiten, yule_walker
from brillm_core.organization.ridge import RIDGE_ALPHAS, choose_alphas, cv_gap
from brillm_core.organization.simulate import simulate_noise


def _smooth_atoms(n, k, seed):
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(np.random.default_rng(seed).standard_normal((n, k)), 3, axis=0)


def test_ar_autocorrelation_by_hand():
    np.testing.assert_allclose(ar_autocorrelation([0.5], 4), [1, 0.5, 0.25, 0.125])
    rho = ar_autocorrelation([0.6, 0.25], 6)
    assert rho[1] == pytest.approx(0.6 / (1 - 0.25))  # Yule-Walker for AR(2)
    np.testing.assert_allclose(rho[2:], 0.6 * rho[1:-1] + 0.25 * rho[:-2])
    phi, innovation = yule_walker(rho, 2)
    np.testing.assert_allclose(phi, [0.6, 0.25])
    assert innovation == pytest.approx(1 - 0.6 * rho[1] - 0.25 * rho[2])


def test_whiten_turns_ar_covariance_white():
    n, phi = 40, np.array([0.6, 0.25])
    cov = toeplitz(ar_autocorrelation(phi, n))
    w = whiten(np.eye(n), phi)  # (n-2) x n filter rows
    _, innovation = yule_walker(ar_autocorrelation(phi, 3), 2)
    np.testing.assert_allclose(w @ cov @ w.T, innovation * np.eye(n - 2), atol=1e-10)


def test_pooled_noise_model_recovers_ar2():
    rng = np.random.default_rng(0)
    x = design_matrix(_smooth_atoms(300, 8, 1), 1.5)
    y = simulate_noise("ar2", 300, 3000, rng)
    model = fit_noise_model(y - x @ np.linalg.lstsq(x, y, rcond=None)[0], x)
    assert model.order >= 2
    np.testing.assert_allclose(model.pooled[:2], [0.6, 0.25], atol=0.05)
    assert model.shrinkage.max() < 0.2  # homogeneous noise: voxels take (almost) the pooled model
    noise_lag1 = ((y[1:] * y[:-1]).sum(0) / (y * y).sum(0)).mean()  # of the noise itself, not of the residuals
    assert abs(ar_autocorrelation(model.pooled, 2)[1] - noise_lag1) < 0.02


def test_heterogeneous_noise_keeps_each_voxels_own_coefficient():
    rng = np.random.default_rng(1)
    x = design_matrix(_smooth_atoms(300, 4, 2), 1.5)
    y = np.hstack([simulate_noise("ar1", 300, 1000, rng, 0.1), simulate_noise("ar1", 300, 1000, rng, 0.8)])
    model = fit_noise_model(y - x @ np.linalg.lstsq(x, y, rcond=None)[0], x, max_order=1)
    assert model.shrinkage[0] > 0.5
    assert abs(model.voxel[:1000, 0].mean() - 0.1) < 0.08 and abs(model.voxel[1000:, 0].mean() - 0.8) < 0.08


def test_prewhitened_t_equals_whitened_ols_by_hand():
    rng = np.random.default_rng(2)
    atoms = _smooth_atoms(120, 2, 3)
    y = 0.5 * convolve_hrf(atoms, 2.0)[:, :1] + simulate_noise("ar2", 120, 5, rng)
    enc = fit_encoding(atoms, y, tr=2.0, method="ols_ar")
    drift = nuisance_matrix(120, 2.0)[:, :-1]
    assert enc.drift_regressors == drift.shape[1] == 3  # cosines of periods 480, 240 and 160 s (over 128 s)
    # SPM's order: data and design filtered (projected off the drift), then whitened
    x = design_matrix(atoms, 2.0)
    x[:, :-1] -= drift @ (drift.T @ x[:, :-1])
    y = y - drift @ (drift.T @ y)
    noise = fit_noise_model(y - x @ np.linalg.lstsq(x, y, rcond=None)[0], np.column_stack([x, drift]))
    assert enc.ar_order == [noise.order] and noise.order >= 1
    for v in range(5):
        xw, yw = whiten(x, noise.voxel[v]), whiten(y[:, v], noise.voxel[v])
        lr = np.linalg.lstsq(xw, yw, rcond=None)
        r = yw - xw @ lr[0]
        dof = xw.shape[0] - xw.shape[1] - drift.shape[1]
        se = np.sqrt(r @ r / dof * np.diag(np.linalg.inv(xw.T @ xw)))
        np.testing.assert_allclose(enc.t[:, v], (lr[0] / se)[:2], rtol=1e-8)
        np.testing.assert_allclose(enc.p[:, v], 2 * stats.t.sf(np.abs(lr[0] / se)[:2], dof), rtol=1e-6)


NULLS = [("ar1", 0.3), ("ar1", 0.6), ("ar1", 0.85), ("ar2", 0.0), ("pink", 0.0)]


@pytest.mark.parametrize("kind, rho", NULLS)
def test_complete_null_holds_the_nominal_rate(kind, rho):
    """No coupling at all, 300 volumes: p < .05 in 5 +/- 1.5 % of (atom, voxel) pairs, FDR finds nothing in most atoms."""
    rng = np.random.default_rng(10)
    atoms = _smooth_atoms(300, 8, 11)
    y = simulate_noise(kind, 300, 2000, rng, rho)
    enc = fit_encoding(atoms, y, 1.5, method="ols_ar")
    assert 0.035 <= (enc.p < 0.05).mean() <= 0.065
    assert enc.significant.any(axis=1).sum() <= 2
    if kind == "ar1" and rho >= 0.6:
        plain = fit_encoding(atoms, y, 1.5, method="ols")
        assert (plain.p < 0.05).mean() > 0.2  # the same data break plain OLS: the test can fail


@pytest.mark.slow
@pytest.mark.parametrize("kind, rho", NULLS)
def test_complete_null_holds_the_nominal_rate_with_ridge(kind, rho):
    rng = np.random.default_rng(20)
    atoms = _smooth_atoms(300, 8, 21)
    y = simulate_noise(kind, 300, 600, rng, rho)
    enc = fit_encoding(atoms, y, 1.5, method="ridge")
    assert 0.035 <= (enc.p < 0.05).mean() <= 0.065
    assert enc.significant.any(axis=1).sum() <= 2


def test_blocked_cv_does_not_leak_across_neighbouring_volumes():
    """Leave-one-out shares AR(1) noise with the neighbours of the left-out volume and picks a tiny penalty; blocked
    CV with a gap sees that the atoms predict nothing and picks a large one."""
    rng = np.random.default_rng(3)
    x = design_matrix(_smooth_atoms(300, 8, 4), 1.5)[:, :-1]
    y = simulate_noise("ar1", 300, 300, rng, 0.8)
    loo = RidgeCV(alphas=RIDGE_ALPHAS, alpha_per_target=True).fit(x, y).alpha_
    blocked = choose_alphas(x, y, RIDGE_ALPHAS, cv_gap(1.5))
    assert np.median(np.log10(blocked)) - np.median(np.log10(loo)) >= 1.0


def test_plain_ols_matches_least_squares_by_hand():
    rng = np.random.default_rng(4)
    atom = _smooth_atoms(100, 1, 5)
    y = convolve_hrf(atom, 1.0) * 3 + rng.standard_normal((100, 4))
    enc = fit_encoding(atom, y, tr=1.0, method="ols")
    x = np.column_stack([design_matrix(atom, 1.0)[:, :-1], nuisance_matrix(100, 1.0)])
    coef, sse = np.linalg.lstsq(x, y, rcond=None)[:2]
    dof = 100 - x.shape[1]
    se = np.sqrt(sse / dof * np.linalg.inv(x.T @ x)[0, 0])
    np.testing.assert_allclose(enc.t[0], coef[0] / se, rtol=1e-9)
    np.testing.assert_allclose(enc.p[0], 2 * stats.t.sf(np.abs(coef[0] / se), dof), rtol=1e-6)
    # without drift cosines (a recording shorter than the cut-off) it is simple regression
    short = fit_encoding(atom[:60], y[:60], tr=1.0, method="ols")
    assert short.drift_regressors == 0
    lr = stats.linregress(convolve_hrf(atom[:60], 1.0)[:, 0], y[:60, 0])
    assert short.t[0, 0] == pytest.approx(lr.slope / lr.stderr, rel=1e-9)


def test_ridge_standard_error_is_the_noise_models_by_hand():
    """With the penalty fixed, Var(beta) = H Sigma H' for the AR noise covariance Sigma, scaled so that the residuals
    have their expected size: built here with dense matrices."""
    rng = np.random.default_rng(8)
    n, atoms = 90, _smooth_atoms(90, 2, 9)
    y = simulate_noise("ar1", n, 3, rng, 0.5)
    enc = fit_encoding(atoms, y, tr=2.0, method="ridge", ridge_alphas=np.array([30.0]))
    x = design_matrix(atoms, 2.0)[:, :-1]
    drift = nuisance_matrix(n, 2.0)[:, :-1]
    x, yy = x - drift @ (drift.T @ x), y - drift @ (drift.T @ y)
    xc, yc = x - x.mean(0), yy - yy.mean(0)
    h = np.linalg.solve(xc.T @ xc + 30.0 * np.eye(2), xc.T)
    removed = np.column_stack([np.ones(n) / np.sqrt(n), drift])
    resid_maker = np.eye(n) - removed @ removed.T - xc @ h
    noise = fit_noise_model(yc - xc @ np.linalg.lstsq(xc, yc, rcond=None)[0], np.column_stack([xc, removed]))
    for v in range(3):
        corr = toeplitz(ar_autocorrelation(noise.voxel[v], n))
        s2 = ((resid_maker @ yc[:, v]) ** 2).sum() / np.trace(resid_maker @ corr @ resid_maker.T)
        se = np.sqrt(s2 * np.diag(h @ corr @ h.T))
        np.testing.assert_allclose(enc.t[:, v], (h @ yc[:, v]) / se, rtol=1e-8)


def test_slow_drift_does_not_inflate_the_tests():
    """Linear drifts of up to 3 noise SDs over 300 volumes, and atoms that trend too (a model's responses can):
    without the drift cosines the drift reads as an effect of the atoms (11 % of p < .05 with ols_ar, 21 % with
    ridge); with them the rate stays nominal."""
    rng = np.random.default_rng(12)
    atoms = _smooth_atoms(300, 8, 13) + np.linspace(-1, 1, 300)[:, None] * 0.3
    y = simulate_noise("ar1", 300, 600, rng, 0.3) + np.linspace(-1.5, 1.5, 300)[:, None] * rng.uniform(-1, 1, 600)
    for method in ("ols_ar", "ridge"):
        assert 0.035 <= (fit_encoding(atoms, y, 1.5, method=method).p < 0.05).mean() <= 0.065, method


def test_ridge_with_tiny_penalty_equals_ols():
    rng = np.random.default_rng(6)
    atoms = _smooth_atoms(120, 3, 7)
    y = convolve_hrf(atoms, 1.5) @ rng.standard_normal((3, 50)) + rng.standard_normal((120, 50))
    ols = fit_encoding(atoms, y, tr=1.5, method="ols")
    ridge = fit_encoding(atoms, y, tr=1.5, method="ridge", ridge_alphas=np.array([1e-9]))
    np.testing.assert_allclose(ridge.betas, ols.betas, rtol=1e-6)
    heavy = fit_encoding(atoms, y, tr=1.5, method="ridge", ridge_alphas=np.array([1e4]))
    assert np.abs(heavy.betas).mean() < 0.2 * np.abs(ols.betas).mean()
    strong = np.abs(ols.t) > 6
    assert strong.sum() >= 10 and (ridge.p[strong] < 0.05).all()  # strong effects stay significant against the null


def test_fdr_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    np.testing.assert_allclose(fdr_bh(p), [0.025, 0.05, 0.05, 0.025, 0.5])
    np.testing.assert_allclose(fdr_bh(np.array([p, p[::-1]]), axis=1)[1], [0.5, 0.025, 0.05, 0.05, 0.025])


def test_nan_and_constant_voxels_excluded_with_report(small_sim):
    y = small_sim.bold.copy()
    y[5, 3] = np.nan
    y[:, 7] = 2.5
    y[:, 11] = np.inf
    brain = prepare_brain(y, n_tr=y.shape[0])
    rep = brain.report()
    assert rep["nan_voxels"] == [3, 11] and rep["constant_voxels"] == [7]
    assert rep["n_kept"] == y.shape[1] - 3
    enc = fit_encoding(small_sim.atoms, brain, small_sim.tr)
    assert np.isnan(enc.t[:, [3, 7, 11]]).all() and not enc.significant[:, [3, 7, 11]].any()
    assert np.isfinite(enc.t[:, brain.kept]).all()
    clean = fit_encoding(small_sim.atoms, small_sim.bold, small_sim.tr)
    np.testing.assert_allclose(enc.t[:, 20], clean.t[:, 20], rtol=1e-3)  # only the pooled noise model moves, slightly


def test_length_mismatch_and_all_bad():
    y = np.random.default_rng(0).standard_normal((100, 5))
    with pytest.raises(ValueError, match="100 volumes but the stimulus at TR 2.0 s gives 120"):
        prepare_brain(y, n_tr=120, tr=2.0)
    with pytest.raises(ValueError, match="transposed"):
        prepare_brain(y.T, n_tr=100)
    with pytest.raises(ValueError, match="no usable voxel"):
        prepare_brain(np.full((10, 3), np.nan))
    with pytest.raises(ValueError, match="volumes but the atoms have"):
        fit_encoding(_smooth_atoms(90, 2, 0), prepare_brain(y), tr=2.0)
    with pytest.raises(ValueError, match="method"):
        fit_encoding(_smooth_atoms(100, 2, 0), y, tr=2.0, method="glm")
    with pytest.raises(ValueError, match="collinear"):
        a = _smooth_atoms(100, 1, 0)
        fit_encoding(np.hstack([a, 2 * a]), y, tr=2.0)


def test_load_brain_csv_and_npy(tmp_path):
    y = np.random.default_rng(1).standard_normal((20, 4))
    y[:, 2] = 1.0
    (tmp_path / "b.csv").write_text("a,b,c,d\n" + "\n".join(",".join(map(str, r)) for r in y))
    b = load_brain(tmp_path / "b.csv", n_tr=20)
    assert b.voxel_names == ["a", "b", "c", "d"] and b.constant_voxels.tolist() == [2]
    np.testing.assert_allclose(b.data, y[:, [0, 1, 3]])
    (tmp_path / "nohead.csv").write_text("\n".join(",".join(map(str, r)) for r in y))
    assert load_brain(tmp_path / "nohead.csv").voxel_names is None
    np.save(tmp_path / "b.npy", y)
    assert load_brain(tmp_path / "b.npy").kept.tolist() == [0, 1, 3]
    (tmp_path / "bad.csv").write_text("1,2\n3,oops\n")
    with pytest.raises(ValueError, match="non-numeric value 'oops'"):
        load_brain(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match=".npy or .csv"):
        load_brain(tmp_path / "b.nii")
    with pytest.raises(ValueError, match="20 volumes"):
        load_brain(tmp_path / "b.npy", n_tr=30)


def test_held_out_prediction_separates_coupled_from_null(small_sim):
    r = held_out_prediction(small_sim.atoms, small_sim.bold, small_sim.tr)
    coupled = small_sim.coupled_mask.any(axis=0)
    assert r[coupled].mean() > 0.3 and abs(r[~coupled].mean()) < 0.1  # blocked folds: fold means shift with slow noise
    with pytest.raises(ValueError, match="too few"):
        held_out_prediction(small_sim.atoms[:6], small_sim.bold[:6], small_sim.tr)


def test_separate_models_equal_one_atom_fits(small_sim):
    sep = fit_encoding(small_sim.atoms, small_sim.bold, small_sim.tr, joint=False)
    for k in range(small_sim.atoms.shape[1]):
        one = fit_encoding(small_sim.atoms[:, [k]], small_sim.bold, small_sim.tr)
        np.testing.assert_allclose(sep.t[k], one.t[0])
        assert sep.ar_order[k] == one.ar_order[0]
    assert len(sep.ar_order) == small_sim.atoms.shape[1]
