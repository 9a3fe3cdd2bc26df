"""Teaching mode: the numbers shown are the engine's; guess, reveal and tour in a browser."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from markupsafe import escape
from selenium.webdriver.common.keys import Keys

from brillm_core import Checkpoint, DecodeSettings, StepExplanation, Trace, explain_step, load_checkpoint
from explorer.app import create_app
from explorer.cache import ResultCache
from explorer.context import Services
from explorer.compute import settings_of
from explorer.figures import signal
from explorer.figures import teaching as figs
from explorer.figures.common import show_token, token_label
from explorer.pages import teaching as page
from explorer.state import ViewState
from .browser import open_link, text, wait_until

SAMPLE = Path(__file__).resolve().parents[2] / "sample_models" / "teaching"


@pytest.fixture(scope="module")
def trace(ckpt: Checkpoint):
    return ckpt.trace("hello", DecodeSettings(max_new_tokens=3))


class Elements(HTMLParser):
    """Every element of a markup string: (tag, attributes, its text), in document order."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str], list[str]]] = []
        self.open: list[list[str]] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open.append([])
        self.found.append((tag, {k: v or "" for k, v in attrs}, self.open[-1]))

    def handle_endtag(self, tag: str) -> None:
        self.open.pop()

    def handle_data(self, data: str) -> None:
        for texts in self.open:
            texts.append(data)


def spans(markup: str, class_name: str) -> list[dict[str, str]]:
    """The elements of a markup string with the given class: their attributes, with their text as 'text'."""
    return [{**attrs, "text": "".join(texts)} for _, attrs, texts in Elements(markup).found
            if attrs.get("class") == class_name]


def engine_numbers(ex) -> dict[str, list[float]]:
    """The explanation's numbers by part, in the order the terms list them."""
    memory = [*ex.memory_weights.tolist(), *ex.memory_terms.reshape(-1).tolist()] if ex.step else []
    return {"memory": memory, "signal": ex.signal.tolist(), "product": ex.product.tolist() + ex.weight.reshape(-1).tolist(),
            "bias": ex.bias.tolist(), "pe": ex.pe.tolist(), "pre_activation": ex.pre_activation.tolist(),
            "output": ex.output.tolist(), "energy": [ex.energy], "softmax": [ex.log_normaliser, ex.probability]}


def test_feedback_explains_a_tie(ckpt: Checkpoint, trace) -> None:
    for i in range(trace.num_steps):
        step = trace.step(i)
        best = page.best_nodes(step)
        energies = torch.nan_to_num(step.energies, nan=-math.inf)
        values, counts = torch.unique(energies[energies < energies.max()], return_counts=True)
        if (counts > 1).any():
            tied = float(values[counts > 1][0])
            guess = int(torch.nonzero(energies == tied)[0])
            text = page.feedback(step, guess, best, ckpt.token)
            assert f"tied with {int((energies == tied).sum()) - 1} other candidate" in text and "shared row 0" in text
            lone = [n for n in range(len(energies)) if math.isfinite(float(energies[n]))
                    and int((energies == energies[n]).sum()) == 1 and n not in best]
            assert not lone or "tied" not in page.feedback(step, lone[0], best, ckpt.token)
            return
    pytest.fail("the test trace has no tied candidates to explain")


@pytest.mark.parametrize("step, target", [(0, None), (3, None), (5, 7)])
def test_terms_are_the_engines_numbers(ckpt: Checkpoint, trace, step: int, target: int | None) -> None:
    ex = explain_step(ckpt.model, trace, step, target)
    terms = figs.formula_terms(ex, ckpt.token)
    expected = engine_numbers(ex)
    assert [t.key for t in terms] == list(expected)
    for term in terms:
        numbers = [v for _, vec in term.lines for v in vec] + [v for row in term.matrix for v in row]
        assert numbers == expected[term.key], term.key
        shown = spans(page.term_block(term, False), "num")
        assert [s["title"] for s in shown] == [repr(v) for v in numbers]
        assert [s["text"] for s in shown] == [figs.fmt(v) for v in numbers]
    frame = figs.terms_frame(terms)
    assert sorted(frame["value"]) == sorted(v for vs in expected.values() for v in vs)
    # the printed step agrees with the trace the page shows
    node = trace.step(step).target if target is None else target
    assert ex.energy == pytest.approx(float(trace.energies[step, node]), rel=1e-5)
    assert ex.probability == pytest.approx(float(trace.probabilities[step, node]), rel=1e-4)
    if step:
        torch.testing.assert_close(ex.memory_terms.sum(0), ex.signal)


def test_hidden_terms_show_no_numbers(ckpt: Checkpoint, trace) -> None:
    terms = figs.formula_terms(explain_step(ckpt.model, trace, 2), ckpt.token)
    for term in terms:
        block = page.term_block(term, term.depends_on_target)
        assert bool(spans(block, "num")) != term.depends_on_target
        if term.depends_on_target:
            assert escape(token_label(trace.step(2).target, ckpt.token)) not in block


def test_each_tour_card_points_at_a_part_that_shows_numbers() -> None:
    keys = {t.key for t in figs.formula_terms(explain_step(*_small_step()), lambda n: str(n))}
    for position, (target, _, _) in enumerate(page.TOUR):
        chips, quiz, formula = page.tour_classes(position)
        assert ("tour-focus" in chips) == (target == "chips") and ("tour-focus" in quiz) == (target == "quiz")
        if target not in ("chips", "quiz"):
            assert formula == f"formula focus-{target}" and target in keys
            assert page.TOUR_TARGETS[position] == f"te-part-{target}"
    assert page.tour_classes(-1) == ("chips", "controls quiz", "formula")
    css = (Path(__file__).resolve().parents[2] / "assets" / "compare-teaching.css").read_text()
    for target, _, _ in page.TOUR[2:]:  # the page's CSS highlights the part of every formula card
        assert f".formula.focus-{target} #te-part-{target}" in css


def _small_step():
    """A model, a trace and a step for figures that need any explanation."""
    from brillm_core import random_model, CharTokenizer
    ckpt = Checkpoint(random_model(5, 4, 0.5, seed=3), CharTokenizer(list("abcde")))
    return ckpt.model, ckpt.trace("ab", DecodeSettings(max_new_tokens=2)), 1


def test_the_stage_heatmap_draws_zero_white() -> None:
    heat = figs.stage_base()["data"][0]  # as the browser gets it: plotly.js's own "RdBu" is grey in the middle
    middle = (0 - heat["zmin"]) / (heat["zmax"] - heat["zmin"])  # where a share of 0 sits on the scale
    assert dict((at, colour) for at, colour in heat["colorscale"])[middle] == "#ffffff"
    assert "0 is white" in figs.STAGE_COLOURS


def test_stage_heatmap_rows_are_the_vectors(ckpt: Checkpoint, trace) -> None:
    ex = explain_step(ckpt.model, trace, 4)
    values = figs.stage_heatmap(ex, ckpt.token).data[0].text  # the cells' labels and hover: the engine's values
    for row, (name, _) in zip(values, figs.STAGES):
        assert list(row) == getattr(ex, name).tolist()


def colour_positions(heat) -> np.ndarray:
    """Where each cell of a heatmap sits on its colour scale (0 = one end, 1 = the other), as plotly draws it:
    between zmin and zmax when set, else symmetric around zmid, else over the data's range."""
    z = np.array(heat.z, dtype=float)
    if heat.zmin is not None and heat.zmax is not None:
        lo, hi = heat.zmin, heat.zmax
    elif heat.zmid is not None:
        half = np.abs(z - heat.zmid).max()
        lo, hi = heat.zmid - half, heat.zmid + half
    else:
        lo, hi = z.min(), z.max()
    return (z - lo) / (hi - lo)




def explained_steps(path: Path, prompt: str) -> tuple[Checkpoint, Trace, list[tuple[int, StepExplanation]]]:
    """A bundled checkpoint, its trace of ``prompt`` with 2 new tokens, and every step explained."""
    ckpt = load_checkpoint(path, device="cpu")
    trace = ckpt.trace(prompt, DecodeSettings(max_new_tokens=2))
    return ckpt, trace, [(step, explain_step(ckpt.model, trace, step)) for step in range(trace.num_steps)]


def test_stage_heatmap_colours_every_unit_when_one_unit_dwarfs_the_others(tmp_path: Path) -> None:
    from brillm_core import CharTokenizer, random_model

    model = random_model(6, 4, 0.5, seed=5)
    with torch.no_grad():  # an energy channel near 5e4 that W hardly reads, as a count-built start has it
        model.biases[:, 0, 0] += 5e4
        model.weights.mul_(1e-6)
    Checkpoint(model, CharTokenizer(list("abcdef"))).save(tmp_path / "big")
    ckpt, trace, explained = explained_steps(tmp_path / "big", "abca")
    for step, ex in explained:
        heat = figs.stage_heatmap(ex, ckpt.token).data[0]
        values = np.stack([getattr(ex, name).detach().numpy() for name, _ in figs.STAGES]).astype(float)  # (stages, d)
        assert abs(values[:, 0]).max() > 10 * abs(values[:, 1:]).max()  # unit 0 dwarfs the others
        positions = colour_positions(heat)
        for unit in range(values.shape[1]):  # every unit's largest |value| reaches an end of the colour scale
            assert abs(positions[:, unit] - 0.5).max() == pytest.approx(0.5), (step, unit, positions[:, unit])
        # and 0 stays the middle colour: a cell's colour sits on the side of its sign
        assert ((positions - 0.5) * np.sign(values) >= 0).all()


def test_quiz_scores_each_step_once(trace) -> None:
    best = page.best_nodes(trace.step(3))
    assert trace.step(3).top(1)[0][0] in best
    quiz = page.new_quiz({"right": 2, "tried": 3}, {"model": "alpha"})
    assert quiz == {"request": {"model": "alpha"}, "revealed": {}, "right": 2, "tried": 3}
    quiz = page.answer(quiz, 3, best[0], best)
    assert (quiz["right"], quiz["tried"], quiz["revealed"]) == (3, 4, {"3": best[0]})
    assert page.answer(quiz, 3, 99, best) == quiz
    wrong = next(n for n in range(30) if n not in best)
    quiz = page.answer(quiz, 1, wrong, [n for n in range(30) if n != wrong])
    assert (quiz["right"], quiz["tried"]) == (3, 5)
    quiz = page.answer(quiz, 2, None, best)
    assert (quiz["right"], quiz["tried"], quiz["revealed"]["2"]) == (3, 5, None)


def parts_of(ckpt: Checkpoint, trace, revealed: dict, node: int | None = None) -> list:
    """Every step's parts of a trace: shown (explaining ``node``) where revealed, hidden elsewhere."""
    return [page.step_parts(ckpt, trace, i, node, str(i) in revealed) for i in range(trace.num_steps)]


def test_step_store_hides_unrevealed_steps_and_explains_the_picked_node(ckpt: Checkpoint, trace) -> None:
    revealed = {"1": None, "3": 4}
    store = page.step_store(ckpt, trace, parts_of(ckpt, trace, revealed, 7), revealed)
    stages, energy, chips, question, feedback_, formula = store["figures"]
    n = trace.num_steps
    assert store["n"] == n and store["labels"][1].startswith(f"step 1 of 0–{n - 1}: the signal is at ")
    assert [f["element"] for f in (chips, question, feedback_, formula)] == ["te-chips", "te-question", "te-feedback",
                                                                           "te-formula"]
    for i in (0, 2):  # not revealed: no target-dependent number or figure reaches the browser
        assert stages["frames"][i]["layout"]["annotations"][0]["text"] == page.HIDDEN
        assert energy["frames"][i]["data"][0]["x"] == [] and feedback_["steps"][i] == ""
        assert 'id="te-part-product" class="formula-part"><div><b>Matrix: </b><span>?' in formula["steps"][i]
        assert chips["steps"][i].endswith('<span class="chip hidden-node" title="guess the node with the most energy">'
                                          '?</span>')
    for i in (1, 3):  # revealed: the picked node 7 explained with the engine's exact numbers
        ex = explain_step(ckpt.model, trace, i, 7)
        assert stages["frames"][i]["data"][0]["text"][-1] == ex.output.tolist()
        assert f'title="{ex.energy!r}"' in formula["steps"][i] and "Most energy goes to" in feedback_["steps"][1]
    assert "Your guess" in feedback_["steps"][3] or "Right" in feedback_["steps"][3]
    margins = [f["layout"]["margin"] for f in energy["frames"]]  # one margin: plotly draws each step once
    labels = [x for f in energy["frames"] for x in f["data"][0]["x"]]
    assert labels and all(m == margins[0] for m in margins) and margins[0]["b"] == signal.label_margin(labels)


def test_step_parts_live_in_the_apps_one_cache(ckpt: Checkpoint, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    trace = ckpt.trace("hello", DecodeSettings(max_new_tokens=6))
    steps = range(trace.num_steps)
    built: list[tuple[int, int | None, bool]] = []
    fresh = page.step_parts
    monkeypatch.setattr(page, "step_parts", lambda *args: built.append(args[2:]) or fresh(*args))
    services = Services(registry=None, cache=ResultCache(tmp_path / "cache"))

    def render(revealed: dict, node: int | None = None) -> dict:
        hidden = page.steps_for(services, ckpt, trace, "trace-key", None, False, steps)
        shown = page.steps_for(services, ckpt, trace, "trace-key", node, True, [int(i) for i in revealed])
        return page.step_store(ckpt, trace, [shown[i] if str(i) in revealed else hidden[i] for i in steps], revealed)

    render({})
    assert sorted(built) == [(i, None, False) for i in steps]  # the first store explains every step, hidden
    built.clear()
    render({"3": 5})
    assert built == [(3, None, True)]  # a reveal explains its step, once ...
    render({"3": 2, "1": None})
    assert built == [(3, None, True), (1, None, True)]  # ... and a guess elsewhere only that new step
    again = Services(registry=None, cache=ResultCache(tmp_path / "cache"))  # a new process: read from the disk
    assert page.steps_for(again, ckpt, trace, "trace-key", None, True, [1, 3]) == page.steps_for(
        services, ckpt, trace, "trace-key", None, True, [1, 3])
    built.clear()
    store = render({"3": 5}, node=7)  # a node picked on the chart: explained on the revealed steps only
    assert built == [(3, 7, True)]
    expected = fresh(ckpt, trace, 3, 7, True)
    stages, energy, chips, question, feedback_, formula = store["figures"]
    assert (chips["steps"][3], formula["steps"][3], stages["frames"][3]) == (expected.chips, expected.formula,
                                                                              expected.stage)
    hidden = fresh(ckpt, trace, 2, None, False)
    assert (chips["steps"][2], formula["steps"][2], stages["frames"][2]) == (hidden.chips, hidden.formula,
                                                                              figs.hidden_frame(page.HIDDEN))
    assert not hasattr(page, "_kept")  # no second cache beside the app's


def store_size(ckpt: Checkpoint, new_tokens: int) -> int:
    """The JSON size of the teaching step store of a path of ``new_tokens`` after 'hello', every step revealed."""
    trace = ckpt.trace("hello", DecodeSettings(max_new_tokens=new_tokens))
    revealed = {str(i): None for i in range(trace.num_steps)}
    return len(json.dumps(page.step_store(ckpt, trace, parts_of(ckpt, trace, revealed), revealed)))


def test_step_store_grows_linearly_with_the_path(ckpt: Checkpoint) -> None:
    small, large = store_size(ckpt, 32), store_size(ckpt, 256)
    assert large < 1.5 * 8 * small, (small, large)  # 8 times the steps: at most linear growth, with some slack


def test_memory_shows_the_largest_terms_and_sums_the_rest(ckpt: Checkpoint) -> None:
    trace = ckpt.trace("hello", DecodeSettings(max_new_tokens=30))
    i, limit = 30, page.MEMORY_TERMS
    ex = explain_step(ckpt.model, trace, i)
    lines = dict(figs.memory_term(ex, limit).lines)
    weights = ex.memory_weights.double()
    top = sorted(torch.topk(ex.memory_weights, limit).indices.tolist())
    assert [label for label in lines if "·c" in label and "rest" not in label] == [f"a{j}·c{j}" for j in top]
    rest_weight = lines[f"the rest: Σ aⱼ over the other {i - limit} j"][0]
    assert rest_weight + float(weights[top].sum()) == pytest.approx(1, abs=1e-6)  # the weights are a softmax
    rest = lines[f"the rest: Σ aⱼ·cⱼ over the other {i - limit} j"]
    summed = np.sum([lines[f"a{j}·c{j}"] for j in top], axis=0) + rest
    np.testing.assert_allclose(summed, ex.signal.double().numpy(), rtol=1e-5, atol=1e-6)  # the terms still add up to x
    assert len(figs.memory_term(ex).lines) == i + 1  # the exports keep every term


def test_chips_show_a_window_of_the_path(ckpt: Checkpoint) -> None:
    trace = ckpt.trace("hello", DecodeSettings(max_new_tokens=40))
    path, tokens = trace.path.tolist(), trace.tokens
    chips = [{**attrs, "text": "".join(texts)}
             for _, attrs, texts in Elements(page.path_chips(path, tokens, 40, False)).found]
    first = 41 - page.CHIP_WINDOW
    assert chips[0]["text"] == f"… {first} earlier" and len(chips) == page.CHIP_WINDOW + 2
    assert [c["title"] for c in chips[1:-1]] == [f"node {n}" for n in path[first:41]]
    assert [c["text"] for c in chips[1:-1]] == [show_token(t) for t in tokens[first:41]]
    assert not spans(page.path_chips(path, tokens, page.CHIP_WINDOW - 1, True), "chip elided")


def test_markup_escapes_tokens() -> None:
    markup = page.tag("div", ["a<b>", page.tag("span", "&", title='"x"', cls="num")], id="k")
    assert markup == '<div id="k">a&lt;b&gt;<span class="num" title="&#34;x&#34;">&amp;</span></div>'


def test_teaching_sample_model_numbers() -> None:
    ckpt, trace, explained = explained_steps(SAMPLE, page.SAMPLE_PROMPT)
    assert not trace.unknown, "the page's sample prompt is in the teaching model's vocabulary"
    for step, ex in explained:
        terms = {t.key: t for t in figs.formula_terms(ex, ckpt.token)}
        assert terms["energy"].lines[0][1] == (ex.energy,)
        assert ex.energy == pytest.approx(trace.step(step).chosen_energy, rel=1e-5)
        np.testing.assert_array_equal(terms["output"].lines[0][1], ex.output.numpy())


# --- browser ---------------------------------------------------------------------------------------------------


def classes(dash_duo, selector: str) -> str:
    """The class attribute of the first element matching ``selector``, read in one script (never stale)."""
    return dash_duo.driver.execute_script(
        "var e = document.querySelector(arguments[0]); return e ? e.className : ''", selector)


@pytest.mark.browser
def test_guess_reveal_and_tour(dash_duo, model_root: Path, tmp_path: Path) -> None:
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(create_app([model_root], tmp_path / "cache"))
    open_link(dash_duo, "/teach")  # a bare link opens a ready example
    wait_until(lambda: dash_duo.find_element("#te-prompt").get_attribute("value") == page.SAMPLE_PROMPT)
    wait_until(lambda: "Which node gets the most energy" in text(dash_duo, "#te-question"))
    dash_duo.driver.get(dash_duo.server_url + "/teach#m=beta&p=abc&n=3")
    wait_until(lambda: "Which node gets the most energy" in text(dash_duo, "#te-question"))
    wait_until(lambda: text(dash_duo, "#te-chips .chip") == "a?")
    assert "?" in text(dash_duo, "#te-part-product") and not dash_duo.find_elements("#te-part-product .num")
    assert len(dash_duo.find_elements("#te-part-signal .num")) == 4
    # guess, check: the step is revealed and scored
    dash_duo.select_dcc_dropdown("#te-guess", index=0)
    dash_duo.find_element("#te-check").click()
    wait_until(lambda: "Score: " in text(dash_duo, "#te-score") and "of 1" in text(dash_duo, "#te-score"))
    assert text(dash_duo, "#te-feedback")[0] in "✓✗"
    wait_until(lambda: text(dash_duo, "#te-chips .chip") == "ab")
    assert len(dash_duo.find_elements("#te-part-product .num")) == 4 + 16
    dash_duo.find_element("#te-json").click()
    path = Path(dash_duo.download_path) / "brillm-step.json"
    doc = json.loads(wait_until(lambda: path.exists() and path.read_text()))
    ckpt = load_checkpoint(model_root / "beta", device="cpu")
    ex = explain_step(ckpt.model, ckpt.trace("abc", DecodeSettings(max_new_tokens=3)), 0)
    energy = next(t for t in doc["data"]["terms"] if t["part"] == "energy")
    assert doc["view"] == "teaching" and doc["data"]["step"] == 0
    assert any(v == pytest.approx(ex.energy, rel=1e-5) for line in energy["lines"] for v in line["values"])
    # the next step starts hidden, with an empty guess; a plain reveal does not count as a guess
    dash_duo.select_dcc_dropdown("#te-guess", index=1)
    wait_until(lambda: guess_shown(dash_duo) != "")
    dash_duo.find_element("body").send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: text(dash_duo, "#te-chips .chip") == "ab?")
    wait_until(lambda: guess_shown(dash_duo) == "")  # the previous step's guess is gone
    dash_duo.find_element("#te-reveal").click()
    wait_until(lambda: "Most energy goes to" in text(dash_duo, "#te-feedback"))
    assert "of 1" in text(dash_duo, "#te-score")
    # the tour runs on a revealed step: started on hidden step 2, it reveals it (unscored) ...
    dash_duo.find_element("body").send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: text(dash_duo, "#te-step-label").startswith("step 2 of") and "?" in text(dash_duo, "#te-chips"))
    dash_duo.find_element("#te-tour-start").click()
    wait_until(lambda: "(1 of " in text(dash_duo, "#te-tour-count"))
    wait_until(lambda: len(dash_duo.find_elements("#te-part-product .num")) == 4 + 16)
    assert "?" not in text(dash_duo, "#te-formula") and "of 1" in text(dash_duo, "#te-score")
    # ... and every card scrolls its part into view, highlighted, showing the step's numbers
    for position, (target, title, _) in enumerate(page.TOUR):
        if position:
            dash_duo.find_element("#te-tour-next").click()
        wait_until(lambda: f"({position + 1} of " in text(dash_duo, "#te-tour-count"))
        assert text(dash_duo, "#te-tour-title") == title
        element = page.TOUR_TARGETS[position]
        wait_until(lambda: in_window(dash_duo, element) and highlighted(dash_duo, element))
        if position >= 2:
            assert dash_duo.find_elements(f"#{element} .num")  # a number, not "? (guess or reveal first)"
            assert "(guess or reveal first)" not in text(dash_duo, f"#{element}")
        assert in_window(dash_duo, "te-tour-box")  # the card itself stays on screen
    # a step moved to while the tour runs is revealed too
    dash_duo.find_element("body").send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: text(dash_duo, "#te-step-label").startswith("step 3 of"))
    wait_until(lambda: len(dash_duo.find_elements("#te-part-energy .num")) == 1)
    assert "of 1" in text(dash_duo, "#te-score")
    dash_duo.find_element("#te-tour-end").click()
    wait_until(lambda: dash_duo.driver.execute_script(
        "return document.getElementById('te-tour-box').style.display") == "none")
    assert not highlighted(dash_duo, "te-part-energy") and not highlighted(dash_duo, "te-chips")
    scale = dash_duo.driver.execute_script(  # the stage heatmap's colours as plotly draws them: 0 is white
        "return document.querySelector('#te-stages .js-plotly-plot')._fullData[0].colorscale")
    assert [colour for at, colour in scale if at == 0.5] == ["#ffffff"]
    assert [e for e in dash_duo.get_logs() or [] if e.get("level") == "SEVERE"] == []


def guess_shown(dash_duo) -> str:
    """The text of the guess menu's chosen value ('' when empty)."""
    return dash_duo.driver.execute_script(
        "var v = document.getElementById('te-guess-value');"
        "return v && !v.classList.contains('dash-dropdown-placeholder') ? v.textContent : ''")


def in_window(dash_duo, element_id: str) -> bool:
    """Whether the whole element is inside the browser window."""
    return dash_duo.driver.execute_script(
        "var r = document.getElementById(arguments[0]).getBoundingClientRect();"
        "return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight", element_id)


def highlighted(dash_duo, element_id: str) -> bool:
    """Whether the tour's highlight (its box shadow) is drawn around the element."""
    return dash_duo.driver.execute_script(
        "return getComputedStyle(document.getElementById(arguments[0])).boxShadow !== 'none'", element_id)


def count_requests(dash_duo) -> int:
    """Callback requests the page has sent so far (from the browser's resource timing)."""
    return dash_duo.driver.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.indexOf('_dash-update-component') >= 0).length")


def drawn(dash_duo, i: int) -> dict:
    """What step i shows once its label is on screen: the numbers' exact values by part, the chips, and what
    plotly drew in the stage heatmap and the candidate bars (figures below the window are drawn a frame later)."""
    wait_until(lambda: text(dash_duo, "#te-step-label").startswith(f"step {i} of 0–"))
    return dash_duo.driver.execute_script(
        "var parts = {}; document.querySelectorAll('#te-formula .formula-part').forEach(function (p) {"
        "  parts[p.id.replace('te-part-', '')] = Array.from(p.querySelectorAll('.num')).map(s => s.title); });"
        "var heat = document.querySelector('#te-stages .js-plotly-plot').data[0];"
        "var bars = document.querySelector('#te-energy .js-plotly-plot');"
        "return {parts: parts, chips: document.getElementById('te-chips').textContent,"
        " text: (heat.text || []).map(r => Array.from(r)), title: bars.layout.title.text || '',"
        " y: Array.from(bars.data[0].y || []), nodes: (bars.data[0].customdata || []).map(c => c[0])};")


@pytest.mark.browser
def test_stepping_draws_the_engines_numbers_with_no_request(dash_duo, model_root: Path, tmp_path: Path) -> None:
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(create_app([model_root], tmp_path / "cache"))
    open_link(dash_duo, "/teach#m=alpha&p=hello&n=3")
    ckpt = load_checkpoint(model_root / "alpha", device="cpu")
    trace = ckpt.trace("hello", settings_of(ViewState(max_new_tokens=3)))
    last = trace.num_steps - 1
    slider = "return document.querySelector('#te-slider [role=slider]').getAttribute('aria-valuenow')"
    # reveal steps 0-3 (the quiz asks the server, reading the step on screen)
    for i in range(4):
        assert drawn(dash_duo, i)["parts"]["product"] == []  # hidden until revealed
        wait_until(lambda: dash_duo.driver.execute_script(slider) == str(i))
        dash_duo.find_element("#te-reveal").click()
        wait_until(lambda: "Most energy goes to" in text(dash_duo, "#te-feedback"))
        wait_until(lambda: drawn(dash_duo, i)["parts"]["product"])
        dash_duo.find_element("#te-next").click()
    wait_until(lambda: text(dash_duo, "#te-step-label").startswith("step 4 of"))
    before = count_requests(dash_duo)
    assert before > 0  # the link, the trace job and the reveals did go to the server
    body = dash_duo.find_element("body")
    # back by keys and forth by buttons: each step drawn from the store, the engine's float32 numbers
    moves = [(body.send_keys, Keys.ARROW_LEFT, 3), (body.send_keys, Keys.ARROW_LEFT, 2),
             (dash_duo.find_element("#te-prev").click, None, 1), (dash_duo.find_element("#te-next").click, None, 2),
             (body.send_keys, Keys.ARROW_RIGHT, 3)]
    for move, key, i in moves:
        move(*([key] if key else []))
        shown = wait_until(lambda: (lambda d: d["title"].startswith(f"Step {i}:") and d)(drawn(dash_duo, i)))
        ex = explain_step(ckpt.model, trace, i)
        expected = engine_numbers(ex)
        for part, titles in shown["parts"].items():
            assert [float(t) for t in titles] == expected[part], (i, part)  # exact: a title is the value's repr
        energy = trace.energies[i, trace.step(i).target].detach().numpy()  # float32, as the trace holds it
        assert np.float32(float(shown["parts"]["energy"][0])) == energy
        for row, (name, _) in zip(shown["text"], figs.STAGES):
            np.testing.assert_array_equal(np.array(row, dtype=np.float32), getattr(ex, name).detach().numpy())
        assert shown["y"] == trace.energies[i, shown["nodes"]].tolist()  # the bars: the trace's float32 energies
        assert shown["chips"] == "".join(show_token(t) for t in trace.tokens[: i + 2])  # up to the node revealed
        wait_until(lambda: ("s=" + str(i)) in dash_duo.driver.current_url)
    # a step not revealed yet still hides its target's numbers, and play runs to the end
    dash_duo.find_element("#te-play").click()
    wait_until(lambda: text(dash_duo, "#te-step-label").startswith(f"step {last} of 0–{last}"))
    assert drawn(dash_duo, last)["parts"]["product"] == [] and text(dash_duo, "#te-chips").endswith("?")
    assert count_requests(dash_duo) == before  # every step above was drawn in the browser
    # a click on a candidate bar (the server explains that node) keeps the step on screen
    for _ in range(last - 3):
        dash_duo.find_element("#te-prev").click()
    wait_until(lambda: text(dash_duo, "#te-step-label").startswith("step 3 of"))
    other = next(n for n in range(ckpt.config.vocab_size) if n != trace.step(3).target)
    dash_duo.driver.execute_script("document.querySelector('#te-energy .js-plotly-plot')"
                                   ".emit('plotly_click', {points: [{customdata: [arguments[0]]}]})", other)
    ex = explain_step(ckpt.model, trace, 3, other)
    wait_until(lambda: drawn(dash_duo, 3)["parts"]["energy"] == [repr(ex.energy)])
    assert text(dash_duo, "#te-step-label").startswith("step 3 of")
    assert [e for e in dash_duo.get_logs() or [] if e.get("level") == "SEVERE"] == []


def test_numbers_keep_two_decimals_where_five_digits_would_hide_them() -> None:
    assert figs.fmt(50014.046875) != figs.fmt(50014.0) and figs.fmt(50014.046875) == "50014.05"
    assert figs.fmt(0.8374941) == "0.83749" and figs.fmt(-1.5e-7) == "-1.5e-07" and figs.fmt(0.0) == "0"
