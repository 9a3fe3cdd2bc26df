"""Page callbacks are module-level functions over plain data: called here without an app, they give
the engine's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from brillm_core import load_checkpoint, recall_activation
from explorer import pathview
from explorer.cache import ResultCache
from explorer.context import Services
from explorer.pages import model_card, recall
from explorer.registry import Registry
from explorer.state import ViewState, import_document


@pytest.fixture
def services(model_root: Path, cache_dir: Path) -> Services:
    return Services(Registry([model_root]), ResultCache(cache_dir))


def test_recall_job_and_render_give_the_engines_ranking(services: Services, model_root: Path) -> None:
    state = ViewState(model="alpha", prompt="ab", hops=2, branch=3, beam=4, node=3)
    seen: list[tuple[str, str]] = []
    meta = pathview.run_job(services, recall.PAGE, seen.append, pathview.request_for(recall.PAGE, state))
    assert meta["error"] == "" and seen[0] == ("0", "loading checkpoint…") and seen[-1] == ("3", "done")
    graph, rows, columns, reverse, _msg, _note, marked = recall.render(services, meta, {"node": 3})
    ckpt = load_checkpoint(model_root / "alpha", device="cpu")
    expected = recall_activation(ckpt.model, ckpt.encode("ab").ids, hops=2, branch=3, beam=4).to_frame()
    assert [r["node"] for r in rows] == expected["node"].tolist()[: recall.TABLE_ROWS]
    np.testing.assert_allclose([r["activation"] for r in rows], expected["activation"].to_numpy()[: recall.TABLE_ROWS])
    assert "#3" in reverse.layout.title.text and marked[0]["if"]["filter_query"] == "{node} = 3"
    assert recall.cost("2", "3", "4") == "at most 4 propagation steps (each one V×d×d product)"
    assert recall.cost("x", "3", "4") == ""


def test_model_card_render_and_export(services: Services, model_root: Path) -> None:
    _body, _own, _loss, _msg, link, model, options = model_card.render(services, None, "#m=beta&p=x", None)
    ckpt = load_checkpoint(model_root / "beta", device="cpu")
    assert model == "beta" and link == "#m=beta&p=x" and [o["value"] for o in options] == ["alpha", "beta"]
    picked = model_card.render(services, model_card.ID.frame.model, "#m=beta", "alpha")
    assert picked[5] == "alpha" and picked[4] == "#m=alpha"
    view, state, warnings = import_document(model_card.export(services, "#m=beta&s=2")["content"])
    assert (view, state, warnings) == ("model-card", ViewState(model="beta", step=2), [])
    assert json.loads(model_card.export(services, "#m=beta")["content"])["data"]["facts"]["model_id"] == ckpt.model_id
