"""Encoding: AR(1) prewhitening and GLS by hand, bias-corrected rho, OLS vs linregress, FDR by hand, brain input."""
import numpy as np
import pytest
from scipy import stats

from brillm_core.organization.encoding import (
    ar1_coefficients,
    design_matrix,
    fdr_bh,
    fit_encoding,
    held_out_prediction,
    load_brain,
    prais_winsten,
    prepare_brain,
)
from brillm_core.organization.hrf import convolve_hrf


def _smooth_atoms(n, k, seed):
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(np.random.default_rng(seed).standard_normal((n, k)), 3, axis=0)


def _ar1(n, v, rho, rng):
    e = np.empty((n, v))
    e[0] = rng.standard_normal(v)
    for t in range(1, n):
        e[t] = rho * e[t - 1] + np.sqrt(1 - rho**2) * rng.standard_normal(v)
    return e


def test_prais_winsten_by_hand():
    x = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 5.0], [4.0, 0.0]])
    expected = np.array([[np.sqrt(0.75), np.sqrt(0.75) * 10], [1.5, 15.0], [2.0, -5.0], [2.5, -2.5]])
    np.testing.assert_allclose(prais_winsten(x, 0.5), expected)


def test_prais_winsten_whitens_ar1_covariance():
    rho, n = 0.4, 6
    cov = rho ** np.abs(np.subtract.outer(np.arange(n), np.arange(n))) / (1 - rho**2)
    p = prais_winsten(np.eye(n), rho)
    np.testing.assert_allclose(p @ cov @ p.T, np.eye(n), atol=1e-12)


def test_ar1_lag1_by_hand():
    e = np.array([[1.0], [-1.0], [2.0], [0.5]])
    expected = (1 * -1 + -1 * 2 + 2 * 0.5) / (1 + 1 + 4 + 0.25)
    assert ar1_coefficients(e)[0] == pytest.approx(expected)


def test_bias_corrected_rho_recovers_truth():
    rng = np.random.default_rng(0)
    x = design_matrix(_smooth_atoms(300, 8, 1), 1.5)
    y = _ar1(300, 3000, 0.3, rng)
    resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    naive, corrected = ar1_coefficients(resid).mean(), ar1_coefficients(resid, x).mean()
    assert naive < 0.285  # the projection biases the plain estimate down
    assert abs(corrected - 0.3) < 0.01


def test_prewhitened_t_equals_gls_by_hand():
    rng = np.random.default_rng(2)
    atoms = _smooth_atoms(60, 2, 3)
    y = 0.5 * convolve_hrf(atoms, 2.0)[:, :1] + _ar1(60, 3, 0.5, rng)
    enc = fit_encoding(atoms, y, tr=2.0, method="ols_ar1")
    x = design_matrix(atoms, 2.0)
    n, p = x.shape
    for v in range(3):
        rho = enc.rho[v]
        vinv = np.linalg.inv(rho ** np.abs(np.subtract.outer(np.arange(n), np.arange(n))))
        cov = np.linalg.inv(x.T @ vinv @ x)
        beta = cov @ x.T @ vinv @ y[:, v]
        r = y[:, v] - x @ beta
        se = np.sqrt(r @ vinv @ r / (n - p) * np.diag(cov))
        np.testing.assert_allclose(enc.betas[:, v], beta[:2], rtol=1e-8)
        np.testing.assert_allclose(enc.t[:, v], beta[:2] / se[:2], rtol=1e-8)
        np.testing.assert_allclose(enc.p[:, v], 2 * stats.t.sf(np.abs(beta[:2] / se[:2]), n - p), rtol=1e-6)


def test_plain_ols_matches_linregress():
    rng = np.random.default_rng(4)
    atom = _smooth_atoms(100, 1, 5)
    y = convolve_hrf(atom, 1.0) * 3 + rng.standard_normal((100, 4))
    enc = fit_encoding(atom, y, tr=1.0, method="ols")
    reg = convolve_hrf(atom, 1.0)[:, 0]
    for v in range(4):
        lr = stats.linregress(reg, y[:, v])
        assert enc.t[0, v] == pytest.approx(lr.slope / lr.stderr, rel=1e-9)
        assert enc.p[0, v] == pytest.approx(lr.pvalue, rel=1e-6)


def test_ridge_with_tiny_penalty_equals_ols():
    rng = np.random.default_rng(6)
    atoms = _smooth_atoms(120, 3, 7)
    y = convolve_hrf(atoms, 1.5) @ rng.standard_normal((3, 50)) + rng.standard_normal((120, 50))
    ols = fit_encoding(atoms, y, tr=1.5, method="ols")
    ridge = fit_encoding(atoms, y, tr=1.5, method="ridge", ridge_alphas=np.array([1e-9]))
    np.testing.assert_allclose(ridge.t, ols.t, rtol=1e-5)
    heavy = fit_encoding(atoms, y, tr=1.5, method="ridge", ridge_alphas=np.array([1e4]))
    assert np.abs(heavy.betas).mean() < 0.2 * np.abs(ols.betas).mean()


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
    np.testing.assert_allclose(enc.t[:, 20], clean.t[:, 20])  # other voxels unaffected


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
    assert r[coupled].mean() > 0.3 and abs(r[~coupled].mean()) < 0.05
    with pytest.raises(ValueError, match="too few"):
        held_out_prediction(small_sim.atoms, small_sim.bold, small_sim.tr, test_fraction=0.001)


def test_separate_models_equal_one_atom_fits(small_sim):
    sep = fit_encoding(small_sim.atoms, small_sim.bold, small_sim.tr, joint=False)
    for k in range(small_sim.atoms.shape[1]):
        one = fit_encoding(small_sim.atoms[:, [k]], small_sim.bold, small_sim.tr)
        np.testing.assert_allclose(sep.t[k], one.t[0])
        np.testing.assert_allclose(sep.rho[k], one.rho)
    assert sep.rho.shape == small_sim.atoms.T.shape[:1] + (small_sim.bold.shape[1],)
