"""The token graph page's edge strengths follow the view's decoder and start signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from brillm_core import Checkpoint, DecodeSettings, edge_strengths, load_checkpoint
from explorer.app import create_app
from explorer.cache import ResultCache
from explorer.compute import graph_for, graph_key, settings_of
from explorer.graphdata import compute_graph_data
from explorer.pages.token_graph import DETAIL_K, details, request_settings
from explorer.request import ask
from explorer.state import ViewState

from ..conftest import make_checkpoint
from .browser import no_console_errors, open_link, text, texts, wait_until


def test_graph_strengths_follow_the_views_decode_settings(ckpt: Checkpoint, cache_dir: Path) -> None:
    cache = ResultCache(cache_dir)
    plain = ViewState(model="alpha", prompt="ab")
    release = plain.with_(release_decoder=True)
    started = plain.with_(start_signal=(0.5,) * ckpt.config.hidden_size)
    keys = {graph_key(ckpt, settings_of(s)) for s in (plain, release, started)}
    assert len(keys) == 3  # one cached graph per decoder and start signal
    for state in (plain, release, started):
        settings = settings_of(state)
        g = graph_for(cache, ckpt, settings)
        expected = edge_strengths(ckpt.model, settings)
        assert np.array_equal(g.strength, expected.own_energy.numpy(), equal_nan=True)
        assert np.array_equal(g.shared_strength, expected.shared_energy.numpy())
        # The page reads the settings back from the request its background job ran.
        assert request_settings({"request": ask("path", state).to_json()}) == settings
    assert not np.array_equal(graph_for(cache, ckpt, settings_of(plain)).strength,
                              graph_for(cache, ckpt, settings_of(release)).strength, equal_nan=True)


@pytest.mark.browser
@pytest.mark.parametrize("release", [False, True], ids=["training", "release-decoder"])
def test_graph_page_shows_the_strengths_of_the_views_decoder(dash_duo, model_root: Path, cache_dir: Path,
                                                              release: bool) -> None:
    settings = DecodeSettings(release_decoder=release)
    expected = edge_strengths(load_checkpoint(model_root / "alpha").model, settings).shared_energy[4]
    dash_duo.start_server(create_app([model_root], cache_dir))
    open_link(dash_duo, "/graph#m=alpha&p=abc&n=3&node=4" + ("&rd=1" if release else ""))
    wait_until(lambda: "shared-row strength from it" in text(dash_duo, "#tg-details"))
    lines = texts(dash_duo, "#tg-details div")
    shown = [line.rsplit(": ", 1)[1] for line in lines if "shared-row strength from it: " in line]
    assert shown and np.float32(shown[0]) == expected.numpy(), lines  # the exact float32, not a rounding of it
    no_console_errors(dash_duo)


def test_node_details_show_a_barred_self_loop_as_no_strength() -> None:
    checkpoint = make_checkpoint(vocab_size=12, own=0.15, seed=0)  # few own edges: a self-loop makes the top 5
    g = compute_graph_data(checkpoint.model, DecodeSettings(release_decoder=True))
    loops = [int(s) for s, t in zip(g.sources, g.targets) if s == t]
    node = next(n for n in loops if n in g.targets[g.out_edges(n, DETAIL_K)])
    shown = str(details(g, checkpoint, node))
    assert "'–'" in shown and "nan" not in shown.lower()
