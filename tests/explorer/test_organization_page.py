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
from explorer.organization_run import compute
from explorer.state import OrgSettings, ViewState, from_dict, from_hash, to_hash

import dash

from explorer.pages import organization as page
from explorer.state import import_document, to_dict

from .browser import no_console_errors, open_link, text, wait_until
from .conftest import make_checkpoint

SMALL = dict(n_tr=80, nodes=8, units=4, voxels=240, k_true=3, k=3, n_perm=20)


def parse(values: dict) -> tuple[OrgSettings, list[str]]:
    """Organisation settings from long names, validated by the view state."""
    state, warnings = from_dict({"org": values})
    return state.org, warnings


@pytest.fixture(scope="module")
def sim_result():
    settings, warnings = parse(SMALL)
    assert warnings == []
    return compute(settings, None, lambda f, m: None)


def test_hash_round_trip_and_clamping():
    s = ViewState(model="alpha", prompt="x", step=2, org=OrgSettings(source="model", text="a b c", k=4, alpha=0.5, atom=2))
    assert from_hash(to_hash(s)) == (s, [])
    assert to_hash(ViewState(org=OrgSettings())) == ""
    got, warnings = from_hash("#m=x&p=prompt&o_k=99&o_source=bad&o_alpha=nan&o_word_rate=1e999")
    assert got.model == "x" and got.prompt == "prompt"
    assert (got.org.k, got.org.source, got.org.alpha, got.org.word_rate) == (32, "sim", 0.2, 2.5)
    assert warnings == ["source='bad' is not one of sim, model, upload; using sim",
                        "word_rate='1e999' is not a finite number; using 2.5", "k=99 is outside 1..32; using 32",
                        "alpha='nan' is not a finite number; using 0.2"]
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
    assert rows[0]["formula"].startswith("diversity =") and any("lexical control: non-lexical share" == r["measure"]
                                                                for r in rows)


def test_checkpoint_mode_with_simulated_brain(model_root: Path):
    ckpt = load_checkpoint(model_root / "alpha", device="cpu")
    settings, _ = parse({"source": "model", "text": " ".join(["abc de, fgh!"] * 30), "k": 3,
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
    settings, warnings = parse({"source": "upload", **RECORDED, **keys})
    assert warnings == [] and from_hash(to_hash(ViewState(model="alpha", org=settings)))[0].org == settings
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


def services_of(model_root: Path, cache_dir: Path):
    """The app's services, without an app."""
    from explorer.cache import ResultCache
    from explorer.context import Services
    from explorer.registry import Registry

    return Services(Registry([model_root]), ResultCache(cache_dir))


def typed(state: ViewState, **changes) -> list:
    """The page's form showing ``state`` with some controls retyped (as the browser sends them: text)."""
    values = dict(zip(page.FORM, page.form_values(state)))
    return [str(changes.get(name, values[name])) if name in changes else values[name] for name in page.FORM]


def test_reducer_keeps_other_pages_keys_and_cancel_restores_the_shown_settings(model_root: Path, cache_dir: Path):
    services = services_of(model_root, cache_dir)
    url = "#m=beta&p=in+the&s=4&o_k=5"
    opened = page.reduce(services, "", url, None, None, None, [None] * len(page.FORM), 0)
    state = from_dict(opened["state"])[0]
    assert (state.model, state.prompt, state.step, state.org.k) == ("beta", "in the", 4, 5)
    assert opened["hash"] == url and opened["form"][page.FORM.index("k")] == 5
    assert opened["request"]["k"] == 5 and opened["request"]["model"] == ""  # the simulator reads no checkpoint
    # Run with typed settings: the link keeps the other views' prompt and step
    ran = page.reduce(services, page.ID.frame.go, url, opened["state"], None, "beta",
                      typed(state, k="7", n_perm="99999"), 1)
    assert "p=in+the" in ran["hash"] and "s=4" in ran["hash"] and "o_k=7" in ran["hash"]
    assert ran["request"]["k"] == 7 and ran["request"]["n_perm"] == 2000 and ran["request"]["run"] == 1
    assert "n_perm=99999 is outside 10..2000; using 2000" in str(ran["msg"])
    # Cancel: the form and the link return to what the result on screen (the link's run) was made from
    meta = {"request": opened["request"], "key": "organization:x"}
    cancelled = page.reduce(services, page.ID.frame.cancel, ran["hash"], ran["state"], meta, "beta",
                            typed(state, k="7"), 1)
    assert cancelled["hash"] == url and cancelled["form"][page.FORM.index("k")] == 5 and cancelled["model"] == "beta"
    assert cancelled["request"] is dash.no_update  # nothing runs
    empty = page.reduce(services, page.ID.frame.cancel, ran["hash"], ran["state"], None, "beta", [], 1)
    assert empty["hash"] == "#m=beta&p=in+the&s=4"  # nothing was computed: default settings


def downstream(app: dash.Dash, start: str) -> set[str]:
    """Every 'id.property' a change of ``start`` leads to through callback inputs: what dash-renderer holds
    back (a callback with such an input waits) while the callback writing ``start`` runs."""
    edges = []
    for key, spec in app.callback_map.items():
        outputs = key[2:-2].split("...") if key.startswith("..") else [key]
        edges.append(({f"{d['id']}.{d['property']}" for d in spec["inputs"]}, {o.split("@", 1)[0] for o in outputs}))
    touched, grown = {start}, True
    while grown:
        grown = False
        for inputs, outputs in edges:
            if inputs & touched and not outputs <= touched:
                touched |= outputs
                grown = True
    return touched


def test_picking_an_atom_does_not_wait_for_a_running_job(model_root: Path, cache_dir: Path, sim_result):
    from explorer.app import create_app

    app = create_app([model_root], cache_dir)
    held = downstream(app, f"{page.ID.frame.meta}.data")  # while a job runs
    assert f"{page.ID.subgroup}.figure" in held and f"{page.ID.atom}.value" not in held
    pickers = [spec for spec in app.callback_map.values()
               if {"id": page.ID.atom, "property": "value"} in spec["inputs"]]
    assert pickers and all(f"{d['id']}.{d['property']}" not in held for spec in pickers for d in spec["inputs"])
    # the picked atom's view is drawn from the result on screen
    services = services_of(model_root, cache_dir)
    services.cache.set("organization:x", sim_result)
    meta = {"key": "organization:x"}
    view = page.atom_event(services, 2, meta)
    assert len(view) == len(page.ATOM_VIEW) and "Atom 2" in view[1].layout.title.text
    assert view[3] == page._records(page.subgroup_frame(sim_result, 2))[0]
    rendered = page.render(services, meta, to_dict(ViewState(org=OrgSettings(atom=2))))
    assert [str(v) for v in rendered[len(page.RENDERED):-1]] == [str(v) for v in view]
    assert page.atom_event(services, 2, None) == (dash.no_update,) * len(page.ATOM_VIEW)
    assert "Atom 2" in page.atom_event(services, 7, meta)[1].layout.title.text  # clamped to the run's 3 atoms


def test_export_carries_the_whole_view(model_root: Path, cache_dir: Path, sim_result):
    services = services_of(model_root, cache_dir)
    services.cache.set("organization:x", sim_result)
    state = ViewState(model="beta", prompt="ab", org=OrgSettings(k=3, n_perm=20, atom=2, brain="a" * 24))
    doc = page.export(services, page.ID.json, {"key": "organization:x"}, {**to_dict(state)})
    view, back, warnings = import_document(doc["content"])
    assert (view, back, warnings) == ("organization", state, [])


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
def test_atom_picker_answers_while_a_job_runs(dash_duo, model_root: Path, cache_dir: Path, slow_jobs: Path) -> None:
    from explorer.app import create_app

    dash_duo.start_server(create_app([model_root], cache_dir))
    open_link(dash_duo, "/organization#" + "&".join(f"o_{k}={v}" for k, v in SMALL.items()))
    dash_duo.wait_for_contains_text("#fo-measures", "diversity", timeout=60)
    slow_jobs.touch()
    dash_duo.find_element("#fo-go").click()  # Run again: the job is held before it starts
    wait_until(lambda: dash_duo.find_element("#fo-cancel").is_enabled())
    dash_duo.select_dcc_dropdown("#fo-atom", "atom 2")
    dash_duo.wait_for_contains_text("#fo-subgroup", "Atom 2", timeout=10)
    wait_until(lambda: "o_atom=2" in dash_duo.driver.current_url)
    assert dash_duo.find_element("#fo-cancel").is_enabled()  # the job is still running
    slow_jobs.unlink()
    wait_until(lambda: not dash_duo.find_element("#fo-cancel").is_enabled(), timeout=60)
    dash_duo.wait_for_contains_text("#fo-subgroup", "Atom 2", timeout=10)  # the new result keeps the atom picked
    no_console_errors(dash_duo)


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


CONTROLS = """return arguments[0].map(function (id) {
  var el = document.getElementById(id);
  if (!el) return null;
  if (el.matches('input, textarea')) return el.value;
  var checked = el.querySelector('input:checked');
  return checked ? checked.value : el.textContent;
});"""


def controls(dash_duo) -> list:
    """Every control's value as the page shows it: the form, the checkpoint and the atom."""
    return dash_duo.driver.execute_script(CONTROLS, [page.ID.form[f] for f in page.FORM] + ["fo-model", "fo-atom"])


@pytest.mark.browser
def test_export_reopens_the_page_as_it_was(dash_duo, model_root: Path, cache_dir: Path) -> None:
    from explorer.app import create_app

    dash_duo.start_server(create_app([model_root], cache_dir))
    query = "&".join(f"o_{k}={v}" for k, v in SMALL.items())
    open_link(dash_duo, f"/organization#m=beta&{query}&o_seed=3&o_method=ols&o_alpha=0.35&o_text=a+b&p=ab&s=1")
    dash_duo.wait_for_contains_text("#fo-measures", "diversity", timeout=60)
    dash_duo.select_dcc_dropdown("#fo-atom", "atom 2")
    wait_until(lambda: "o_atom=2" in dash_duo.driver.current_url)
    dash_duo.wait_for_contains_text("#fo-subgroup", "Atom 2", timeout=10)
    shown, link = controls(dash_duo), dash_duo.driver.current_url
    assert shown[page.FORM.index("seed")] == "3" and shown[page.FORM.index("method")] == "ols" and "atom 2" in shown[-1]
    dash_duo.find_element("#fo-json").click()
    path = Path(dash_duo.download_path) / "brillm-organization.json"
    wait_until(lambda: path.exists() and path.read_text())
    open_link(dash_duo, "/organization#o_k=4&o_n_perm=20&o_n_tr=80&o_voxels=240")  # the page moves on
    wait_until(lambda: controls(dash_duo)[page.FORM.index("k")] == "4")
    dash_duo.find_element("#open-view input[type=file]").send_keys(str(path))
    wait_until(lambda: "o_atom=2" in dash_duo.driver.current_url)
    dash_duo.wait_for_contains_text("#fo-subgroup", "Atom 2", timeout=60)
    wait_until(lambda: controls(dash_duo) == shown)
    assert dash_duo.driver.current_url == link
    no_console_errors(dash_duo)


@pytest.mark.browser
def test_the_verdict_heads_the_page_and_says_what_each_p_asks(dash_duo, model_root: Path, cache_dir: Path) -> None:
    from explorer.app import create_app

    dash_duo.start_server(create_app([model_root], cache_dir))
    open_link(dash_duo, "/organization#" + "&".join(f"o_{k}={v}" for k, v in SMALL.items()))
    dash_duo.wait_for_contains_text("#fo-verdict", "Lexical control:", timeout=60)
    verdict = text(dash_duo, "#fo-verdict")
    assert "What it means:" in verdict and "p = " in verdict
    # the three questions, each with its own p: beating the mean is not the same question as adding to the control
    assert "answers: do the model's atoms predict held-out brain data better than its mean?" in verdict
    assert "answers: does the part of the model's atoms that the lexical control cannot give add" in verdict
    above = dash_duo.driver.execute_script(
        "return document.getElementById('fo-verdict').getBoundingClientRect().top"
        " < document.getElementById('fo-measures').getBoundingClientRect().top")
    assert above and "verdict" not in text(dash_duo, "#fo-measures")  # no longer a row of the measures table
    no_console_errors(dash_duo)


@pytest.mark.browser
def test_charts_show_an_empty_state_and_the_run_says_what_it_does(dash_duo, model_root: Path, cache_dir: Path,
                                                                   slow_jobs: Path, monkeypatch) -> None:
    from explorer.app import create_app
    run = page.run_job

    def every_stage_shown(services, set_progress, request):
        """The page's job, each stage's first message held for a few of the page's progress polls (a stage of
        this small run can end between two polls)."""
        stages: set[str] = set()

        def progress(value) -> None:
            set_progress(value)
            stage = str(value[1]).split(":")[0]
            if stage not in stages:
                stages.add(stage)
                time.sleep(0.6)

        return run(services, progress, request)

    monkeypatch.setattr(page, "run_job", every_stage_shown)  # before the app forks its job helper
    dash_duo.start_server(create_app([model_root], cache_dir))
    slow_jobs.touch()
    open_link(dash_duo, "/organization#" + "&".join(f"o_{k}={v}" for k, v in SMALL.items()))
    wait_until(lambda: dash_duo.find_element("#fo-cancel").is_enabled())
    for chart in ("fo-atoms", "fo-subgroup", "fo-map", "fo-similarity"):  # while the first run is held
        assert "No result yet" in text(dash_duo, f"#{chart}")
        assert not dash_duo.find_elements(f"#{chart} .xtick")  # no empty axes
    seen: set[str] = set()
    slow_jobs.unlink()

    def finished() -> bool:
        seen.add(text(dash_duo, "#fo-status"))
        return not dash_duo.find_element("#fo-cancel").is_enabled()

    wait_until(finished, timeout=120)
    # what the job is doing, down to the copy of the phase null and the test of the control it is on
    assert any("phase null: copy" in m for m in seen) and any(m.startswith("control: lexical: ") for m in seen), seen
    dash_duo.wait_for_contains_text("#fo-verdict", "Lexical control:", timeout=30)
    assert dash_duo.find_elements("#fo-atoms .xtick")
    no_console_errors(dash_duo)


@pytest.mark.browser
def test_a_stimulus_mostly_unknown_to_the_model_is_warned_about(dash_duo, model_root: Path, cache_dir: Path,
                                                                tmp_path: Path) -> None:
    from explorer.app import create_app

    few = tmp_path / "models"
    make_checkpoint(few / "few", seed=3, hidden=4, chars=list("abcde ."))  # most of the story is unknown to it
    dash_duo.start_server(create_app([few], cache_dir))
    open_link(dash_duo, "/organization#m=few&o_source=model&o_k=3&o_n_perm=20")
    dash_duo.wait_for_contains_text("#fo-msg", "map to the model's unknown node", timeout=120)
    message = text(dash_duo, "#fo-msg")
    assert "stimulus tokens (" in message and " %) map to the model's unknown node" in message
    no_console_errors(dash_duo)
