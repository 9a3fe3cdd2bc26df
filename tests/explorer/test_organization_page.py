"""Functional-organisation page: settings <-> hash, computation, figure functions, and one browser run."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brillm_core import load_checkpoint
from brillm_core.cli import main as cli_main
from brillm_core.organization.stimulus import OrganizationError
from explorer import uploads
from explorer.figures import organization as fig
from explorer.organization_run import OrgSettings, compute, from_hash, parse, to_hash, with_other_pages

from .browser import no_console_errors, open_link, wait_until

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
    # no text typed: the model source reads a ready sample story, and says so
    sample = compute(parse({"source": "model", "text": "  ", "k": 3, "n_perm": 20})[0], ckpt, lambda f, m: None)
    assert sample.note.startswith("No stimulus text was typed, so the built-in sample story was read.")
    assert "SIMULATED" in sample.note and len(sample.words) > 0


RECORDED = dict(k=3, n_perm=20, tr=1.5, word_rate=2.5)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """Files of a recording: a 60-word story (24 s), 24 volumes of TR 1.5 s over 60 regions, 3 network templates."""
    root = tmp_path_factory.mktemp("recorded")
    rng = np.random.default_rng(3)
    (root / "story.txt").write_text(" ".join("".join(rng.choice(list("abcdefg"), 3)) for _ in range(60)), encoding="utf-8")
    np.save(root / "bold.npy", rng.standard_normal((24, 60)))
    (root / "networks.csv").write_text("Auditory,Language,Visual\n" + "\n".join(
        ",".join("1" if j == i // 20 else "0" for j in range(3)) for i in range(60)) + "\n", encoding="utf-8")
    return root


def upload_of(path: Path) -> uploads.Upload:
    """A file as the page receives it (through dcc.Upload's base64 data URL)."""
    import base64

    return uploads.decode("data:application/octet-stream;base64," + base64.b64encode(path.read_bytes()).decode(), path.name)


def test_uploaded_recording_gives_the_command_line_result(model_root: Path, recorded: Path, tmp_path: Path):
    files = {"stimulus": upload_of(recorded / "story.txt"), "brain": upload_of(recorded / "bold.npy"),
             "templates": upload_of(recorded / "networks.csv")}
    keys = {kind: u.key for kind, u in files.items()}
    settings, warnings = parse({"source": "upload", "model": "alpha", **RECORDED, **keys})
    assert warnings == [] and from_hash(to_hash(settings))[0] == settings
    assert set(keys) <= set(settings.request()) and "text" not in settings.request()
    result = compute(settings, load_checkpoint(model_root / "alpha", device="cpu"), lambda f, m: None, files)
    assert "Recorded data: story.txt (60 words)" in result.note
    out = tmp_path / "cli"
    assert cli_main(["organization", str(model_root / "alpha"), "--stimulus", str(recorded / "story.txt"), "--tr", "1.5",
                     "--volumes", "24", "--brain", str(recorded / "bold.npy"), "--templates", str(recorded / "networks.csv"),
                     "-k", "3", "--n-perm", "20", "--phase-null", "5", "-o", str(out)]) == 0
    for name, table in (("similarity", result.report.similarity_table()), ("maps", result.report.tables()["maps"])):
        pd.testing.assert_frame_equal(table.reset_index(drop=True), pd.read_csv(out / f"{name}.csv"), check_dtype=False, rtol=1e-6)
    with pytest.raises(OrganizationError, match="upload templates first"):
        compute(settings, load_checkpoint(model_root / "alpha", device="cpu"), lambda f, m: None,
                {k: v for k, v in files.items() if k != "templates"})


@pytest.mark.parametrize("contents, name, kind, message", [
    ("data:text/plain;base64,@@@", "a.txt", "stimulus", "not valid base64"),
    ("text/plain,abc", "a.txt", "stimulus", "not a base64 data URL"),
    ("data:text/plain;base64," + "A" * (uploads.MAX_UPLOAD_BYTES * 4 // 3 + 8), "a.txt", "stimulus", "larger than 32 MB"),
    ("data:text/plain;base64,//79", "a.txt", "stimulus", "not UTF-8"),
    ("data:text/plain;base64,", "a.txt", "stimulus", "empty"),
    ("data:text/csv;base64,d29yZCxvbnNldApiLDIKYSwx", "t.csv", "stimulus", "decrease"),
    ("data:text/csv;base64,MSwyCjMsb29wcwo=", "b.csv", "brain", "non-numeric value 'oops'"),
    ("data:text/plain;base64,MSwy", "b.nii", "brain", ".npy or .csv"),
    ("data:application/octet-stream;base64,gASVCAAAAAAAAACMBHBvc3iULg==", "t.npy", "templates", "pickled Python objects, which are never loaded"),
])
def test_bad_uploads_are_clear_errors(contents: str, name: str, kind: str, message: str):
    with pytest.raises(OrganizationError, match=message):
        uploads.describe(kind, uploads.decode(contents, name), 2.5)


def test_a_link_to_an_evicted_upload_asks_for_it_again(cache_dir: Path):
    from explorer.cache import ResultCache

    cache = ResultCache(cache_dir)
    upload = uploads.Upload("bold.npy", b"123")
    assert uploads.fetch(cache, {"brain": uploads.store(cache, upload), "stimulus": ""}) == {"brain": upload}
    with pytest.raises(OrganizationError, match="brain file of this link is not in the cache"):
        uploads.fetch(cache, {"brain": "0" * 24})
    assert from_hash("#o_brain=../../etc/passwd")[1] == ["brain='../../etc/passwd' is not an upload key; ignored"]


def test_the_link_keeps_other_pages_keys():
    own = to_hash(parse({"model": "alpha", "k": 3})[0])
    kept = with_other_pages(own, "#m=beta&p=in+the&s=4&o_k=5")
    assert kept.startswith(own + "&") and "p=in+the" in kept and "s=4" in kept
    assert "o_k=5" not in kept and "m=beta" not in kept  # this page's own keys come from its settings
    assert with_other_pages("", "#p=x") == "#p=x" and with_other_pages(own, None) == own


@pytest.mark.browser
def test_page_runs_the_simulator(dash_duo, model_root: Path, cache_dir: Path) -> None:
    from explorer.app import create_app

    app = create_app([model_root], cache_dir)
    query = "&".join(f"o_{k}={v}" for k, v in SMALL.items())
    dash_duo.start_server(app)
    open_link(dash_duo, f"/organization#{query}&p=abc&s=2")
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
    assert "p=abc" in dash_duo.driver.current_url and "s=2" in dash_duo.driver.current_url
    # leaving the page keeps the prompt and step the other views show
    dash_duo.find_element("a.nav-link[href='/']").click()
    wait_until(lambda: dash_duo.find_element("#sp-prompt").get_attribute("value") == "abc")
    wait_until(lambda: "".join(dash_duo.driver.execute_script(
        "return document.getElementById('sp-step-label').textContent")).startswith("step 2 of"))
    logs = [e for e in dash_duo.get_logs() or [] if e.get("level") == "SEVERE"]
    assert logs == []


@pytest.mark.browser
def test_page_runs_on_uploaded_files(dash_duo, model_root: Path, cache_dir: Path, recorded: Path) -> None:
    from explorer.app import create_app

    dash_duo.start_server(create_app([model_root], cache_dir))
    open_link(dash_duo, "/organization#o_source=upload&m=alpha&o_k=3&o_n_perm=20")
    dash_duo.wait_for_contains_text("#fo-msg", "upload stimulus, brain, templates first", timeout=30)
    assert dash_duo.find_element("#fo-upload-box").get_attribute("open")  # opened for the "upload" source
    bad = recorded / "bad.csv"
    bad.write_text("1,2\n3,oops\n", encoding="utf-8")
    dash_duo.find_element("#fo-brain-upload input[type=file]").send_keys(str(bad))
    dash_duo.wait_for_contains_text("#fo-brain-status", "non-numeric value 'oops'", timeout=30)
    for kind, name in (("stimulus", "story.txt"), ("brain", "bold.npy"), ("templates", "networks.csv")):
        dash_duo.find_element(f"#fo-{kind}-upload input[type=file]").send_keys(str(recorded / name))
        dash_duo.wait_for_contains_text(f"#fo-{kind}-status", f"✓ {name}", timeout=30)
    wait_until(lambda: dash_duo.find_element("#fo-go").is_enabled())
    dash_duo.find_element("#fo-go").click()
    dash_duo.wait_for_contains_text("#fo-note", "Recorded data: story.txt (60 words)", timeout=60)
    dash_duo.wait_for_contains_text("#fo-similarity-table", "Language", timeout=30)
    assert "o_brain=" in dash_duo.driver.current_url and "o_templates=" in dash_duo.driver.current_url
    no_console_errors(dash_duo)
