"""Token graph in headless Chromium: the picture on screen is always the one of the checkpoint chosen
(switching in both directions, between sizes and within one), a second click moves the selection,
a small graph labels every path node and shows every arrow, labels are placed at the zoom on screen,
and the hover gives the energies as the Signal path's bars do."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from selenium.webdriver.common.keys import Keys

from brillm_core import load_checkpoint
from explorer import compute
from explorer.app import create_app
from explorer.figures import common, graph
from explorer.graphdata import GraphData, compute_graph_data
from explorer.pages import token_graph
from explorer.state import ViewState

from .browser import no_console_errors, open_link, text, wait_until
from .conftest import make_checkpoint
from .test_graph_browser import drawn, mouse, plot, viewport_point

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"
WIDE = [chr(0x4E00 + i) for i in range(400)]  # a 400-token vocabulary: more nodes than labels fit


@pytest.fixture(scope="module")
def more_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """'small' (12 tokens, beside the 30 of 'alpha' and 'beta') and 'wide' (400 tokens)."""
    root = tmp_path_factory.mktemp("more-models")
    make_checkpoint(root / "small", seed=3, hidden=6, chars=list("abcdefghij ."))
    make_checkpoint(root / "wide", seed=4, hidden=8, chars=WIDE)
    return root


def layout_of(directory: Path, state: ViewState) -> GraphData:
    """The graph data the page draws for a checkpoint (the layout is seeded: the same every time)."""
    return compute_graph_data(load_checkpoint(directory, device="cpu").model, compute.settings_of(state))


def drawn_picture(dash_duo) -> dict:
    """The base layer's nodes as drawn (count and float32 positions) and the picture they belong to."""
    return plot(dash_duo, "gd.drawnBase && {nodes: gd.drawnBase.nodes, picture: gd.drawnBase.picture, "
                          "x: Array.from(gd.drawnBase.x), y: Array.from(gd.drawnBase.y)}") or {}


def check_picture(dash_duo, directory: Path, state: ViewState) -> None:
    """Wait for the graph of ``directory`` and its trace's step 0: every node where its layout puts it,
    the step's colours from its own energies, drawn over this picture."""
    g = layout_of(directory, state)
    x, y = g.positions[:, 0].tolist(), g.positions[:, 1].tolist()
    wait_until(lambda: drawn_picture(dash_duo).get("nodes") == len(x)
               and (drawn_picture(dash_duo)["x"], drawn_picture(dash_duo)["y"]) == (x, y)
               and drawn(dash_duo).get("picture") == drawn_picture(dash_duo)["picture"]
               and drawn(dash_duo).get("step") == 0)
    assert plot(dash_duo, "gd.drawnEdges") == len(graph.thinned_edges(g, state.graph_k))
    trace = load_checkpoint(directory, device="cpu").trace(state.prompt, compute.settings_of(state))
    assert drawn(dash_duo)["coloured"] == int(np.isfinite(trace.energies[0].numpy()).sum())
    assert drawn(dash_duo)["hi"] == float(np.nanmax(trace.energies[0].numpy()))


def test_switching_checkpoints_draws_the_new_picture(dash_duo, model_root: Path, more_models: Path,
                                                     cache_dir: Path) -> None:
    dash_duo.start_server(create_app([model_root, more_models], cache_dir))
    state = ViewState(prompt="abc", max_new_tokens=4)
    open_link(dash_duo, "/graph#m=small&p=abc&n=4")
    check_picture(dash_duo, more_models / "small", state)
    for name, directory in (("alpha", model_root), ("beta", model_root), ("small", more_models)):
        # small -> large, same size (every position differs), large -> small
        dash_duo.select_dcc_dropdown("#tg-model", name)
        check_picture(dash_duo, directory / name, state)
        wait_until(lambda: dash_duo.find_element("#tg-go").is_enabled())
        dash_duo.find_element("body").send_keys(Keys.ARROW_RIGHT)  # stepping draws on the new picture
        wait_until(lambda: drawn(dash_duo).get("step") == 1 and drawn(dash_duo)["numbers"] == ["0", "1"])
    no_console_errors(dash_duo)


def click_node(dash_duo, g: GraphData, node: int) -> None:
    """A real mouse click on a node."""
    x, y = viewport_point(dash_duo, *(float(v) for v in g.positions[node]))
    mouse(dash_duo, "mousePressed", x, y, button="left", clickCount=1)
    mouse(dash_duo, "mouseReleased", x, y, button="left", clickCount=1)


def test_a_second_click_moves_the_selection(dash_duo, model_root: Path, cache_dir: Path) -> None:
    dash_duo.start_server(create_app([model_root], cache_dir))
    state = ViewState(model="alpha", prompt="abc", max_new_tokens=4)
    open_link(dash_duo, "/graph#m=alpha&p=abc&n=4")
    g = layout_of(model_root / "alpha", state)
    token = load_checkpoint(model_root / "alpha", device="cpu").token
    wait_until(lambda: drawn(dash_duo).get("step") == 0)
    plot(dash_duo, "gd.scrollIntoView()")
    for node in (4, 20, 4):
        click_node(dash_duo, g, node)
        label = common.token_label(node, token)
        wait_until(lambda: text(dash_duo, "#tg-details h4") == label)
        wait_until(lambda: (drawn(dash_duo).get("selection") or {}).get("node") == node)
        chosen = drawn(dash_duo)["selection"]  # the ring and the edges drawn are this node's
        assert chosen["out"] == g.targets[g.out_edges(node, token_graph.DETAIL_K)].tolist()
        assert chosen["in"] == g.sources[g.in_edges(node, token_graph.DETAIL_K)].tolist()
        wait_until(lambda: f"strongest out-edges of {label}" in text(dash_duo, "#tg-graph .legend"))
        wait_until(lambda: f"node={node}" in dash_duo.driver.current_url)
        assert drawn(dash_duo)["step"] == 0  # the step stays drawn
    no_console_errors(dash_duo)


def test_a_node_click_is_answered_by_one_request_that_waits_for_nothing(model_root: Path, cache_dir: Path) -> None:
    app = create_app([model_root], cache_dir)
    answers = [(outputs, c["inputs"]) for outputs, c in app.callback_map.items()
               if any(i["id"] == token_graph.ID.graph and i["property"] == "clickData" for i in c["inputs"])
               and f"{token_graph.ID.details}.children" in outputs]
    assert len(answers) == 1
    outputs, inputs = answers[0]
    assert [(i["id"], i["property"]) for i in inputs] == [(token_graph.ID.graph, "clickData")]
    assert f"{token_graph.ID.graph}.figure" not in outputs  # no new figure for plotly before the answer shows


def node_of(label: str) -> int:
    """The node of a label ('text #id')."""
    return int(re.search(r"#(\d+)$", label).group(1))


def boxes_apart(boxes: list[list[float]]) -> bool:
    """Whether no two (left, top, right, bottom) boxes overlap."""
    return not any(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3] for a, b in itertools.combinations(boxes, 2))


def test_a_small_graph_labels_every_path_node_and_shows_every_arrow(dash_duo, cache_dir: Path) -> None:
    state = ViewState(model="teaching", prompt="the dog . the cats very often", max_new_tokens=6)
    checkpoint = load_checkpoint(SAMPLES / "teaching", device="cpu")
    trace = checkpoint.trace(state.prompt, compute.settings_of(state))
    last = trace.num_steps - 1
    dash_duo.start_server(create_app([SAMPLES / "teaching"], cache_dir))
    open_link(dash_duo, f"/graph#m=teaching&p=the%20dog%20.%20the%20cats%20very%20often&n=6&s={last}")
    wait_until(lambda: drawn(dash_duo).get("step") == last)
    path = trace.path.tolist()
    labels = drawn(dash_duo)["labels"]
    assert {common.token_label(n, checkpoint.token) for n in path} <= set(labels)  # every path node labelled
    assert boxes_apart(drawn(dash_duo)["boxes"])  # and no label over another
    assert drawn(dash_duo)["arrows"] == len(path) - 1
    # every arrow can be seen: its two nodes are apart on the screen (or one node: a loop)
    pixels = plot(dash_duo, f"""{path}.map(function (n) {{
        return [gd._fullLayout.xaxis.l2p(gd.drawnBase.x[n]), gd._fullLayout.yaxis.l2p(gd.drawnBase.y[n])]; }})""")
    for (a, b), (pa, pb) in zip(zip(path, path[1:]), zip(pixels, pixels[1:])):
        assert a == b or np.hypot(pa[0] - pb[0], pa[1] - pb[1]) >= 30, (a, b)
    # no two nodes of the graph on one spot
    everywhere = plot(dash_duo, """Array.from(gd.drawnBase.x).map(function (x, n) {
        return [gd._fullLayout.xaxis.l2p(x), gd._fullLayout.yaxis.l2p(gd.drawnBase.y[n])]; })""")
    assert min(np.hypot(a[0] - b[0], a[1] - b[1]) for a, b in itertools.combinations(everywhere, 2)) >= 30
    # the hover: the exact float32 energy and its difference to the step's best, as the bars give them
    node = path[-1]
    plot(dash_duo, "gd.scrollIntoView()")
    x, y = viewport_point(dash_duo, float(plot(dash_duo, f"gd.drawnBase.x[{node}]")),
                          float(plot(dash_duo, f"gd.drawnBase.y[{node}]")))
    mouse(dash_duo, "mouseMoved", x + 1, y)
    wait_until(lambda: "energy at this step" in text(dash_duo, "#tg-graph .graph-hover"))
    lines = dash_duo.driver.execute_script(
        "return document.querySelector('#tg-graph .graph-hover').innerText").split("\n")
    energy, best = trace.energies[last, node].numpy(), np.nanmax(trace.energies[last].numpy())
    assert np.float32(lines[1].split(": ")[1]) == energy  # the float32 itself, not a rounding of it
    if energy == best:
        assert lines[2] == "the step's best"
    else:  # four decimals, as the bars' hover
        shown = float(lines[2].replace("−", "-").removesuffix(" from the step's best"))
        assert abs(shown - (float(energy) - float(best))) <= 0.5e-4 + 1e-9, lines
    no_console_errors(dash_duo)


def test_zooming_in_labels_more_of_the_nodes_in_view(dash_duo, more_models: Path, cache_dir: Path) -> None:
    prompt = "".join(WIDE[i] for i in (3, 50, 120))
    dash_duo.start_server(create_app([more_models], cache_dir))
    open_link(dash_duo, f"/graph#m=wide&p={prompt}&n=3")
    wait_until(lambda: drawn(dash_duo).get("step") == 0 and drawn_picture(dash_duo).get("nodes") == len(WIDE))
    before = {node_of(label) for label in drawn(dash_duo)["labels"]}
    assert boxes_apart(drawn(dash_duo)["boxes"])
    plot(dash_duo, "gd.scrollIntoView()")
    cx, cy = viewport_point(dash_duo, 0.0, 0.0)
    while plot(dash_duo, "gd._fullLayout.xaxis.range[1] - gd._fullLayout.xaxis.range[0]") > 0.8:  # zoom in 2.5x
        mouse(dash_duo, "mouseWheel", cx, cy, deltaX=0, deltaY=-300)
        wait_until(lambda: plot(dash_duo, "gd.layersRange") == plot(dash_duo, "gd._fullLayout.xaxis.range.slice()"))
    (x0, x1), (y0, y1) = plot(dash_duo, "[gd._fullLayout.xaxis.range.slice(), gd._fullLayout.yaxis.range.slice()]")
    seen = drawn_picture(dash_duo)
    in_view = {n for n in range(len(WIDE)) if x0 <= seen["x"][n] <= x1 and y0 <= seen["y"][n] <= y1}
    after = {node_of(label) for label in drawn(dash_duo)["labels"]}
    assert after <= in_view and len(after) > len(before & in_view), (len(after), len(before & in_view))
    assert boxes_apart(drawn(dash_duo)["boxes"])
    no_console_errors(dash_duo)
