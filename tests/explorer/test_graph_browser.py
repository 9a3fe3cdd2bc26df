"""Token graph in headless Chromium: stepping without the server (the step layer draws the trace's
float32 energies), the base layer (edges and nodes, none in plotly), hover and a clicked node's edges
found by the layers, wheel zoom."""

from __future__ import annotations

from pathlib import Path

import pytest
import numpy as np
from selenium.webdriver.common.keys import Keys

from brillm_core import load_checkpoint
from explorer import compute
from explorer.app import create_app
from explorer.cache import ResultCache
from explorer.figures import graph
from explorer.state import ViewState

from .browser import no_console_errors, open_link, text, wait_until

pytestmark = pytest.mark.browser
PLOT = "document.querySelector('#tg-graph .js-plotly-plot')"


@pytest.fixture
def counted_app(model_root: Path, cache_dir: Path):
    """The app, counting the callback requests its server receives."""
    app = create_app([model_root], cache_dir)
    app.callback_requests = 0
    served = app.server.wsgi_app  # the app is set up already: wrap it rather than add a Flask hook

    def counting(environ: dict, start_response):
        if environ.get("PATH_INFO", "").endswith("/_dash-update-component"):
            app.callback_requests += 1
        return served(environ, start_response)

    app.server.wsgi_app = counting
    return app


def plot(dash_duo, expression: str):
    """Evaluate ``expression`` with ``gd`` bound to the graph's plotly element."""
    return dash_duo.driver.execute_script(f"var gd = {PLOT}; return gd && ({expression});")


def viewport_point(dash_duo, node_x: float, node_y: float) -> tuple[float, float]:
    """Where a point of the layout is on the screen."""
    return tuple(plot(dash_duo, f"""(function () {{
        var box = gd.getBoundingClientRect(), fl = gd._fullLayout;
        return [box.left + fl._size.l + fl.xaxis.l2p({node_x}), box.top + fl._size.t + fl.yaxis.l2p({node_y})];
    }})()"""))


def mouse(dash_duo, kind: str, x: float, y: float, **extra) -> None:
    """A real mouse event at viewport coordinates (Chrome DevTools protocol)."""
    dash_duo.driver.execute_cdp_cmd("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, **extra})


def drawn(dash_duo) -> dict:
    """What the step layer drew last (gd.drawnStep, see assets/graph_layers.js)."""
    return plot(dash_duo, "gd.drawnStep") or {}


def test_graph_steps_in_the_browser_and_draws_a_clicked_node(dash_duo, counted_app, model_root: Path,
                                                             tmp_path: Path) -> None:
    ckpt = load_checkpoint(model_root / "alpha", device="cpu")
    trace = ckpt.trace("abc", compute.settings_of(ViewState(max_new_tokens=4)))
    dash_duo.start_server(counted_app)
    open_link(dash_duo, "/graph#m=alpha&p=abc&n=4")
    wait_until(lambda: text(dash_duo, "#tg-step-label").startswith("step 0 of 0–5"))
    wait_until(lambda: drawn(dash_duo).get("step") == 0)
    assert drawn(dash_duo)["numbers"] == ["0"]  # step 0's arrow, numbered as the label counts
    assert len(drawn(dash_duo)["labels"]) >= 2 and all("#" in label for label in drawn(dash_duo)["labels"])
    g = compute.graph_for(ResultCache(tmp_path / "own"), ckpt)
    edges = len(graph.thinned_edges(g, 3))
    assert plot(dash_duo, "gd.drawnEdges") == edges > 0  # the base layer's edges, from the figure's pairs
    assert plot(dash_duo, "gd.drawnNodes") == ckpt.config.vocab_size  # and its nodes, from the figure's meta
    # none of them drawn by plotly (one gap point each, for the legend), and nothing in WebGL
    assert plot(dash_duo, f"[gd._fullData[0].x.length, gd._fullData[{graph.NODES}].x.length]") == [1, 1]
    assert plot(dash_duo, "gd._fullData.map(function (t) { return t.type; })") == ["scatter"] * 6

    def check_energies(step: int) -> None:
        """The drawn colour range is the trace's float32 values, every candidate coloured."""
        row = trace.energies[step].numpy()
        assert (drawn(dash_duo)["lo"], drawn(dash_duo)["hi"]) == (float(np.nanmin(row)), float(np.nanmax(row)))
        assert drawn(dash_duo)["coloured"] == int(np.isfinite(row).sum())

    check_energies(0)
    wait_until(lambda: dash_duo.find_element("#tg-go").is_enabled())  # the first job is over
    requests = counted_app.callback_requests

    body = dash_duo.find_element("body")
    body.send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: text(dash_duo, "#tg-step-label").startswith("step 1 of 0–5"))
    assert drawn(dash_duo)["step"] == 1 and drawn(dash_duo)["numbers"] == ["0", "1"]
    check_energies(1)
    body.send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: text(dash_duo, "#tg-step-label").startswith("step 2 of 0–5"))
    wait_until(lambda: "s=2" in dash_duo.driver.current_url)  # the link follows the step
    body.send_keys(Keys.ARROW_LEFT)
    wait_until(lambda: text(dash_duo, "#tg-step-label").startswith("step 1 of 0–5"))
    # there and back within one task: the step drawn stays 1, and Dash's later moves (play) still draw
    dash_duo.driver.execute_script("for (const key of ['ArrowRight', 'ArrowLeft']) "
                                   "document.body.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true}));")
    assert drawn(dash_duo)["step"] == 1
    dash_duo.find_element("#tg-play").click()  # play runs to the last step and stops there
    wait_until(lambda: text(dash_duo, "#tg-step-label").startswith("step 5 of 0–5"))
    wait_until(lambda: "play" in dash_duo.find_element("#tg-play").text)
    assert drawn(dash_duo)["step"] == 5 and len(drawn(dash_duo)["numbers"]) == 6
    check_energies(5)
    for _ in range(4):
        body.send_keys(Keys.ARROW_LEFT)
    wait_until(lambda: text(dash_duo, "#tg-step-label").startswith("step 1 of 0–5"))
    wait_until(lambda: drawn(dash_duo)["step"] == 1)
    assert counted_app.callback_requests == requests  # stepping never asked the server

    # hover node 4: the layers find it under the mouse and show its text and energy at the step on screen
    node_x, node_y = (float(v) for v in g.positions[4])
    plot(dash_duo, "gd.scrollIntoView()")
    x, y = viewport_point(dash_duo, node_x, node_y)
    mouse(dash_duo, "mouseMoved", x + 1, y)
    wait_until(lambda: "#4" in text(dash_duo, "#tg-graph .graph-hover"))
    energy = dash_duo.driver.execute_script("return document.querySelector('#tg-graph .graph-hover').innerText")
    assert np.float32(energy.split("energy at this step: ")[1].split("\n")[0]) == trace.energies[1, 4].numpy()
    # click it: its strongest out- and in-edges are drawn, the legend names them
    mouse(dash_duo, "mousePressed", x, y, button="left", clickCount=1)
    mouse(dash_duo, "mouseReleased", x, y, button="left", clickCount=1)
    wait_until(lambda: "#4" in text(dash_duo, "#tg-details h4"))
    # the step layer draws them (the selected node's ring among them) from the page's selection
    wait_until(lambda: (drawn(dash_duo).get("selection") or {}).get("node") == 4)
    assert drawn(dash_duo)["selection"]["in"] == g.sources[g.in_edges(4, 5)].tolist()
    wait_until(lambda: plot(dash_duo, f"gd._fullData[{graph.OUT_EDGES}].visible") is True)
    wait_until(lambda: "strongest out-edges of" in text(dash_duo, "#tg-graph .legend"))
    assert "path so far" in text(dash_duo, "#tg-graph .legend")
    assert "node=4" in dash_duo.driver.current_url and "s=1" in dash_duo.driver.current_url
    assert drawn(dash_duo)["step"] == 1 and drawn(dash_duo)["numbers"] == ["0", "1"]  # the step survived the click

    # the mouse wheel zooms
    before = plot(dash_duo, "gd._fullLayout.xaxis.range.slice()")
    cx, cy = viewport_point(dash_duo, 0.0, 0.0)
    mouse(dash_duo, "mouseWheel", cx, cy, deltaX=0, deltaY=-300)
    wait_until(lambda: plot(dash_duo, "gd._fullLayout.xaxis.range.slice()") != before)
    after = plot(dash_duo, "gd._fullLayout.xaxis.range.slice()")
    assert after[1] - after[0] < before[1] - before[0]
    wait_until(lambda: plot(dash_duo, "gd.layersRange") == plot(dash_duo, "gd._fullLayout.xaxis.range.slice()"))

    # the SVG export carries the canvas layers (edges, step) as pictures over plotly's own drawing
    dash_duo.find_element("button.export-image[data-graph='tg-graph'][data-format='svg']").click()
    svg = wait_until(lambda: (Path(dash_duo.download_path) / "tg-graph.svg").exists()
                     and (Path(dash_duo.download_path) / "tg-graph.svg").read_text())
    assert svg.count('<image x="0" y="0"') == 2 and svg.rstrip().endswith("</svg>")
    no_console_errors(dash_duo)
