"""A checkpoint's identity (its content id and tokeniser) is read without its weights, so that any process
finds its cached results."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer import pathview
from explorer.cache import ResultCache
from explorer.compute import path_for
from explorer.context import Services
from explorer.pages import signal_path
from explorer.registry import Registry, UnknownModel
from explorer.state import ViewState


def test_the_identity_is_the_loaded_checkpoints_and_loads_no_weights(model_root: Path) -> None:
    registry = Registry([model_root])
    identity = registry.identity("alpha")
    assert registry.loaded("alpha") is None  # nothing loaded for it
    loaded = Registry([model_root]).load("alpha")
    assert identity.model_id == loaded.model_id and identity.token(3) == loaded.token(3)
    assert identity.encode("ab c").ids == loaded.encode("ab c").ids
    with pytest.raises(UnknownModel):
        registry.identity("../alpha")


def test_a_cached_path_is_answered_by_a_process_that_never_loaded_it(model_root: Path, cache_dir: Path) -> None:
    state = ViewState(model="alpha", prompt="abc", max_new_tokens=3)
    path_for(ResultCache(cache_dir), Registry([model_root]).load("alpha"), state)  # another worker's job
    fresh = Services(Registry([model_root]), ResultCache(cache_dir))
    request = pathview.request_for(signal_path.PAGE, state)
    meta = pathview.cached_meta(fresh, signal_path.PAGE, request)
    assert meta is not None and meta["n_steps"] == 5 and fresh.registry.loaded("alpha") is None
    drawn = signal_path.render(fresh, meta)
    assert drawn[0]["n"] == 5 and fresh.registry.loaded("alpha") is None  # drawn without the weights too


def test_a_held_request_is_answered_with_nothing_computed(model_root: Path, cache_dir: Path) -> None:
    services = Services(Registry([model_root]), ResultCache(cache_dir))
    state = ViewState(model="alpha", prompt="~~~~", max_new_tokens=3)
    assert "4 of the prompt's 4 tokens are unknown to alpha" in pathview.unknown_prompt(services, state)
    assert pathview.unknown_prompt(services, state.with_(prompt="ab~")) == ""  # one in three: it runs
    held = {**pathview.request_for(signal_path.PAGE, state), pathview.HOLD: True}
    for meta in (pathview.cached_meta(services, signal_path.PAGE, held),
                 pathview.run_job(services, signal_path.PAGE, lambda _progress: None, held)):
        assert meta["n_steps"] == 0 and "key" not in meta and meta["error"] == ""
