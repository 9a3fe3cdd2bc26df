"""Functional-organisation page: settings <-> hash, computation, figure functions, and one browser run."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from brillm_core import load_checkpoint
from brillm_core.organization.stimulus import OrganizationError
from explorer.figures import organization as fig
from explorer.organization_run import OrgSettings, compute, from_hash, parse, to_hash

SMALL = dict(n_tr=80, nodes=8, units=4, voxels=240, k_true=3, k=3, n_perm=20)


@pytest.fixture(scope="module")
def sim_result():
    settings, warnings = parse(SMALL)
    assert warnings == []
    return compute(settings, None, lambda f, m: None)


def test_hash_round_trip_and_clamping():
    s = OrgSettings(source="model", model="alpha", text="a b c", k=4, alpha=0.5, atom=2)
    assert from_hash(to_hash(s)) == (s, [])
    assert to_hash(OrgSettings()) == ""
    got, warnings = from_hash("#m=x&p=prompt&k=99&o_k=99&o_source=bad&o_alpha=nan")
    assert got.model == "x" and got.k == 32 and got.source == "sim" and got.alpha == 0.2 and len(warnings) == 3
    assert "text" not in OrgSettings().request() and "n_tr" not in OrgSettings(source="model").request()


def test_simulator_result_and_figures(sim_result):
    rep = sim_result.report
    assert sim_result.recovery["atom_abs_r_min"] > 0.9 and len(sim_result.words) == 80
    atoms = fig.atoms_under_words(rep.atom_model.atoms, sim_result.words, sim_result.tr, selected=1)
    assert len(atoms.data) == 3 and atoms.data[1].line.width == 3
    np.testing.assert_allclose(atoms.data[2].customdata[:, 1].astype(float), rep.atom_model.atoms[:, 2])
    assert atoms.data[0].customdata[5, 2] == sim_result.words[5]
    heat = fig.similarity_heatmap(rep.match.r, rep.match.dice, rep.match.matches, rep.match.network_names)
    np.testing.assert_array_equal(np.asarray(heat.data[0].z), rep.match.r)
    assert ("★" in heat.data[0].text[0][int(rep.match.best[0])]) == (rep.match.best[0] >= 0)
    group = rep.atom_model.subgroups()[0]
    bars = fig.subgroup_bars([rep.an_labels[a] for a in group.ans], group.loadings, 0, top=5)
    np.testing.assert_allclose(bars.data[0].x, group.loadings[:5][::-1])
    enc = rep.encoding
    boxes = fig.map_by_network(enc.t[0], enc.significant[0], sim_result.templates, rep.match.network_names, 0)
    assert sum(len(b.y) for b in boxes.data) == int(np.isfinite(enc.t[0]).sum())
    regions = fig.region_table(enc.betas[0], enc.t[0], enc.q[0], enc.significant[0], sim_result.templates,
                               rep.match.network_names, None, top=10)
    assert len(regions) == 10 and np.all(np.diff(np.abs(regions["t"])) <= 1e-3)
    rows = fig.measures_rows(rep.measures, rep.controls)
    assert rows[0]["formula"].startswith("diversity =") and any("lexical control: verdict" == r["measure"] for r in rows)


def test_checkpoint_mode_with_simulated_brain(model_root: Path):
    ckpt = load_checkpoint(model_root / "alpha", device="cpu")
    settings, _ = parse({"source": "model", "model": "alpha", "text": " ".join(["abc de, fgh!"] * 30), "k": 3,
                         "n_perm": 20, "kind": "landscape"})
    result = compute(settings, ckpt, lambda f, m: None)
    assert "SIMULATED" in result.note and set(result.report.controls) == {"lexical", "untrained"}
    assert result.report.settings["responses"] == "landscape"
    with pytest.raises(OrganizationError, match="empty"):
        compute(parse({"source": "model", "text": "  "})[0], ckpt, lambda f, m: None)


@pytest.mark.browser
def test_page_runs_the_simulator(dash_duo, model_root: Path, cache_dir: Path) -> None:
    from explorer.app import create_app

    app = create_app([model_root], cache_dir)
    query = "&".join(f"o_{k}={v}" for k, v in SMALL.items())
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/organization#{query}")
    dash_duo.wait_for_contains_text("#fo-measures", "diversity", timeout=30)
    assert "Simulator with known truth" in dash_duo.find_element("#fo-note").text
    dash_duo.wait_for_contains_text("#fo-recovery", "atom_abs_r_min", timeout=5)
    assert len(dash_duo.find_elements("#fo-atoms .scatterlayer .trace")) == 3
    dash_duo.select_dcc_dropdown("#fo-atom", "atom 2")
    end = time.time() + 10
    while "o_atom=2" not in dash_duo.driver.current_url and time.time() < end:
        time.sleep(0.05)
    assert "o_atom=2" in dash_duo.driver.current_url
    dash_duo.wait_for_contains_text("#fo-subgroup", "Atom 2", timeout=10)
    logs = [e for e in dash_duo.get_logs() or [] if e.get("level") == "SEVERE"]
    assert logs == []
