"""Compare checkpoints: tables and figures equal the engine's numbers; the page in a browser."""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import dash
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from brillm_core import (Checkpoint, CharTokenizer, DecodeSettings, compare_paths, edge_changes, edge_effects,
                         js_divergence, largest_shift, load_checkpoint, path_energy_changes, random_model,
                         training_record)
from explorer.app import create_app
from explorer.figures import compare as figs
from explorer.pages import compare as page
from explorer import pathview
from explorer.state import ViewState, from_dict, from_hash, to_hash
from selenium.webdriver.common.keys import Keys

from ..short_run import STEPS, train_short_run
from .browser import no_console_errors, open_link, text, texts, wait_until

CHARS = list(string.ascii_lowercase + " .,!")
TRAINER_LOSSES = [3.0, 2.5, 2.25]


def save(directory: Path, seed: int, chars: list[str], metadata: dict) -> Path:
    """A tiny random character-level checkpoint (d = 6)."""
    model = random_model(len(chars), 6, 0.3, seed=seed, max_positions=64, name=directory.name)
    return Checkpoint(model, CharTokenizer(chars), metadata).save(directory)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """'one' and 'two' share a vocabulary (different losses in metadata); 'other' does not; 'early' and 'best'
    are two checkpoints of one short training run (loss and validation histories)."""
    root = tmp_path_factory.mktemp("compare-models")
    save(root / "one", 1, CHARS, {"training": {"loss_history": TRAINER_LOSSES}})
    save(root / "two", 2, CHARS, {})
    save(root / "other", 3, CHARS[::-1], {})
    early, best = train_short_run(tmp_path_factory.mktemp("compare-run"))
    shutil.copytree(early, root / "early")
    shutil.copytree(best, root / "best")
    return root


@pytest.fixture(scope="module")
def pair(root: Path) -> tuple[Checkpoint, Checkpoint]:
    return load_checkpoint(root / "one", device="cpu"), load_checkpoint(root / "two", device="cpu")


@pytest.fixture(scope="module")
def comparison(pair):
    return compare_paths(*pair, "ab", DecodeSettings(max_new_tokens=6))


def test_step_table_equals_engine(pair, comparison) -> None:
    a, _ = pair
    frame = figs.step_table(comparison, a.token)
    engine = comparison.to_frame()
    for column in engine.columns:
        np.testing.assert_array_equal(frame[column].to_numpy(), engine[column].to_numpy())
    assert list(frame["token_a"]) == [a.token(int(n)) for n in comparison.trace_a.targets]
    for i, row in frame.iterrows():
        assert row["rank_b"] == comparison.b_on_a.step(i).chosen_rank
        assert row["probability_b"] == comparison.b_on_a.step(i).chosen_probability
        assert row["js_divergence"] == js_divergence(comparison.trace_a.step(i).probabilities,
                                                     comparison.b_on_a.step(i).probabilities)


def test_figures_carry_the_table(pair, comparison) -> None:
    frame = figs.step_table(comparison, pair[0].token)
    first = comparison.first_divergence
    assert first is not None  # two random models part at the first generated step
    ranks = go.Figure(figs.rank_probability(frame, first))  # also: a valid plotly figure
    by_name = {(t.name, t.yaxis): t for t in ranks.data}
    np.testing.assert_array_equal(by_name[("under A", "y")].y, frame["rank_a"])
    np.testing.assert_array_equal(by_name[("under B", "y")].y, frame["rank_b"])
    np.testing.assert_array_equal(by_name[("under A", "y2")].y, frame["probability_a"])
    np.testing.assert_array_equal(by_name[("under B", "y2")].y, frame["probability_b"])
    assert [s.x0 for s in ranks.layout.shapes if s.line.dash == "dash"] == [first, first]
    js = go.Figure(figs.js_bars(frame, first))
    np.testing.assert_array_equal(js.data[0].y, frame["js_divergence"])
    assert go.Figure(figs.js_bars(frame.iloc[0:0], None)).data == ()


def test_edge_table_names_tokens_and_flags(pair) -> None:
    a, b = pair
    engine = edge_changes(a.model, b.model, None)
    table = figs.edge_table(engine, a.token)
    np.testing.assert_array_equal(table["weight_change"], engine["weight_change"])
    np.testing.assert_array_equal(table["bias_change"], engine["bias_change"])
    shared = table[table["source"] == -1]
    assert list(shared["source_token"]) == [figs.SHARED_ROW] and list(shared["target_token"]) == [figs.SHARED_ROW]
    own = table[table["source"] >= 0].iloc[0]
    assert own["source_token"] == a.token(int(own["source"]))
    assert (table["own_row_change"] == "gained").tolist() == engine["gained_own_row"].tolist()
    assert (table["own_row_change"] == "lost").tolist() == engine["lost_own_row"].tolist()
    assert table["gained_own_row"].any() and table["lost_own_row"].any()


def test_training_curves_draw_both_runs_and_say_why_one_is_missing(pair, root: Path) -> None:
    a, b = pair
    records = {"a": training_record(a), "b": training_record(b)}
    assert records["a"].loss["loss"].tolist() == TRAINER_LOSSES and records["b"].loss.empty
    fig = figs.training_curves(records)
    assert [t.name for t in fig.data] == ["A"] and list(fig.data[0].y) == TRAINER_LOSSES  # empty curves left out
    notes = figs.training_notes(records, {"a": "one", "b": "two"})
    assert notes == ["No loss curve for B (two): its metadata.json records no training run (it was not made by "
                     "brillm train)."]
    nothing = figs.training_curves({"a": records["b"], "b": records["b"]})
    assert "no training run" in nothing.layout.annotations[0].text  # an empty chart says why
    early, best = (training_record(load_checkpoint(root / n, device="cpu")) for n in ("early", "best"))
    run = figs.training_curves({"a": early, "b": best})
    by_axis = {(t.name, t.yaxis): t for t in run.data}
    assert list(by_axis[("B", "y")].y) == best.loss["loss"].tolist()  # both loss curves, B under A ...
    assert list(by_axis[("A", "y")].y) == early.loss["loss"].tolist() and by_axis[("A", "y")].line.dash == "dash"
    assert list(by_axis[("B", "y2")].y) == best.validation["perplexity"].tolist()  # ... and both validations
    assert list(by_axis[("A", "y2")].x) == [0, STEPS[0]]
    assert sorted(s.x0 for s in run.layout.shapes) == list(STEPS)  # each checkpoint's own step marked
    assert figs.training_notes({"a": early, "b": best}, {}) == [
        f"A and B are checkpoints of one training run (A at step {STEPS[0]}, B at step {STEPS[1]})."]
    same = figs.step_table(compare_paths(a, a, "ab", DecodeSettings(max_new_tokens=2)), a.token)
    ranks = go.Figure(figs.rank_probability(same, None))
    assert {t.line.color for t in ranks.data if t.legendgroup == "a"} == {figs.COLOUR["a"]}


def test_the_sentence_names_the_shift_and_the_edges_that_made_it(pair, comparison) -> None:
    a, b = pair
    shift = largest_shift(comparison)
    effects = edge_effects(comparison, a.model, b.model, [(shift.step, shift.lost), (shift.step, shift.gained)])
    sentence = figs.shift_sentence(shift, effects, a.token)
    lost, gained = (f"'{a.token(n)}'" for n in (shift.lost, shift.gained))
    source = f"'{a.token(shift.source)}'"
    assert sentence.startswith(f"At step {comparison.first_divergence}, after {source}, B moved probability from "
                               f"{lost} (p {effects.iloc[0].probability_a:.3g} → {effects.iloc[0].probability_b:.3g})"
                               f" to {gained}")
    assert f"{source} → {gained} changed its energy by {figs.signed(effects.iloc[1].energy_change)}" in sentence
    for part in ("its bias", "the signal", "its matrix"):
        assert part in sentence
    gap = effects.iloc[1].energy_change - effects.iloc[0].energy_change
    assert gap > 0 and f"{gained} gained {gap:.3g} on {lost}" in sentence
    assert figs.shift_sentence(None, effects.iloc[0:0], a.token).startswith("B gives the same")


def test_step_store_labels_and_cursors(pair) -> None:
    a, b = pair
    comparison = compare_paths(a, b, "ab", DecodeSettings(max_new_tokens=4))
    frame = figs.step_table(comparison, a.token)
    store = page.step_store(comparison, frame, a.token)
    steps = comparison.trace_a.num_steps
    assert store["n"] == steps == len(store["labels"]) and store["chip_starts"] == [0, steps + 1]
    assert len(store["chips"]) == 2 * (steps + 1)
    for i, label in enumerate(store["labels"]):
        s = comparison.trace_a.step(i)
        assert label.startswith(f"step {i} of 0–{steps - 1}: A takes") and f"A: rank {s.chosen_rank}," in label
        assert f"B: rank {comparison.b_on_a.step(i).chosen_rank}, p = {comparison.b_on_a.step(i).chosen_probability:.3g}" \
            in label
    for fig in store["figures"]:
        assert fig["kind"] == "cursor" and len(fig["frames"]) == steps
        assert [f["layout"]["shapes"][-1]["x0"] for f in fig["frames"]] == [i - 0.5 for i in range(steps)]


def test_own_row_column_only_when_it_holds_something() -> None:
    assert "own_row_change" not in page.shown_edge_columns([{"own_row_change": ""}, {"own_row_change": ""}])
    assert "own_row_change" in page.shown_edge_columns([{"own_row_change": ""}, {"own_row_change": "gained"}])
    for columns in (page.EDGE_COLUMNS, page.PATH_COLUMNS, page.GROUP_COLUMNS):
        assert all(not c["name"].count("_") for c in page.table_columns(columns))  # human headers


def test_hash_round_trip_and_bad_names() -> None:
    state = ViewState(model="one", prompt="a b", max_new_tokens=5, model_b="two")
    assert from_hash(to_hash(state)) == (state, []) and "mb=two" in to_hash(state)
    assert pathview.resolve_other("", "one", ["one", "two"], "checkpoint B") == ("two", [])
    name, messages = pathview.resolve_other("../../etc", "one", ["one", "two"], "checkpoint B")
    assert name == "two" and "checkpoint B '../../etc', which is not in the configured model folders" in messages[0]


def test_shared_reducer_resolves_b_and_swaps_without_an_app() -> None:
    names = ["one", "two", "other"]
    form = [None] * len(pathview.FORM)

    def reduce(trigger: str, **values):
        return pathview.reduce(page.PAGE, trigger, names, lambda s: "one", **{
            "url": None, "model": None, "events": [None], "current": None, "meta": None, "form": form,
            "picked": [None], "slider": 0, **values})

    opened = reduce("", url="#m=one&p=ab&mb=nowhere")
    assert opened["pickers"] == ["two"] and "checkpoint B 'nowhere'" in str(opened["msg"])
    assert opened["request"]["model_b"] == "two" and "mb=two" in opened["hash"]
    swapped = reduce(page.ID.swap, url=opened["hash"], model="one", events=[1], current=opened["state"],
                     picked=["two"])
    assert swapped["model"] == "two" and swapped["pickers"] == ["one"]
    assert "m=two" in swapped["hash"] and "mb=one" in swapped["hash"] and swapped["request"]["model"] == "two"
    picked = reduce(page.ID.model_b, url=swapped["hash"], model="two", current=swapped["state"], picked=["other"])
    assert picked["request"]["model_b"] == "other" and picked["pickers"] == [dash.no_update]  # the picker shows it


# --- browser ---------------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_compare_two_checkpoints(dash_duo, root: Path, tmp_path: Path, comparison) -> None:
    dash_duo.start_server(create_app([root], tmp_path / "cache"))
    open_link(dash_duo, "/compare#m=one&p=ab&n=6&mb=two")
    wait_until(lambda: "diverge first at step" in text(dash_duo, "#cp-divergence"))
    assert f"step {comparison.first_divergence}:" in text(dash_duo, "#cp-divergence")
    assert len(dash_duo.find_elements("#cp-paths .chip")) == 2 * 8
    assert len(dash_duo.find_elements("#cp-paths .chip.diverge")) == 2
    # stepping happens in the browser: the label, the cursor and the current edge in both paths follow the keys
    wait_until(lambda: text(dash_duo, "#cp-step-label").startswith("step 0 of 0–6: A takes"))
    requests = "return performance.getEntriesByType('resource').filter(e => e.name.indexOf('_dash-update') >= 0).length"
    before = dash_duo.driver.execute_script(requests)
    dash_duo.find_element("body").send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: text(dash_duo, "#cp-step-label").startswith("step 1 of 0–6"))
    wait_until(lambda: len(dash_duo.find_elements("#cp-paths .chip.source")) == 2)
    cursor = dash_duo.driver.execute_script(
        "var s = document.querySelector('#cp-js .js-plotly-plot').layout.shapes; return s[s.length - 1].x0")
    assert cursor == 0.5 and dash_duo.driver.execute_script(requests) == before
    wait_until(lambda: len(dash_duo.find_elements("#cp-edges td")) > 0)
    wait_until(lambda: len(dash_duo.find_elements("#cp-loss .scatterlayer .trace")) == 1)  # only "one" was trained
    assert "No loss curve for B (two): its metadata.json records no training run" in text(dash_duo, "#cp-loss-notes")
    # the sentence, and the path's changes ranked by the probability B moved, with the traces' energies
    a, b = (load_checkpoint(root / n, device="cpu") for n in ("one", "two"))
    shift = largest_shift(comparison)
    cells = [(shift.step, shift.lost), (shift.step, shift.gained)]
    sentence = figs.shift_sentence(shift, edge_effects(comparison, a.model, b.model, cells), a.token)
    assert text(dash_duo, "#cp-summary") == sentence
    top = path_energy_changes(comparison, a.model, b.model, page.TOP_PATH_EDGES).iloc[0]
    first_row = texts(dash_duo, "#cp-path-changes tbody tr:nth-child(2) td")  # row 1 holds the headers
    assert first_row[:3] == [str(top.step), a.token(int(top.source)), a.token(int(top.target))]
    assert np.float32(first_row[6]) == np.float32(top.energy_a)  # the float32 energy, written exactly
    groups = texts(dash_duo, "#cp-groups tbody td:first-child")
    assert sorted(groups) == sorted(["edge matrices W", "edge biases b", "shared matrix W[0]", "shared bias b[0]",
                                         "node biases", "memory position logits"])
    dash_duo.find_element("#cp-json").click()  # at step 1: the file reopens this step
    path = Path(dash_duo.download_path) / "brillm-compare.json"
    doc = json.loads(wait_until(lambda: path.exists() and path.read_text()))
    assert doc["view"] == "compare" and doc["state"]["model"] == "one" and doc["state"]["model_b"] == "two"
    assert doc["state"]["step"] == 1
    assert "mb=two" in to_hash(from_dict(doc["state"])[0])  # "Open view file" reopens both checkpoints
    assert doc["data"]["first_divergence"] == comparison.first_divergence
    dash_duo.find_element("#cp-swap").click()
    wait_until(lambda: "m=two" in dash_duo.driver.current_url and "mb=one" in dash_duo.driver.current_url)
    wait_until(lambda: text(dash_duo, "#cp-paths .label").startswith("A · two"))
    no_console_errors(dash_duo)


@pytest.mark.browser
def test_compare_two_checkpoints_of_one_run_draws_both_training_curves(dash_duo, root: Path, tmp_path: Path) -> None:
    dash_duo.start_server(create_app([root], tmp_path / "cache"))
    open_link(dash_duo, "/compare#m=early&p=the%20cat&n=4&mb=best")
    wait_until(lambda: "moved probability from" in text(dash_duo, "#cp-summary")
               or "same next-node distribution" in text(dash_duo, "#cp-summary"))
    traces = "#cp-loss .scatterlayer .trace"
    wait_until(lambda: len(dash_duo.find_elements(traces)) == 4)  # loss and validation, A and B
    assert text(dash_duo, "#cp-loss-notes") == (f"A and B are checkpoints of one training run (A at step {STEPS[0]}, "
                                                f"B at step {STEPS[1]}).")
    no_console_errors(dash_duo)


@pytest.mark.browser
def test_compare_refuses_different_vocabularies(dash_duo, root: Path, tmp_path: Path) -> None:
    dash_duo.start_server(create_app([root], tmp_path / "cache"))
    open_link(dash_duo, "/compare#m=one&p=ab&mb=other")
    wait_until(lambda: "different vocabularies" in text(dash_duo, "#cp-msg"))
    assert dash_duo.find_elements("#cp-paths .chip") == []
    dash_duo.driver.get(dash_duo.server_url + "/compare#m=one&p=ab&mb=..%2Fnowhere")
    wait_until(lambda: "checkpoint B '../nowhere'" in text(dash_duo, "#cp-msg-state"))
    no_console_errors(dash_duo)
