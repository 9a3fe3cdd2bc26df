"""Page callbacks are module-level functions over plain data: called here without an app, they give
the engine's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import dash
import numpy as np
import pytest

from brillm_core import load_checkpoint, memory_profile, recall_activation
from explorer import pathview
from explorer.cache import ResultCache
from explorer.compute import settings_of
from explorer.context import Services
from explorer.pages import model_card, recall, teaching, token_graph
from explorer.registry import Registry
from explorer.state import ViewState, import_document, to_dict


@pytest.fixture
def services(model_root: Path, cache_dir: Path) -> Services:
    return Services(Registry([model_root]), ResultCache(cache_dir))


def test_recall_job_and_render_give_the_engines_ranking(services: Services, model_root: Path) -> None:
    state = ViewState(model="alpha", prompt="ab", hops=2, branch=3, beam=4, node=3)
    seen: list[tuple[str, str]] = []
    meta = pathview.run_job(services, recall.PAGE, seen.append, pathview.request_for(recall.PAGE, state))
    assert meta["error"] == "" and seen[0] == ("0", "loading checkpoint…") and seen[-1] == ("3", "done")
    graph, rows, columns, _msg = recall.render(services, meta, {"node": 3})
    ckpt = load_checkpoint(model_root / "alpha", device="cpu")
    expected = recall_activation(ckpt.model, ckpt.encode("ab").ids, hops=2, branch=3, beam=4).to_frame()
    assert [r["node"] for r in rows] == expected["node"].tolist()[: recall.TABLE_ROWS]
    np.testing.assert_allclose([r["activation"] for r in rows], expected["activation"].to_numpy()[: recall.TABLE_ROWS])
    picked = {"node": 3, "run": meta["key"]}
    reverse, marked, _page, _ring, drawn = recall.select(services, picked, meta, {"node": 3}, None, None)
    assert "#3" in reverse["layout"]["title"]["text"] and marked[-1]["if"]["filter_query"] == "{node} = 3"
    assert drawn == {"key": meta["key"], "node": 3}
    assert recall.select(services, picked, meta, {"node": 3}, drawn, None) == (dash.no_update,) * len(recall.SELECTION)
    assert recall.cost("2", "3", "4") == "at most 4 propagation steps (each one V×d×d product)"
    assert recall.cost("x", "3", "4") == ""


def test_model_card_render_and_export(services: Services, model_root: Path) -> None:
    _body, _own, memory, _loss, _msg, link, model, options = model_card.render(services, None, "#m=beta&p=x", None)
    ckpt = load_checkpoint(model_root / "beta", device="cpu")
    assert model == "beta" and link == "#m=beta&p=x" and [o["value"] for o in options] == ["alpha", "beta"]
    profile = memory_profile(ckpt.model, model_card.profile_length(ckpt))
    assert list(memory.data[0].y) == list(profile.by_distance) and f"{profile.entropy:.2f} nats" in memory.layout.title.text
    picked = model_card.render(services, model_card.ID.frame.model, "#m=beta", "alpha")
    assert picked[6] == "alpha" and picked[5] == "#m=alpha"
    view, state, warnings = import_document(model_card.export(services, "#m=beta&s=2")["content"])
    assert (view, state, warnings) == ("model-card", ViewState(model="beta", step=2), [])
    assert json.loads(model_card.export(services, "#m=beta")["content"])["data"]["facts"]["model_id"] == ckpt.model_id


def test_token_graph_render_and_zoom(services: Services, model_root: Path) -> None:
    state = ViewState(model="alpha", prompt="ab", max_new_tokens=3, graph_k=2)
    meta = pathview.run_job(services, token_graph.PAGE, lambda _p: None, pathview.request_for(token_graph.PAGE, state))
    assert meta["error"] == "" and meta["graph_key"]
    ID = token_graph.ID
    fig, drawn, steps, selection, info, slider_max, _msg = token_graph.render(
        services, {f"{ID.frame.meta}.data": ID.frame.meta}, meta, 2, to_dict(state), None)
    trace = load_checkpoint(model_root / "alpha", device="cpu").trace("ab", settings_of(state))
    assert steps["n"] == trace.num_steps and steps["figures"][0]["graph"] == ID.graph
    assert drawn == {"graph": meta["graph_key"], "k": 2} and slider_max == trace.num_steps - 1
    assert info[0].children == "Click a node for its details." and selection["node"] == -1
    # the same k again: nothing to send
    assert token_graph.render(services, {f"{ID.edges}.data": ID.edges}, meta, 2, to_dict(state), drawn) == (
        dash.no_update,) * 7
    click = {"points": [{"curveNumber": token_graph.graph.NODES, "pointIndex": 4}]}
    selection, info = token_graph.select(services, click, meta, drawn)  # a click: its selection and details
    assert "#4" in info[0].children and selection["node"] == 4
    reset = token_graph.zoom(services, ID.reset, meta, to_dict(state), 0).to_plotly_json()["operations"]
    framed = token_graph.zoom(services, ID.zoom, meta, to_dict(state), 0).to_plotly_json()["operations"]
    assert reset != framed and {o["location"][0] for o in reset + framed} == {"layout"}


def test_teaching_quiz_tour_and_render(services: Services) -> None:
    ID = teaching.ID
    state = ViewState(model="alpha", prompt="ab", max_new_tokens=2)
    meta = pathview.run_job(services, teaching.PAGE, lambda _p: None, pathview.request_for(teaching.PAGE, state))
    fresh = teaching.score_quiz(services, {ID.frame.meta}, meta, None, 0, None)
    assert fresh == {"request": meta["request"], "revealed": {}, "right": 0, "tried": 0}
    assert teaching.score_quiz(services, {ID.check}, meta, None, 0, fresh) is dash.no_update  # no guess to check
    revealed = teaching.score_quiz(services, {ID.reveal}, meta, 3, 1, fresh)
    assert revealed["revealed"] == {"1": None} and revealed["tried"] == 0
    toured = teaching.score_quiz(services, {ID.tour_step}, meta, 3, 0, revealed)  # the tour reveals, unscored
    assert toured["revealed"] == {"1": None, "0": None} and toured["tried"] == 0
    assert teaching.score_quiz(services, {ID.tour_step}, meta, None, 0, toured) is dash.no_update  # shown already
    new_path = teaching.score_quiz(services, {ID.frame.meta, ID.tour_step}, meta, None, 2, toured)
    assert new_path["revealed"] == {"2": None}  # a new path while the tour runs: its step on screen revealed
    store, slider_max, options, score, *_ = teaching.render(services, meta, to_dict(state), revealed)
    feedback = next(f for f in store["figures"] if f.get("element") == ID.feedback)["steps"]
    assert feedback[0] == "" and feedback[1].startswith("Most energy goes to")
    chips, quiz_box, formula = teaching.tour_classes(0)
    assert "tour-focus" in chips and "tour-focus" not in quiz_box and score == "Score: 0 of 0"
    assert slider_max == store["n"] - 1 and len(options) == 30
    positions = [0]
    for button in (ID.tour_next, ID.tour_next, ID.tour_prev, ID.tour_end):
        positions.append(teaching.move_tour(button, positions[-1]))
    assert positions == [0, 1, 2, 1, -1] and teaching.move_tour(ID.tour_next, len(teaching.TOUR) - 1) == -1
    assert teaching.show_tour(-1)[0] == {"display": "none"}
    assert teaching.show_tour(0)[3] == f"  (1 of {len(teaching.TOUR)})"
