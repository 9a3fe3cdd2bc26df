"""Token graph in headless Chromium: stepping without the server, a clicked node's edges, wheel zoom."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import request
from selenium.webdriver.common.keys import Keys

from explorer.app import create_app
from explorer.figures import graph

from .browser import no_console_errors, open_link, text, wait_until

pytestmark = pytest.mark.browser
PLOT = "document.querySelector('#tg-graph .js-plotly-plot')"


@pytest.fixture
def counted_app(model_root: Path, cache_dir: Path):
    """The app, counting the callback requests its server receives."""
    app = create_app([model_root], cache_dir)
    app.callback_requests = 0

    @app.server.before_request
    def count() -> None:
        if request.path.endswith("/_dash-update-component"):
            app.callback_requests += 1

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


def test_graph_steps_in_the_browser_and_draws_a_clicked_node(dash_duo, counted_app) -> None:
    dash_duo.start_server(counted_app)
    open_link(dash_duo, "/graph#m=alpha&p=abc&n=4")
    wait_until(lambda: text(dash_duo, "#tg-step-label").startswith("step 0 of 0–5"))
    wait_until(lambda: plot(dash_duo, "(gd.layout.annotations || []).length") > 2)
    assert plot(dash_duo, f"gd.data[{graph.PATH_TRACE}].x.length") == 2
    assert plot(dash_duo, "gd.layout.annotations[1].text") == "1"
    labels = plot(dash_duo, "gd.layout.annotations.slice(2).map(function (a) { return a.text; })")
    assert len(labels) >= 2 and all("#" in label for label in labels)  # the step's source and target at least
    colours_before = plot(dash_duo, f"Array.from(gd.data[{graph.NODES}].marker.color)")
    wait_until(lambda: dash_duo.find_element("#tg-go").is_enabled())  # the first job is over
    requests = counted_app.callback_requests

    body = dash_duo.find_element("body")
    body.send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: text(dash_duo, "#tg-step-label").startswith("step 1 of 0–5"))
    wait_until(lambda: plot(dash_duo, f"gd.data[{graph.PATH_TRACE}].x.length") == 3)
    assert plot(dash_duo, "gd.layout.annotations[3].text") == "2"
    assert plot(dash_duo, f"Array.from(gd.data[{graph.NODES}].marker.color)") != colours_before
    body.send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: text(dash_duo, "#tg-step-label").startswith("step 2 of 0–5"))
    wait_until(lambda: "s=2" in dash_duo.driver.current_url)  # the link follows the step
    body.send_keys(Keys.ARROW_LEFT)
    wait_until(lambda: text(dash_duo, "#tg-step-label").startswith("step 1 of 0–5"))
    dash_duo.find_element("#tg-play").click()  # play runs to the last step and stops there
    wait_until(lambda: text(dash_duo, "#tg-step-label").startswith("step 5 of 0–5"))
    wait_until(lambda: "play" in dash_duo.find_element("#tg-play").text)
    assert plot(dash_duo, f"gd.data[{graph.PATH_TRACE}].x.length") == 7
    body.send_keys(Keys.ARROW_LEFT)
    body.send_keys(Keys.ARROW_LEFT)
    body.send_keys(Keys.ARROW_LEFT)
    body.send_keys(Keys.ARROW_LEFT)
    wait_until(lambda: text(dash_duo, "#tg-step-label").startswith("step 1 of 0–5"))
    assert counted_app.callback_requests == requests  # stepping never asked the server

    # click node 4: its strongest out- and in-edges are drawn, the legend names them
    node_x, node_y = plot(dash_duo, f"[gd._fullData[{graph.NODES}].x[4], gd._fullData[{graph.NODES}].y[4]]")
    plot(dash_duo, "gd.scrollIntoView()")
    x, y = viewport_point(dash_duo, node_x, node_y)
    mouse(dash_duo, "mouseMoved", x, y)
    wait_until(lambda: "#4" in text(dash_duo, "#tg-graph .hoverlayer"))  # plotly found the node under the mouse
    mouse(dash_duo, "mousePressed", x, y, button="left", clickCount=1)
    mouse(dash_duo, "mouseReleased", x, y, button="left", clickCount=1)
    wait_until(lambda: "#4" in text(dash_duo, "#tg-details h4"))
    wait_until(lambda: plot(dash_duo, f"gd._fullData[{graph.OUT_EDGES}].x.length") > 0)
    assert plot(dash_duo, f"gd._fullData[{graph.MARKS}].x[0]") == pytest.approx(node_x)
    assert plot(dash_duo, f"gd._fullData[{graph.IN_EDGES}].x.length") > 0
    legend = text(dash_duo, "#tg-graph .legend")
    assert "strongest out-edges of" in legend and "path so far" in legend
    assert "node=4" in dash_duo.driver.current_url and "s=1" in dash_duo.driver.current_url
    assert plot(dash_duo, "gd.layout.annotations[3].text") == "2"  # the step's drawing survived the click

    # the mouse wheel zooms
    before = plot(dash_duo, "gd._fullLayout.xaxis.range.slice()")
    cx, cy = viewport_point(dash_duo, 0.0, 0.0)
    mouse(dash_duo, "mouseWheel", cx, cy, deltaX=0, deltaY=-300)
    wait_until(lambda: plot(dash_duo, "gd._fullLayout.xaxis.range.slice()") != before)
    after = plot(dash_duo, "gd._fullLayout.xaxis.range.slice()")
    assert after[1] - after[0] < before[1] - before[0]
    no_console_errors(dash_duo)
