"""The Signal path as a first visit meets it at 1440 x 900 (browser tests): the landing page's example, whole
step labels, readable chips, no overlapping chart texts, forms that show what runs, prompts kept or held,
a memory ribbon whose every segment can be hovered, and a reopened link answered from the cache by a
process that never loaded the checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.keys import Keys

from brillm_core import Checkpoint, CharTokenizer, load_checkpoint, random_model
from explorer import compute
from explorer.app import create_app
from explorer.cache import ResultCache
from explorer.cli import SAMPLE_MODELS
from explorer.pages import signal_path as page
from explorer.state import ViewState

from .browser import callback_outputs, no_console_errors, open_link, record_callbacks, text, texts, wait_until
from .conftest import CHARS, make_checkpoint

pytestmark = pytest.mark.browser


@pytest.fixture
def app(model_root: Path, cache_dir: Path):
    return create_app([model_root], cache_dir)


def start(dash_duo, app, link: str) -> None:
    """The app at 1440 x 900, opened at ``link``."""
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(app)
    open_link(dash_duo, link)


def chips(dash_duo) -> list[str]:
    """Texts of the path chips."""
    return texts(dash_duo, "#sp-chips .chip")


def label(dash_duo) -> str:
    """The step label's text."""
    return text(dash_duo, "#sp-step-label")


def press(dash_duo, key: str, times: int = 1) -> None:
    """Arrow keys on the page."""
    body = dash_duo.find_element("body")
    for _ in range(times):
        body.send_keys(key)


def retype(dash_duo, selector: str, typed: str) -> None:
    """Replace a box's text."""
    box = dash_duo.find_element(selector)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(typed) if typed else box.send_keys(Keys.DELETE)


def chart_title(dash_duo) -> str:
    """The candidate chart's title as plotly holds it."""
    return dash_duo.driver.execute_script(
        "var gd = document.querySelector('#sp-energy .js-plotly-plot');"
        "return gd && gd.layout && gd.layout.title ? String(gd.layout.title.text) : '';")


# Whether the step label shows all of its text: nothing cut at its box or at the window's edge.
LABEL_WHOLE = """
var el = document.getElementById('sp-step-label'), box = el.getBoundingClientRect();
return el.scrollWidth <= el.clientWidth && box.right <= window.innerWidth && box.width > 0;
"""


def test_the_landing_page_opens_the_flagship_with_an_example_and_whole_labels(dash_duo, cache_dir: Path) -> None:
    start(dash_duo, create_app([SAMPLE_MODELS], cache_dir), "/")
    wait_until(lambda: dash_duo.find_element("#sp-prompt").get_attribute("value") == page.EXAMPLE, timeout=120)
    flagship = load_checkpoint(SAMPLE_MODELS / page.FLAGSHIP)
    prompt_tokens = len(flagship.encode(page.EXAMPLE).ids)
    wait_until(lambda: len(chips(dash_duo)) == prompt_tokens + ViewState().max_new_tokens, timeout=120)
    assert "unknown" not in text(dash_duo, "#sp-msg") + text(dash_duo, "#sp-msg-state")
    assert "m=kjv-final" in dash_duo.driver.current_url and "p=And" in dash_duo.driver.current_url
    for step in range(prompt_tokens + 1):  # forced steps, then the first chosen ones: p shown in full
        wait_until(lambda: label(dash_duo).startswith(f"step {step} of"))
        assert "p = " in label(dash_duo) and dash_duo.driver.execute_script(LABEL_WHOLE), label(dash_duo)
        press(dash_duo, Keys.ARROW_RIGHT)
    wait_until(lambda: f"Step {prompt_tokens + 1}:" in chart_title(dash_duo))
    wait_until(lambda: dash_duo.find_elements("#sp-energy .ytick text"))
    assert dash_duo.driver.execute_script(OVERLAPS, TEXTS) == []  # energies near 5e4 or not, every text fits
    assert dash_duo.driver.execute_script(OUTSIDE, TEXTS) == []
    dash_duo.driver.execute_script("document.getElementById('sp-energy').scrollIntoView({block: 'center'})")
    # re-route through the last bar, clicked near its top: on a cut axis its path reaches far below the plot, to 0
    x, y = dash_duo.driver.execute_script(
        "var r = Array.from(document.querySelectorAll('#sp-energy .point path')).pop().getBoundingClientRect();"
        "return [Math.round(r.left + r.width / 2), Math.round(r.top + 6)];")
    actions = ActionBuilder(dash_duo.driver)
    actions.pointer_action.move_to_location(x, y).click()
    actions.perform()
    wait_until(lambda: "re-routed by you" in label(dash_duo))
    assert "p = " in label(dash_duo) and dash_duo.driver.execute_script(LABEL_WHOLE), label(dash_duo)
    no_console_errors(dash_duo)


# The texts drawn in the candidate chart: bar labels, tick labels, the axis title, notes and the title.
TEXTS = ".bartext, .xtick text, .ytick text, .ytitle, .annotation-text, .gtitle"
# Every pair of them whose boxes overlap, but for two tilted tick labels (their upright boxes overlap where
# the words do not).
OVERLAPS = """
var TEXTS = arguments[0], gd = document.querySelector('#sp-energy .js-plotly-plot');
var items = Array.from(gd.querySelectorAll(TEXTS)).map(function (e) {
  return [e.textContent, e.getBoundingClientRect(), !!e.closest('.xtick')];
}).filter(function (p) { return p[1].width > 0; });
var found = [];
items.forEach(function (a, i) { items.slice(i + 1).forEach(function (b) {
  var r = a[1], s = b[1];
  if (a[2] && b[2]) return;
  var apart = r.right - 1 <= s.left || s.right - 1 <= r.left || r.bottom - 1 <= s.top || s.bottom - 1 <= r.top;
  if (!apart) found.push([a[0], b[0]]);
}); });
return found;
"""


def test_no_text_of_the_candidate_chart_overlaps_when_the_taken_node_ranks_low(dash_duo, app, model_root) -> None:
    ckpt = load_checkpoint(model_root / "alpha", device="cpu")
    prompt = "zebra quiz jazz"
    trace = ckpt.trace(prompt, compute.settings_of(ViewState(max_new_tokens=2)))
    low = [i for i in range(trace.num_steps) if trace.step(i).forced and trace.step(i).chosen_rank > page.TOP_K]
    assert low, "the test needs a forced step outside the top 12"
    start(dash_duo, app, f"/#m=alpha&p={prompt.replace(' ', '%20')}&n=2&s={low[0]}")
    wait_until(lambda: chart_title(dash_duo).startswith(f"Step {low[0]}:"))
    wait_until(lambda: len(dash_duo.find_elements("#sp-energy .bartext")) == page.TOP_K + 1)
    assert dash_duo.driver.execute_script(OVERLAPS, TEXTS) == []
    assert dash_duo.driver.execute_script(OUTSIDE, TEXTS) == []
    assert "forced by the prompt (the grey bar)" in chart_title(dash_duo)
    no_console_errors(dash_duo)


# The texts of the candidate chart that reach out of its picture (cut at its edge).
OUTSIDE = """
var gd = document.querySelector('#sp-energy .js-plotly-plot');
var box = gd.querySelector('.main-svg').getBoundingClientRect();
return Array.from(gd.querySelectorAll(arguments[0])).filter(function (e) {
  var r = e.getBoundingClientRect();
  return r.width > 0 && (r.left < box.left || r.right > box.right || r.top < box.top || r.bottom > box.bottom);
}).map(function (e) { return e.textContent; });
"""


# The WCAG contrast ratio of each path chip's text on its background.
CONTRASTS = """
function lum(c) {
  var v = c.match(/[\\d.]+/g).slice(0, 3).map(function (x) {
    x = x / 255;
    return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
}
return Array.from(document.querySelectorAll('#sp-chips .chip')).map(function (e) {
  var s = getComputedStyle(e), a = lum(s.color), b = lum(s.backgroundColor);
  return [e.className, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
});
"""


def test_every_chip_is_readable_also_the_rerouted_current_one(dash_duo, app) -> None:
    start(dash_duo, app, "/#m=alpha&p=abc&n=4&r=2:7&s=2")
    wait_until(lambda: "re-routed by you" in label(dash_duo))
    contrasts = dash_duo.driver.execute_script(CONTRASTS)
    assert any("rerouted" in c and "target" in c for c, _ in contrasts), contrasts
    assert all(ratio >= 4.5 for _, ratio in contrasts), contrasts
    no_console_errors(dash_duo)


def test_a_clamped_setting_shows_what_runs_and_an_empty_prompt_keeps_the_result(dash_duo, app) -> None:
    start(dash_duo, app, "/#m=alpha&p=ab&n=3")
    wait_until(lambda: len(chips(dash_duo)) == 5)
    dash_duo.find_element(".settings-box summary").click()
    retype(dash_duo, "#sp-max-new-tokens", "500")
    retype(dash_duo, "#sp-seed", "12")
    dash_duo.find_element("#sp-go").click()
    wait_until(lambda: "using 256" in text(dash_duo, "#sp-msg-state"))
    wait_until(lambda: dash_duo.find_element("#sp-max-new-tokens").get_attribute("value") == "256")
    assert dash_duo.find_element("#sp-seed").get_attribute("value") == "12"  # what was right stays as typed
    wait_until(lambda: len(chips(dash_duo)) == 2 + 256, timeout=120)
    before, link = chips(dash_duo), dash_duo.driver.current_url
    retype(dash_duo, "#sp-prompt", "")
    dash_duo.find_element("#sp-go").click()
    wait_until(lambda: "prompt is empty" in text(dash_duo, "#sp-msg-state"))
    dash_duo.driver.execute_script("return new Promise(function (r) { setTimeout(r, 1500); })")  # nothing else comes
    assert chips(dash_duo) == before and dash_duo.driver.current_url == link
    assert dash_duo.find_element("#sp-views").is_displayed()
    no_console_errors(dash_duo)


def test_a_switch_holds_a_prompt_the_new_checkpoint_does_not_know(dash_duo, model_root: Path, tmp_path: Path,
                                                                  cache_dir: Path) -> None:
    make_checkpoint(tmp_path / "digits", seed=3, hidden=4, chars=list("0123456789 "))
    start(dash_duo, create_app([model_root, tmp_path / "digits"], cache_dir), "/#m=alpha&p=hello&n=3")
    wait_until(lambda: len(chips(dash_duo)) == 8)
    dash_duo.select_dcc_dropdown("#sp-model", "digits")
    wait_until(lambda: "are unknown to digits" in text(dash_duo, "#sp-msg-state"))
    assert "5 of the prompt's 5 tokens" in text(dash_duo, "#sp-msg-state")
    wait_until(lambda: chips(dash_duo) == [] and dash_duo.find_element("#sp-empty").is_displayed())
    assert "m=digits" in dash_duo.driver.current_url
    dash_duo.driver.execute_script("return new Promise(function (r) { setTimeout(r, 1500); })")
    assert chips(dash_duo) == []  # not run meanwhile either
    dash_duo.find_element("#sp-go").click()  # run anyway
    wait_until(lambda: len(chips(dash_duo)) == 8)
    wait_until(lambda: "unknown node" in text(dash_duo, "#sp-msg"))
    dash_duo.select_dcc_dropdown("#sp-model", "beta")  # a prompt the next checkpoint knows runs at once
    wait_until(lambda: "m=beta" in dash_duo.driver.current_url and len(chips(dash_duo)) == 8)
    assert text(dash_duo, "#sp-msg-state") == ""
    no_console_errors(dash_duo)


# How the seed box holds its text: its width and the width its text needs.
SEED_BOX = "var e = document.getElementById('sp-seed'); return [e.clientWidth, e.scrollWidth, e.value];"


def test_the_seed_box_fits_its_largest_number(dash_duo, app) -> None:
    start(dash_duo, app, "/#m=alpha&p=ab&n=2&g=0&seed=9007199254740991")
    wait_until(lambda: len(chips(dash_duo)) == 4)
    dash_duo.find_element(".settings-box summary").click()
    width, needed, value = dash_duo.driver.execute_script(SEED_BOX)
    assert value == "9007199254740991" and needed <= width, (width, needed)
    no_console_errors(dash_duo)


def recency_checkpoint(directory: Path) -> Path:
    """A small model whose position logits are a ramp: its memory weights are 0.5, 0.25, 0.125, ... going
    back from the previous output (the profile a trained memory learns)."""
    model = random_model(len(CHARS), 6, 0.3, seed=5, max_positions=64, name=directory.name)
    with torch.no_grad():
        model.positions.copy_((torch.arange(64, dtype=torch.float32) * math.log(2.0)).reshape(1, 64, 1))
    return Checkpoint(model, CharTokenizer(CHARS), {}).save(directory)


# Each memory segment: its width in pixels, and whether the mouse finds it at its middle (with its hover text).
SEGMENTS = """
return Array.from(document.querySelectorAll('#sp-memory .ribbon-segment')).map(function (e) {
  var box = e.getBoundingClientRect();
  var hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
  return [box.width, hit === e, e.title];
});
"""


def test_every_segment_of_a_recency_memory_can_be_hovered(dash_duo, tmp_path: Path, cache_dir: Path) -> None:
    recency_checkpoint(tmp_path / "models" / "recency")
    start(dash_duo, create_app([tmp_path / "models"], cache_dir), "/#m=recency&p=ab&n=18&s=18")
    wait_until(lambda: label(dash_duo).startswith("step 18 of"))
    segments = wait_until(lambda: (lambda s: s if len(s) == 18 else None)(dash_duo.driver.execute_script(SEGMENTS)))
    weights = [float(title.rpartition("weight a = ")[2]) for _, _, title in segments]
    assert weights[-1] == pytest.approx(0.5, rel=1e-3) and weights[0] < 1e-5  # the profile, as the model has it
    assert all(width >= 4 and hit for width, hit, _ in segments), segments
    widths = [width for width, _, _ in segments]
    assert widths == sorted(widths) and widths[-1] > 200  # the recent outputs still read as the larger shares
    assert "drawn wider than their weight" in text(dash_duo, "#sp-memory")
    half, last = dash_duo.driver.execute_script(  # the scale's 0.5 where the previous output's half begins
        "var t = document.querySelectorAll('#sp-memory .ribbon-scale span')[1].getBoundingClientRect();"
        "var s = Array.from(document.querySelectorAll('#sp-memory .ribbon-segment')).pop().getBoundingClientRect();"
        "return [t.left + t.width / 2, s.left];")
    assert abs(half - last) < 2
    no_console_errors(dash_duo)


def test_a_process_that_never_loaded_the_checkpoint_answers_a_cached_link(dash_duo, model_root: Path,
                                                                          cache_dir: Path) -> None:
    app = create_app([model_root], cache_dir)  # its registry has loaded nothing
    state = ViewState(model="alpha", prompt="hello", max_new_tokens=5)
    elsewhere = ResultCache(cache_dir / "results")  # another worker computed the trace into the shared cache
    compute.path_for(elsewhere, load_checkpoint(model_root / "alpha", device="cpu"), state)
    dash_duo.driver.set_window_size(1440, 900)
    record_callbacks(dash_duo)
    dash_duo.start_server(app)
    open_link(dash_duo, "/#m=alpha&p=hello&n=5&s=2")
    wait_until(lambda: chart_title(dash_duo).startswith("Step 2:"))
    sent = callback_outputs(dash_duo)
    # the page's content, then the reducer, whose answer from the cache carries the step store: no job
    assert len(sent) == 2 and page.ID.frame.steps in sent[1], sent
    no_console_errors(dash_duo)
