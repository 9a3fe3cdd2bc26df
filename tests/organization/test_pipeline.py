"""The whole pipeline on the full-size simulator: recovery against the truth, controls, report files, bad input."""
import json

import numpy as np
import pandas as pd
import pytest

from brillm_core.organization.encoding import fit_encoding
from brillm_core.organization.pipeline import _encode, run_organization, run_simulation


@pytest.fixture(scope="module")
def full_run():
    calls = []
    result = run_simulation(8, seed=0, lexical_control=True, stability_seeds=(1,), n_perm=200,
                            progress=lambda f, m: calls.append((f, m)))
    return result, calls


def test_full_size_recovery(full_run):
    result, _ = full_run
    f = result.figures
    assert result.data.responses.shape == (300, 3200) and result.data.bold.shape == (300, 4000)
    assert f["atom_abs_r_min"] >= 0.95
    assert f["subgroup_accuracy"] >= 0.95
    assert f["dice_min"] >= 0.9
    assert f["false_positive_rate"] <= 0.01
    assert f["network_match_accuracy"] == 1.0
    assert result.report.measures["consistency"]["value"] == 1.0
    assert result.report.stability.stable and not result.report.warnings


def test_calibration_on_the_null_voxels(full_run):
    f = full_run[0].figures
    assert 0.035 <= f["null_p05_rate"] <= 0.065  # nominal 5 %
    assert f["subgroup_accuracy_one_to_one"] >= 0.95  # with coupled voxels present, FDR admits q of its discoveries


def test_phase_randomised_atoms_find_about_nothing(full_run):
    f, null = full_run[0].figures, full_run[0].report.phase_null
    assert f["phase_null_fraction"] <= 0.005  # of all (atom, voxel) pairs
    assert f["phase_null_mean_significant"] < 0.05 * f["real_significant"]
    assert null["above_null"] and null["p"] == pytest.approx(1 / 20) == null["p_floor"]
    assert "exceed 19 phase-randomised atom sets" in null["verdict"]
    assert 0.035 <= null["null_p05_rate"] <= 0.065  # this recording's own false-positive rate, measured by the copies


def test_lexical_control_is_beaten_and_reported(full_run):
    lex = full_run[0].report.controls["lexical"]
    assert lex["verdict_code"] == "beyond lexical" and lex["n_significant"] < 20
    assert lex["held_out_r_mean"] < 0.05 and lex["r2_model"] > 0 and lex["p_added_by_model"] <= 0.05


def test_plain_ols_inflates_false_positives(full_run):
    result = full_run[0]
    sim, white = result.data, result.report.encoding
    plain = fit_encoding(result.report.atom_model.atoms, sim.bold, sim.tr, method="ols")
    fp_plain, fp_white = plain.significant[:, sim.null_mask].mean(), white.significant[:, sim.null_mask].mean()
    assert fp_plain > 3 * fp_white
    assert plain.significant[:, sim.coupled_mask.any(axis=0)].sum() > 0


def test_progress_is_monotone_and_finishes(full_run):
    fractions = [f for f, _ in full_run[1]]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert any("control: lexical" in m for _, m in full_run[1])


def test_report_files(full_run, tmp_path):
    report = full_run[0].report
    path = report.to_json(tmp_path / "out")
    paths = report.to_csv_tables(tmp_path / "out")
    data = json.loads(path.read_text())
    assert data["settings"]["k"] == 8 and data["formulas"]["diversity"].startswith("diversity = 1 - mean")
    assert len(data["atoms"]["time_courses"]) == 8 and len(data["subgroups"]) == 8
    assert data["subgroups"][0]["top"][0]["label"].startswith("word")
    assert {p.name for p in paths} >= {"atoms.csv", "subgroups.csv", "maps.csv", "similarity.csv", "measures.csv"}
    sim = pd.read_csv(tmp_path / "out" / "similarity.csv")
    assert len(sim) == 64 and sim["match"].sum() == 8
    maps = pd.read_csv(tmp_path / "out" / "maps.csv")
    assert len(maps) == 4000 and "t_7" in maps
    assert data["encoding_test"].startswith("OLS after AR(p) prewhitening") and "permuted" in data["matching_null"]
    objectives = data["stability"]["objectives"]  # svd and seed 1 reach the same minimum; either may be a hair lower
    assert data["stability"]["chosen"] == min(objectives, key=objectives.get) and data["stability"]["stable"]
    assert len(pd.read_csv(tmp_path / "out" / "subgroups.csv")) == np.count_nonzero(report.atom_model.loadings)
    assert not list((tmp_path / "out").glob(".*tmp"))


@pytest.mark.slow
def test_collinear_atoms_switch_to_per_atom_models(full_sim):
    """At K = 16 atoms split and the joint model collapses; "auto" notices and fits one model per atom."""
    auto = run_organization(full_sim.responses, full_sim.bold, full_sim.templates, tr=full_sim.tr, k=16, n_perm=20,
                            stability_seeds=(), n_phase_null=0)
    assert not auto.encoding.joint and auto.settings["joint"] is False
    assert any("one model per atom was fitted" in w for w in auto.warnings)
    joint, warnings = _encode(auto.atom_model.atoms, auto.brain, full_sim.tr, "ols_ar", 0.05, "joint")
    assert joint.joint and any("unreliable" in w for w in warnings)
    assert auto.encoding.significant.sum() > 3 * joint.significant.sum()


def test_unstable_atoms_are_warned_about():
    noise = np.random.default_rng(0).standard_normal((120, 200))
    bold = np.random.default_rng(1).standard_normal((120, 100))
    rep = run_organization(noise, bold, np.repeat(np.eye(2), 50, axis=0), tr=1.5, k=4, n_perm=10,
                           stability_seeds=(1, 2), n_phase_null=0)
    assert not rep.stability.stable and any("atoms are not stable" in w for w in rep.warnings)


def test_bad_inputs(small_sim):
    s = small_sim
    with pytest.raises(ValueError, match="199 volumes but the stimulus at TR 1.5 s gives 200"):
        run_organization(s.responses, s.bold[:-1], s.templates, tr=s.tr, k=4)
    with pytest.raises(ValueError, match="templates have 799 voxels"):
        run_organization(s.responses, s.bold, s.templates[:-1], tr=s.tr, k=4)
    with pytest.raises(ValueError, match="K = 300 exceeds"):
        run_organization(s.responses, s.bold, s.templates, tr=s.tr, k=300)
    with pytest.raises(ValueError, match="AN labels"):
        run_organization(s.responses, s.bold, s.templates, tr=s.tr, k=4, an_labels=["a"])


def test_nan_voxels_pass_through_the_pipeline(small_sim):
    s = small_sim
    bold = s.bold.copy()
    bold[:, 0] = np.nan
    bold[:, 1] = 0.0
    rep = run_organization(s.responses, bold, s.templates, s.network_names, tr=s.tr, k=4, n_perm=50,
                           stability_seeds=(), n_phase_null=1)
    assert rep.summary()["brain"]["nan_voxels"] == [0] and rep.summary()["brain"]["constant_voxels"] == [1]
    assert np.isnan(rep.held_out_r[:2]).all() and np.isfinite(rep.match.r).all()


def test_a_phase_null_too_small_for_its_claim_says_so(small_sim):
    """Ten copies cannot give p <= .05 (the smallest p is 1/11): the report says so instead of 'exceeds every one'."""
    s = small_sim
    rep = run_organization(s.responses, s.bold, s.templates, tr=s.tr, k=4, n_perm=20, stability_seeds=(),
                           n_phase_null=10, voxels_independent=True)
    null = rep.phase_null
    assert null["p_floor"] == pytest.approx(1 / 11) and not null["above_null"]
    assert "cannot show it: the smallest p they allow is 0.0909" in null["verdict"]
    # 200 volumes: below the length of the measured calibration, with this recording's own null rate
    assert any(w.startswith("200 volumes is below the 300") and "phase-randomised atoms reach p < .05 in" in w
               for w in rep.warnings)
    assert not any("matching null shuffles voxels" in w for w in rep.warnings)
    shuffled = run_organization(s.responses, s.bold, s.templates, tr=s.tr, k=4, n_perm=20, stability_seeds=(),
                                n_phase_null=0)
    assert any("matching null shuffles voxels" in w for w in shuffled.warnings)
