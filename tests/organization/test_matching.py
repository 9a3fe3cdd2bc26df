"""Matching: r and Dice by hand, voxel and spatially smooth nulls, measures and their formulas, template mismatch."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from brillm_core.organization.matching import (
    FORMULAS,
    SPATIAL_NULL,
    VOXEL_NULL,
    map_smoothness,
    consistency,
    diversity,
    effective_rank,
    network_similarity,
    summary_measures,
    templates_from_labels,
)


def _toy():
    rng = np.random.default_rng(0)
    n_vox = 400
    tmpl = np.zeros((n_vox, 2))
    tmpl[:100, 0] = 1
    tmpl[100:200, 1] = 1
    t = rng.standard_normal((3, n_vox))
    t[0, :100] += 4  # atom 0 lives in network 0
    t[1, 100:200] += 4  # atom 1 in network 1; atom 2 is noise
    return t, np.abs(t) > 3, tmpl


def test_r_and_dice_by_hand():
    t, sig, tmpl = _toy()
    m = network_similarity(t, sig, tmpl, ["A", "B"], n_perm=200, seed=1)
    for k in range(3):
        for n in range(2):
            assert m.r[k, n] == pytest.approx(np.corrcoef(t[k], tmpl[:, n])[0, 1])
            inter = (sig[k] & (tmpl[:, n] > 0)).sum()
            assert m.dice[k, n] == pytest.approx(2 * inter / (sig[k].sum() + (tmpl[:, n] > 0).sum()))
    assert m.p_r[0, 0] == pytest.approx(1 / 201) and m.p_r[1, 1] == pytest.approx(1 / 201)
    assert m.p_r[2].min() > 0.01 and m.p_r[0, 1] > 0.5
    assert m.best.tolist() == [0, 1, -1]
    assert m.atoms_per_network() == {"A": [0], "B": [1]}
    assert consistency(m) == pytest.approx(2 / 3)


def test_permutation_p_is_roughly_uniform_under_the_null():
    rng = np.random.default_rng(5)
    tmpl = (rng.random((300, 1)) < 0.3).astype(float)
    t = rng.standard_normal((200, 300))
    m = network_similarity(t, np.abs(t) > 2, tmpl, n_perm=100, seed=2)
    assert 0.01 < (m.p_r <= 0.05).mean() < 0.12


def test_matches_are_corrected_across_atom_network_pairs():
    """64 atoms x 2 networks of pure noise: uncorrected, some pair passes both p <= .05 by chance; the FDR
    adjustment across the 128 pairs leaves no match."""
    rng = np.random.default_rng(5)
    tmpl = (rng.random((300, 2)) < 0.3).astype(float)
    t = rng.standard_normal((64, 300))
    m = network_similarity(t, np.abs(t) > 1.5, tmpl, n_perm=200, seed=2, r_threshold=0.0)
    assert ((m.p_r <= 0.05) & (m.p_dice <= 0.05)).any()
    assert (m.q_r >= m.p_r).all() and (m.q_dice >= m.p_dice).all() and not m.matches.any()


def test_mask_excludes_nan_voxels():
    t, sig, tmpl = _toy()
    t[:, 5] = np.nan
    m = network_similarity(t, sig, tmpl, n_perm=10)
    assert np.isfinite(m.r).all()
    assert m.r[0, 0] == pytest.approx(np.corrcoef(np.delete(t[0], 5), np.delete(tmpl[:, 0], 5))[0, 1])


def test_template_mismatch_errors():
    t, sig, tmpl = _toy()
    with pytest.raises(ValueError, match="templates have 399 voxels but the brain data has 400"):
        network_similarity(t, sig, tmpl[:-1])
    with pytest.raises(ValueError, match="transposed"):
        network_similarity(t, sig, tmpl.T)
    with pytest.raises(ValueError, match="3 network names for 2"):
        network_similarity(t, sig, tmpl, ["a", "b", "c"])
    with pytest.raises(ValueError, match="no voxel > 0"):
        network_similarity(t, sig, np.column_stack([tmpl[:, 0], np.zeros(400)]))
    with pytest.raises(ValueError, match="NaN"):
        network_similarity(t, sig, np.where(tmpl > 0, np.nan, 0))
    with pytest.raises(ValueError, match="n_perm"):
        network_similarity(t, sig, tmpl, n_perm=0)


def test_measures_by_hand():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((100, 3))
    c = np.corrcoef(a.T)
    assert diversity(a) == pytest.approx(1 - np.mean(np.abs([c[0, 1], c[0, 2], c[1, 2]])))
    assert diversity(np.column_stack([a[:, 0], -a[:, 0]])) == pytest.approx(0.0)
    assert effective_rank(np.eye(5)[:, :3]) == pytest.approx(3.0)
    assert effective_rank(np.outer(np.ones(4), [1.0, 2.0])) == pytest.approx(1.0)
    t, sig, tmpl = _toy()
    s = summary_measures(a, network_similarity(t, sig, tmpl, n_perm=50))
    assert s["diversity"]["formula"] == FORMULAS["diversity"] and "exactly one network" in s["consistency"]["formula"]


def test_templates_from_labels():
    tm, names = templates_from_labels(np.array([0, 2, 2, 5, 0]), {5: "Visual"})
    np.testing.assert_array_equal(tm, [[0, 0], [1, 0], [1, 0], [0, 1], [0, 0]])
    assert names == ["Network 2", "Visual"]
    with pytest.raises(ValueError):
        templates_from_labels(np.zeros(4, dtype=int))


def _smooth_maps(n: int, sigma: float, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect").ravel() for _ in range(n)])


def test_map_smoothness_recovers_the_kernel():
    grid = np.ones((16, 16, 16), dtype=bool)
    for sigma in (1.0, 1.5, 2.0):  # fMRI maps: 6-8 mm FWHM on 2-3 mm voxels is sigma 1-1.5
        assert map_smoothness(_smooth_maps(1, sigma, grid.shape, 0)[0], grid) == pytest.approx(sigma, rel=0.2)


def test_spatial_null_is_calibrated_where_voxel_shuffling_is_not():
    """Smooth maps unrelated to a smooth template: shuffling voxels calls many of them matches, the smooth-field
    null about 5 %."""
    shape = (12, 12, 12)
    grid = np.ones(shape, dtype=bool)
    field = _smooth_maps(1, 2.0, shape, 99)[0]
    template = (field > np.quantile(field, 0.8)).astype(float)[:, None]
    maps = _smooth_maps(60, 2.0, shape, 1)
    sig = maps > np.quantile(maps, 0.9, axis=1, keepdims=True)
    shuffled = network_similarity(maps, sig, template, n_perm=200, seed=3)
    smooth = network_similarity(maps, sig, template, n_perm=200, seed=3, grid=grid)
    assert (shuffled.p_r <= 0.05).mean() > 0.25
    assert (smooth.p_r <= 0.05).mean() <= 0.12 and (smooth.p_dice <= 0.05).mean() <= 0.12
    assert smooth.null == SPATIAL_NULL and shuffled.null == VOXEL_NULL
    np.testing.assert_allclose(smooth.r, shuffled.r)  # the statistics are the same; only their null differs
    with pytest.raises(ValueError, match="grid holds"):
        network_similarity(maps, sig, template, grid=np.ones((2, 2, 2), dtype=bool))
