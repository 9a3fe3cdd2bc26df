"""Recall: the chosen node is one choice everywhere (reverse view, table row, ring on the graph), and a choice
reads the prompt's energies once computed."""

from __future__ import annotations

from pathlib import Path

import dash
import pandas as pd
import plotly.graph_objects as go
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from brillm_core import incoming_energy
from explorer import compute, pathview
from explorer.app import create_app
from explorer.cache import ResultCache
from explorer.context import Services
from explorer.figures import recall as figs
from explorer.pages import recall as page
from explorer.registry import Registry
from explorer.state import ViewState, to_dict

from .browser import no_console_errors, open_link, text, wait_until

STATE = ViewState(model="alpha", prompt="abc", hops=3, branch=8, beam=16)


@pytest.fixture
def services(model_root: Path, cache_dir: Path) -> Services:
    return Services(Registry([model_root]), ResultCache(cache_dir))


@pytest.fixture
def meta(services: Services) -> dict:
    return pathview.run_job(services, page.PAGE, lambda _p: None, pathview.request_for(page.PAGE, STATE))


def test_a_reverse_view_reads_the_prompts_energies_computed_once(services: Services, meta: dict,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = services.registry.load("alpha")
    ids = ckpt.encode(STATE.prompt).ids
    calls: list[int] = []
    fresh = compute.reverse_energies
    monkeypatch.setattr(compute, "reverse_energies", lambda *a: calls.append(1) or fresh(*a))
    for node in (0, 5, 17):
        frame = compute.reverse_for(services.cache, ckpt, STATE.with_(node=node))
        expected = incoming_energy(ckpt.model, node, ids, compute.settings_of(STATE))
        pd.testing.assert_frame_equal(frame, expected)
    assert calls == []  # the recall job computed them already, for every node


def test_the_ring_marks_the_chosen_node_where_the_graph_draws_it(services: Services, meta: dict) -> None:
    ckpt = services.registry.load("alpha")
    result = compute.recall_for(services.cache, ckpt, STATE)
    pos = figs.recall_positions(result, 40)
    node = next(n for n in pos if n != result.context[-1])
    [ring] = figs.selection_ring(result, node)
    assert (ring["xanchor"], ring["yanchor"]) == pos[node] and ring["type"] == "circle"
    assert figs.selection_ring(result, None) == [] and figs.selection_ring(result, -5) == []
    fig = go.Figure(figs.recall_graph(result, ckpt.token, selected=node))  # a valid figure
    assert fig.layout.shapes[0].xanchor == pos[node][0] and fig.data[-1].customdata[0][0] == result.context[-1]
    assert go.Figure(figs.recall_graph(result, ckpt.token)).layout.shapes == ()


def test_select_draws_the_choice_once_where_it_is(services: Services, meta: dict) -> None:
    ckpt = services.registry.load("alpha")
    result = compute.recall_for(services.cache, ckpt, STATE)
    ranked = figs.ranked_nodes(result)
    node = ranked[page.PAGE_ROWS + 1]  # on the table's second page
    state = to_dict(STATE.with_(node=node))
    reverse, style, turned, ring, drawn = page.select(services, None, meta, state, None, [])
    assert f"#{node} " in reverse["layout"]["title"]["text"]
    assert style[-1]["if"]["filter_query"] == f"{{node}} = {node}" and turned == 1  # its row marked, page 2 shown
    assert drawn == {"key": meta["key"], "node": node} and ring == figs.selection_ring(result, node)
    kept = page.select(services, None, meta, state, None, [{"column_id": "token", "direction": "asc"}])
    assert kept[2] is dash.no_update  # a table the user sorted stays on its page
    assert page.select(services, None, meta, state, drawn, []) == (dash.no_update,) * len(page.SELECTION)
    assert {(page.ID.graph, "figure"), (page.ID.table, "data"), (page.ID.table, "active_cell")}.isdisjoint(
        page.SELECTION)  # a choice never resends the graph or the table, nor writes what the reducer reads
    missing = page.select(services, None, meta, to_dict(STATE.with_(node=10_000)), None, [])
    assert "Node 10000 does not exist here" in missing[0].layout.annotations[0].text and missing[3] == []


def test_a_click_is_drawn_before_the_state_names_it(services: Services, meta: dict) -> None:
    ckpt = services.registry.load("alpha")
    first, clicked = figs.ranked_nodes(compute.recall_for(services.cache, ckpt, STATE))[:2]
    state = to_dict(STATE.with_(node=first))  # the reducer has not written the click yet
    picked = {"node": clicked, "run": meta["key"]}
    reverse, style, _, _, drawn = page.select(services, picked, meta, state, {"key": meta["key"], "node": first}, [])
    assert f"#{clicked} " in reverse["layout"]["title"]["text"] and drawn["node"] == clicked
    assert style[-1]["if"]["filter_query"] == f"{{node}} = {clicked}"
    forged = page.select(services, {"node": "DROP TABLE"}, meta, state, None, [])
    assert forged[4]["node"] == first  # a value no click sends: the state's node


# --- browser ---------------------------------------------------------------------------------------------------


def marked_rows(dash_duo) -> list[str]:
    """The node of every table row that a cell marks, by a colour or a border unlike a plain cell's (the chosen
    row, or the table's own mark of the cell clicked last), as drawn (the mouse moved off the table first)."""
    dash_duo.driver.execute_script("document.querySelector('h2').scrollIntoView()")
    ActionChains(dash_duo.driver).move_to_element(dash_duo.find_element("h2")).perform()
    return dash_duo.driver.execute_script(
        "var rows = Array.from(document.querySelectorAll('#rc-table tbody tr')).filter(r => r.querySelector('td'));"
        "var look = td => { var s = getComputedStyle(td), bg = s.backgroundColor;"  # transparent: the white page
        "  return [bg === 'rgba(0, 0, 0, 0)' ? 'rgb(255, 255, 255)' : bg, s.borderRightColor, s.borderBottomColor]"
        "  .join(); };"
        "var cells = rows.map(r => Array.from(r.querySelectorAll('td')).map(look));"
        "var plain = cells[0].map((_, k) => { var n = {}; cells.forEach(c => { n[c[k]] = (n[c[k]] || 0) + 1; });"
        "  return Object.keys(n).sort((a, b) => n[b] - n[a])[0]; });"  # each column's most common look
        "return rows.filter((r, i) => cells[i].some((c, k) => c !== plain[k]))"
        "  .map(r => r.querySelector('td').textContent.trim());")


def ring_at(dash_duo) -> list:
    """Where the graph draws its ring (data coordinates), [] when none."""
    return dash_duo.driver.execute_script(
        "var gd = document.querySelector('#rc-graph .js-plotly-plot');"
        "return (gd._fullLayout.shapes || []).map(s => [s.xanchor, s.yanchor]);")


# Wraps the page's fetch: a timeline of callback requests sent and answered, the reducer's answers (which write
# the state) held back 400 ms, as a busy server would.
HOLD_THE_STATE = """
window.__timeline = [];
var plain = window.fetch;
window.fetch = function (url, init) {
  if (!/_dash-update-component/.test(String(url))) return plain.apply(this, arguments);
  var output = JSON.parse(init.body).output, hold = output.indexOf('rc-state.data') >= 0 ? 400 : 0;
  window.__timeline.push('sent ' + output);
  return plain.apply(this, arguments).then(answer => new Promise(done => setTimeout(() => {
    window.__timeline.push('answered ' + output); done(answer); }, hold)));
};
"""


def open_recall_and_click_row(dash_duo, model_root: Path, tmp_path: Path, row: int, script: str = "") -> str:
    """Serve the app, open a recall, run ``script`` in the page, click the table's row ``row``; its node, once
    its reverse view is drawn."""
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(create_app([model_root], tmp_path / "cache"))
    open_link(dash_duo, "/recall#m=alpha&p=abc&h=3&b=8&bm=16")
    wait_until(lambda: len(dash_duo.find_elements("#rc-table tbody td")) > 10)
    if script:
        dash_duo.driver.execute_script(script)
    cells = dash_duo.find_elements("#rc-table tbody tr")[row].find_elements("css selector", "td")
    node = cells[0].text
    cells[1].click()
    wait_until(lambda: f"#{node} " in text(dash_duo, "#rc-reverse .gtitle"))
    return node


@pytest.mark.browser
def test_a_row_click_asks_for_the_reverse_view_at_once(dash_duo, model_root: Path, tmp_path: Path) -> None:
    node = open_recall_and_click_row(dash_duo, model_root, tmp_path, 2, HOLD_THE_STATE)
    wait_until(lambda: f"node={node}" in dash_duo.driver.current_url)
    timeline = dash_duo.driver.execute_script("return window.__timeline")
    asked = next(i for i, t in enumerate(timeline) if t.startswith("sent") and "rc-reverse.figure" in t)
    stated = next(i for i, t in enumerate(timeline) if t.startswith("answered") and "rc-state.data" in t)
    assert asked < stated, [t[:40] for t in timeline]  # one round trip: the reverse view did not wait for the state
    no_console_errors(dash_duo)


@pytest.mark.browser
def test_a_link_naming_a_node_opens_with_its_reverse_view(dash_duo, model_root: Path, tmp_path: Path) -> None:
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(create_app([model_root], tmp_path / "cache"))
    open_link(dash_duo, "/recall#m=alpha&p=abc&h=3&b=8&bm=16&node=5")
    wait_until(lambda: "#5 " in text(dash_duo, "#rc-reverse .gtitle"))
    dash_duo.find_element("#rc-node").send_keys(Keys.BACKSPACE, "7")  # the box, then Back, choose too
    wait_until(lambda: "#7 " in text(dash_duo, "#rc-reverse .gtitle"))
    dash_duo.driver.back()
    wait_until(lambda: "#5 " in text(dash_duo, "#rc-reverse .gtitle"))
    no_console_errors(dash_duo)


@pytest.mark.browser
def test_one_choice_everywhere_after_a_row_or_a_graph_click(dash_duo, model_root: Path, tmp_path: Path) -> None:
    first = open_recall_and_click_row(dash_duo, model_root, tmp_path, 3)
    wait_until(lambda: marked_rows(dash_duo) == [first])
    # a node clicked on the graph: the row clicked before loses every mark, the ring moves to the new node
    picked = dash_duo.driver.execute_script(
        "var gd = document.querySelector('#rc-graph .js-plotly-plot'), k = gd.data.length - 1, t = gd.data[k];"
        "var i = t.customdata.findIndex(c => String(c[0]) !== arguments[0] && c[2] > 0);"
        "gd.emit('plotly_click', {points: [{curveNumber: k, pointNumber: i, customdata: t.customdata[i],"
        " x: t.x[i], y: t.y[i]}]}); return [String(t.customdata[i][0]), t.x[i], t.y[i]];", first)
    node, x, y = picked
    wait_until(lambda: f"node={node}" in dash_duo.driver.current_url)
    wait_until(lambda: f"#{node} " in text(dash_duo, "#rc-reverse .gtitle"))
    wait_until(lambda: marked_rows(dash_duo) == [node])  # the row clicked before is plain again
    wait_until(lambda: ring_at(dash_duo) == [[x, y]])
    assert dash_duo.find_element("#rc-node").get_attribute("value") == node
    no_console_errors(dash_duo)
