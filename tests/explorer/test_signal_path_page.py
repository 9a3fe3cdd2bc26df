"""Signal path page: the step store the browser draws from carries the engine's numbers; stepping
in the browser sends no request; re-routed steps are labelled as such."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from dash import dcc
from selenium.webdriver.common.keys import Keys

from brillm_core import load_checkpoint
from explorer import compute
from explorer.app import create_app
from explorer.cache import ResultCache
from explorer.context import Services
from explorer.pages import signal_path as page
from explorer.registry import Registry
from explorer.request import ask
from explorer.state import ViewState

from .browser import callback_outputs, no_console_errors, open_link, record_callbacks, texts, wait_until


def rendered_store(model_root: Path, tmp_path: Path, state: ViewState) -> tuple[dict, compute.PathResult]:
    """The page's render callback, called without an app, on a traced state."""
    services = Services(Registry([model_root]), ResultCache(tmp_path / "cache"))
    ckpt = services.registry.load(state.model)
    result = compute.path_for(services.cache, ckpt, state)
    meta = {"request": ask("path", state).to_json(), "key": compute.path_key(ckpt, state), "n_steps": result.trace.num_steps,
            "path": result.trace.path.tolist(), "error": ""}
    store = json.loads(json.dumps(page.render(services, meta)[0]))  # as the browser receives it
    return store, result


def test_step_store_carries_the_engines_numbers(model_root: Path, tmp_path: Path) -> None:
    store, result = rendered_store(model_root, tmp_path, ViewState(model="alpha", prompt="hello", max_new_tokens=5))
    trace = result.trace
    energy, memory, heat = store["figures"]
    assert store["n"] == trace.num_steps == len(energy["frames"]) == len(store["labels"])
    for i in range(trace.num_steps):
        bars = energy["frames"][i]["data"][0]
        nodes = [c[0] for c in bars["customdata"]]
        assert trace.step(i).target in nodes
        np.testing.assert_array_equal(np.array(bars["y"], dtype=np.float32), trace.energies[i, nodes].numpy())
        assert bars["y"] == trace.energies[i, nodes].tolist()  # exact float32 values, not rounded
        assert [c[1] for c in bars["customdata"]] == trace.probabilities[i, nodes].tolist()
        assert memory["weights"][i] == trace.memory[i].tolist()
        assert store["labels"][i].startswith(f"step {i} of 0–{trace.num_steps - 1}: ")
        assert energy["frames"][i]["layout"]["title"]["text"].startswith(f"Step {i}:")
    assert heat["base"]["data"][0]["customdata"] == trace.signals_in.T.tolist()  # the hover's true values
    assert [f["layout"]["shapes"][0]["x0"] for f in heat["frames"]] == [i - 0.5 for i in range(trace.num_steps)]
    assert store["chips"][:5] == ["chip prompt"] * 5 and store["chips"][5:] == ["chip generated"] * 5


def test_rerouted_step_is_labelled_rerouted(model_root: Path, tmp_path: Path) -> None:
    plain, _ = rendered_store(model_root, tmp_path, ViewState(model="alpha", prompt="ab", max_new_tokens=4))
    state = ViewState(model="alpha", prompt="ab", max_new_tokens=4, reroutes=((2, 7),))
    store, result = rendered_store(model_root, tmp_path, state)
    assert int(result.trace.path[3]) == 7
    assert "re-routed by you" in store["labels"][2] and "forced by the prompt" not in store["labels"][2]
    assert "forced by the prompt" in store["labels"][0] and "chosen" in plain["labels"][2]
    assert store["chips"][3] == "chip rerouted"
    title = store["figures"][0]["frames"][2]["layout"]["title"]["text"]
    assert "re-routed by you (the purple bar)" in title and "annotations" not in store["figures"][0]["frames"][2]["layout"]


@pytest.fixture
def app(model_root: Path, cache_dir: Path):
    return create_app([model_root], cache_dir)


def count_requests(dash_duo) -> int:
    """Callback requests the page has sent so far (from the browser's resource timing)."""
    return dash_duo.driver.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.indexOf('_dash-update-component') >= 0).length")


def drawn_bars(dash_duo) -> dict:
    """The energy chart's bar trace as plotly drew it."""
    return dash_duo.driver.execute_script(
        "var gd = document.querySelector('#sp-energy .js-plotly-plot');"
        "return gd && gd.data && gd.data[0] ? {y: Array.from(gd.data[0].y), c: gd.data[0].customdata,"
        " title: gd.layout.title.text} : null;")


@pytest.mark.browser
def test_stepping_sends_no_request_and_draws_the_engines_numbers(dash_duo, app, model_root: Path) -> None:
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(app)
    open_link(dash_duo, "/#m=alpha&p=hello&n=5")
    wait_until(lambda: "".join(texts(dash_duo, "#sp-step-label")).startswith("step 0 of 0–8"))
    wait_until(lambda: (drawn_bars(dash_duo) or {}).get("title", "").startswith("Step 0:"))
    trace = load_checkpoint(model_root / "alpha", device="cpu").trace("hello", compute.settings_of(ViewState(max_new_tokens=5)))
    before = count_requests(dash_duo)
    assert before > 0  # the link, the trace job and the store did go to the server
    body = dash_duo.find_element("body")
    for i in range(1, 4):
        body.send_keys(Keys.ARROW_RIGHT)
        wait_until(lambda: "".join(texts(dash_duo, "#sp-step-label")).startswith(f"step {i} of"))
        wait_until(lambda: (drawn_bars(dash_duo) or {}).get("title", "").startswith(f"Step {i}:"))
        bars = drawn_bars(dash_duo)
        nodes = [c[0] for c in bars["c"]]
        assert bars["y"] == trace.energies[i, nodes].tolist()
    wait_until(lambda: "s=3" in dash_duo.driver.current_url)
    dash_duo.find_element("#sp-play").click()
    wait_until(lambda: "".join(texts(dash_duo, "#sp-step-label")).startswith("step 8 of"))
    wait_until(lambda: "play" in dash_duo.find_element("#sp-play").text)
    assert count_requests(dash_duo) == before  # every step above was drawn in the browser
    # a chip click shows the step that arrived at it
    dash_duo.find_elements("#sp-chips .chip")[2].click()
    wait_until(lambda: "".join(texts(dash_duo, "#sp-step-label")).startswith("step 1 of"))
    assert "source" in dash_duo.find_elements("#sp-chips .chip")[1].get_attribute("class")
    # the current step survives a reload of the link
    dash_duo.driver.refresh()
    wait_until(lambda: "".join(texts(dash_duo, "#sp-step-label")).startswith("step 1 of"))
    no_console_errors(dash_duo)


def test_the_reducer_waits_for_no_chart(app) -> None:
    # Dash holds a callback back until the graphs among its inputs have loaded plotly.js: the reducer,
    # which answers a reopened link, must not have one (bar clicks reach it through a store)
    graphs = {page.ID.energy, page.ID.heat}
    reducer = [spec for key, spec in app.callback_map.items() if f"{page.ID.frame.state}.data" in key]
    assert len(reducer) == 1
    assert not graphs & {d["id"] for d in (*reducer[0]["inputs"], *reducer[0]["state"])}


def test_the_charts_start_without_axes() -> None:
    # plotly draws each chart as it mounts, before any trace: with no axes that first drawing is cheap
    found = {}
    stack = [page.layout()]
    while stack:
        item = stack.pop()
        if isinstance(item, dcc.Graph):
            found[item.id] = item.figure
        children = getattr(item, "children", None)
        stack.extend(children if isinstance(children, list) else [children] if children is not None else [])
    assert set(found) == {page.ID.energy, page.ID.heat}
    assert all(f["data"] == [] and not f["layout"]["xaxis"]["visible"] and not f["layout"]["yaxis"]["visible"]
               for f in found.values())


@pytest.mark.browser
def test_a_reopened_cached_link_is_drawn_after_one_request(dash_duo, app, model_root: Path) -> None:
    dash_duo.start_server(app)
    open_link(dash_duo, "/#m=alpha&p=hello&n=5&s=2")  # the trace is computed, and cached
    wait_until(lambda: (drawn_bars(dash_duo) or {}).get("title", "").startswith("Step 2:"))
    record_callbacks(dash_duo)
    open_link(dash_duo, "/#m=alpha&p=hello&n=5&s=2")
    wait_until(lambda: (drawn_bars(dash_duo) or {}).get("title", "").startswith("Step 2:"))
    assert "".join(texts(dash_duo, "#sp-step-label")).startswith("step 2 of")
    sent = callback_outputs(dash_duo)
    # the page's content, then the reducer, whose cached answer carries the step store: no job, no render
    assert len(sent) == 2 and page.ID.frame.steps in sent[1] and page.ID.frame.state in sent[1], sent
    no_console_errors(dash_duo)


# What the page shows of the candidate chart and the memory ribbon: plotly's own data and title, and
# the drawn bars' labels, tick labels and title, the ribbon's segments.
SHOWN = """
var gd = document.querySelector('#sp-energy .js-plotly-plot'), mem = document.getElementById('sp-memory');
var all = function (root, sel) { return Array.from(root.querySelectorAll(sel)).map(function (e) { return e.textContent; }); };
if (!gd || !mem || !gd.data || !gd.data[0] || !gd.layout.title) return null;
var bar = gd.data[0];
return {x: Array.from(bar.x), y: Array.from(bar.y), text: Array.from(bar.text), color: Array.from(bar.marker.color),
        customdata: bar.customdata, title: gd.layout.title.text, width: gd._fullLayout.width,
        bars: all(gd, '.bartext'), ticks: all(gd, '.xtick text'), heading: all(gd, '.gtitle').join(''),
        segments: Array.from(mem.querySelectorAll('.ribbon-segment')).map(function (e) {
          return [e.textContent, e.title, e.style.width]; }),
        memory: all(mem, '.ribbon-title, .ribbon-note').join('')};
"""


def assert_shows_step(dash_duo, store: dict, i: int) -> dict:
    """The candidate chart and the ribbon show exactly the store's step ``i`` (plotly's data and the drawing)."""
    frame = store["figures"][0]["frames"][i]
    bars, title = frame["data"][0], frame["layout"]["title"]["text"]
    wait_until(lambda: (dash_duo.driver.execute_script(SHOWN) or {}).get("title") == title)
    shown = dash_duo.driver.execute_script(SHOWN)
    assert (shown["x"], shown["y"], shown["text"]) == (bars["x"], bars["y"], bars["text"])
    assert (shown["color"], shown["customdata"]) == (bars["marker"]["color"], bars["customdata"])
    assert shown["bars"] == bars["text"] and shown["ticks"] == bars["x"]
    assert shown["heading"].replace("\u200b", "") == re.sub(r"<[^>]+>", "", title)  # plotly's zero-width spaces
    memory = store["figures"][1]
    weights = memory["weights"][i]
    assert [text for text, _, _ in shown["segments"]] == memory["texts"][:len(weights)]
    for (_, hover, width), label, w in zip(shown["segments"], memory["labels"], weights):
        said, _, value = hover.partition("\nweight a = ")
        assert said == label and np.float32(float(value)) == np.float32(w)  # the engine's float32 weight, exactly
        if min(weights) >= 0.01:  # no segment widened (the recency test has thin ones): as wide as its weight
            assert float(width.rstrip("%")) == pytest.approx(100 * w, abs=1e-3)  # the browser keeps 4 decimals
    assert shown["memory"].startswith(f"Memory at step {i}:") if i else shown["memory"] == memory["empty"]
    return shown


@pytest.mark.browser
def test_key_presses_draw_the_stores_bars_also_after_a_relayout(dash_duo, app, model_root: Path,
                                                             tmp_path: Path) -> None:
    store, _ = rendered_store(model_root, tmp_path, ViewState(model="alpha", prompt="hello", max_new_tokens=5))
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(app)
    open_link(dash_duo, "/#m=alpha&p=hello&n=5")
    assert_shows_step(dash_duo, store, 0)
    body = dash_duo.find_element("body")
    for i in (1, 2, 3, 4):
        body.send_keys(Keys.ARROW_RIGHT)
        assert_shows_step(dash_duo, store, i)
    body.send_keys(Keys.ARROW_LEFT)
    assert_shows_step(dash_duo, store, 3)
    # plotly's own redraw (a relayout, as on a resize) keeps the step on screen, and stepping goes on from it
    dash_duo.driver.execute_script("Plotly.relayout(document.querySelector('#sp-energy .js-plotly-plot'), {width: 600});")
    wait_until(lambda: dash_duo.driver.execute_script(SHOWN)["width"] == 600)
    assert_shows_step(dash_duo, store, 3)
    body.send_keys(Keys.ARROW_RIGHT)
    assert_shows_step(dash_duo, store, 4)
    no_console_errors(dash_duo)


# Every animation frame from now on: the step the slider, the label and the candidate chart show;
# the last step they agreed on (window.agreed) and the longest run of frames they disagreed
# (window.longest: a move reaches the label and the charts a frame or two after the slider).
WATCH = """
window.agreed = null; window.longest = 0;
var run = 0;
(function watch() {
  var handle = document.querySelector('#sp-slider [role=slider]');
  var label = document.getElementById('sp-step-label').textContent.match(/^step (\\d+) of/);
  var gd = document.querySelector('#sp-energy .js-plotly-plot');
  var title = gd && gd.layout.title && String(gd.layout.title.text).match(/^Step (\\d+):/);
  var seen = [handle && handle.getAttribute('aria-valuenow'), label && label[1], title && title[1]];
  if (seen[0] === seen[1] && seen[1] === seen[2]) { window.agreed = seen[0]; run = 0; }
  else window.longest = Math.max(window.longest, ++run);
  requestAnimationFrame(watch);
})();
"""


@pytest.mark.browser
def test_slider_label_and_figures_agree_while_a_new_trace_comes(dash_duo, app, slow_jobs: Path) -> None:
    dash_duo.start_server(app)
    open_link(dash_duo, "/#m=alpha&p=hello&n=5")
    wait_until(lambda: (drawn_bars(dash_duo) or {}).get("title", "").startswith("Step 0:"))
    body = dash_duo.find_element("body")
    for i in (1, 2, 3):
        body.send_keys(Keys.ARROW_RIGHT)
        wait_until(lambda: "".join(texts(dash_duo, "#sp-step-label")).startswith(f"step {i} of"))
    wait_until(lambda: "s=3" in dash_duo.driver.current_url)  # Dash has the slider's value
    dash_duo.driver.execute_script(WATCH)
    wait_until(lambda: dash_duo.driver.execute_script("return window.agreed") == "3")
    slow_jobs.touch()  # the new trace is held back: the old one stays on screen meanwhile
    box = dash_duo.find_element("#sp-prompt")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("help")
    dash_duo.find_element("#sp-go").click()
    wait_until(lambda: not dash_duo.find_element("#sp-go").is_enabled())  # the job runs (held)
    wait_until(lambda: "s=" not in dash_duo.driver.current_url)  # the new state (step 0) is out
    wait_until(lambda: dash_duo.driver.execute_script("return window.agreed") == "0")
    slow_jobs.unlink()
    wait_until(lambda: "".join(texts(dash_duo, "#sp-chips .chip")).startswith("help"))
    wait_until(lambda: "".join(texts(dash_duo, "#sp-step-label")).startswith("step 0 of 0–7"))  # the new trace
    agreed, longest = dash_duo.driver.execute_script("return [window.agreed, window.longest]")
    assert agreed == "0" and longest <= 2
    no_console_errors(dash_duo)
