"""The simulator's departures from the method's assumptions: each flag does what it says, measured on its output."""
import numpy as np
import pytest

from brillm_core.organization.controls import lexical_responses
from brillm_core.organization.hrf import convolve_hrf
from brillm_core.organization.simulate import HARD, simulate, simulate_noise

SMALL = dict(n_tr=200, n_nodes=20, units_per_node=8, n_voxels=1000, voxels_per_atom=60, k_true=4, seed=5)


def _lag1(x: np.ndarray) -> float:
    x = x - x.mean(axis=0)
    return float(((x[1:] * x[:-1]).sum(axis=0) / (x * x).sum(axis=0)).mean())


def test_noise_processes():
    rng = np.random.default_rng(0)
    for rho in (0.3, 0.85):
        assert _lag1(simulate_noise("ar1", 400, 500, rng, rho)) == pytest.approx(rho, abs=0.03)
    assert _lag1(simulate_noise("ar2", 400, 500, rng)) == pytest.approx(0.6 / (1 - 0.25), abs=0.03)
    pink = simulate_noise("pink", 512, 400, rng)
    assert pink.std() == pytest.approx(1.0)
    f = np.fft.rfftfreq(512)[1:100]
    power = (np.abs(np.fft.rfft(pink - pink.mean(axis=0), axis=0)) ** 2).mean(axis=1)[1:100]
    assert np.polyfit(np.log(f), np.log(power), 1)[0] == pytest.approx(-1.0, abs=0.2)  # power ~ 1/f
    with pytest.raises(ValueError, match="noise must be one of"):
        simulate_noise("brown", 10, 2, rng)


def test_default_is_the_assumed_world():
    sim = simulate(**SMALL)
    assert sim.grid_mask is None and (sim.templates.T.astype(bool) == sim.coupled_mask).all()
    assert np.abs(np.corrcoef(sim.atoms.T)[np.triu_indices(4, 1)]).mean() < 0.2


def test_hrf_mismatch_shifts_the_response():
    sim = simulate(**{**SMALL, "hrf_peak": (8.0, 8.0), "coupling_snr": (3.0, 3.0)})
    vox = np.flatnonzero(sim.coupled_mask[0])
    fitted, shifted = convolve_hrf(sim.atoms[:, 0], sim.tr), convolve_hrf(sim.atoms[:, 0], sim.tr, shift=3.0)
    r_fit = np.mean([np.corrcoef(fitted, sim.bold[:, v])[0, 1] for v in vox])
    r_true = np.mean([np.corrcoef(shifted, sim.bold[:, v])[0, 1] for v in vox])
    assert r_true > 0.9 and r_fit < r_true - 0.1


def test_correlated_and_lexically_driven_atoms():
    sim = simulate(**{**SMALL, "atom_correlation": 0.5})
    assert np.corrcoef(sim.atoms.T)[np.triu_indices(4, 1)].mean() == pytest.approx(0.5, abs=0.15)
    driven = simulate(**{**SMALL, "lexical_drive": 1.0})
    words = lexical_responses(driven.words, driven.onsets, driven.tr, 200)[0]
    for k in range(4):  # the first half of the atoms are word counts; the rest are not
        fit = np.linalg.lstsq(np.column_stack([words, np.ones(200)]), driven.atoms[:, k], rcond=None)[0]
        r2 = 1 - ((driven.atoms[:, k] - np.column_stack([words, np.ones(200)]) @ fit) ** 2).sum() / (driven.atoms[:, k] ** 2).sum()
        assert (r2 > 0.999) if k < 2 else (r2 < 0.3)


def test_spatially_smooth_maps_and_partial_templates():
    sim = simulate(**{**SMALL, "spatial_smoothness": 1.5, "template_overlap": 0.6})
    grid = sim.grid_mask
    assert grid is not None and grid.sum() == 1000
    vol = np.zeros(grid.shape, dtype=bool)
    vol[grid] = sim.coupled_mask[0]
    neighbour_also = (vol[1:] & vol[:-1]).sum() / vol[:-1].sum()
    assert neighbour_also > 0.5  # blobs, where a random set of 6 % of voxels would give about 0.06
    for k in range(4):
        assert (sim.templates[:, k] > 0).sum() == 60
        assert ((sim.templates[:, k] > 0) & sim.coupled_mask[k]).sum() == 36


def test_hard_preset_combines_every_departure():
    sim = simulate(**{**SMALL, **HARD})
    assert sim.settings["noise"] == "pink" and sim.settings["hrf_peak"] == [4.0, 8.0] and sim.grid_mask is not None
    with pytest.raises(ValueError, match="template_overlap"):
        simulate(**{**SMALL, "template_overlap": 0.0})
    with pytest.raises(ValueError, match="hrf_peak"):
        simulate(**{**SMALL, "hrf_peak": (8.0, 4.0)})


def test_word_gated_neurons_and_open_atoms_are_hard_departures():
    """Word-gated neurons respond only in volumes where their word is heard, and their context-free responses (each
    word's mean) come with them as the paired lexical control; atoms need not wrap around."""
    assert HARD["word_gated"] is True and HARD["atom_edges"] == "open"
    sim = simulate(**{**SMALL, "word_gated": True, "atom_edges": "open"})
    heard = lexical_responses([str(w) for w in sim.words], sim.onsets, sim.tr, sim.atoms.shape[0])
    counts = dict(zip(heard[1], heard[0].T))
    for an in range(0, sim.responses.shape[1], 7):
        word = sim.node_names[sim.an_nodes[an]]
        silent = counts[word] == 0 if word in counts else np.ones(sim.responses.shape[0], bool)
        assert (sim.responses[silent, an] == 0).all() and (sim.lexical[silent, an] == 0).all()
    assert sim.lexical.shape == sim.responses.shape and not np.allclose(sim.lexical, sim.responses)
    wrapped = simulate(**SMALL)
    assert wrapped.lexical is None and wrapped.settings["atom_edges"] == "wrap"
    with pytest.raises(ValueError, match="atom_edges"):
        simulate(**{**SMALL, "atom_edges": "torus"})
