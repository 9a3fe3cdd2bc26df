"""A request whose result is cached is answered by the reducer at once, with no job: the answer must be
exactly the job's, and it must not be taken while a job runs or before the checkpoint is loaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dash import no_update

from explorer import pathview
from explorer.cache import ResultCache
from explorer.context import Services
from explorer.pages import recall, signal_path, teaching, token_graph
from explorer.registry import Registry
from explorer.state import ViewState, to_hash


@pytest.fixture
def services(model_root: Path, cache_dir: Path) -> Services:
    return Services(Registry([model_root]), ResultCache(cache_dir))


def no_progress(_report: tuple[str, str]) -> None:
    """A job's progress, dropped."""


@pytest.mark.parametrize("page", [signal_path.PAGE, token_graph.PAGE, recall.PAGE, teaching.PAGE],
                         ids=["signal-path", "token-graph", "recall", "teaching"])
def test_the_cached_answer_is_the_jobs(services: Services, page: pathview.PathPage) -> None:
    state = ViewState(model="alpha", prompt="abc", max_new_tokens=3, hops=2, branch=2, beam=3)
    request = pathview.request_for(page, state)
    assert pathview.cached_meta(services, page, request) is None  # nothing loaded, nothing cached
    services.registry.load("beta")
    assert pathview.cached_meta(services, page, request) is None  # another checkpoint is loaded: still no answer
    job = pathview.run_job(services, page, no_progress, request)
    assert job["error"] == "" and (job.get("key") or job.get("graph_key"))
    assert pathview.cached_meta(services, page, request) == job
    other = pathview.request_for(page, state.with_(prompt="abd"))
    assert pathview.cached_meta(services, page, other) is None  # a different result is not cached


def test_a_page_without_a_cached_reader_always_runs_its_job(services: Services) -> None:
    page = pathview.PathPage("xx")
    request = pathview.request_for(page, ViewState(model="alpha", prompt="abc"))
    assert pathview.run_job(services, page, no_progress, request)["error"] == ""
    assert pathview.cached_meta(services, page, request) is None


def test_an_empty_prompt_is_answered_without_a_job(services: Services) -> None:
    services.registry.load("alpha")
    request = pathview.request_for(signal_path.PAGE, ViewState(model="alpha"))
    assert pathview.cached_meta(services, signal_path.PAGE, request) == pathview.run_job(
        services, signal_path.PAGE, no_progress, request)


def test_loaded_never_loads_and_follows_changed_files(model_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    for name in ("alpha",):
        (root / name).mkdir()
        for f in (model_root / name).iterdir():
            (root / name / f.name).write_bytes(f.read_bytes())
    registry = Registry([root])
    assert registry.loaded("alpha") is None and registry.loaded("nowhere") is None
    checkpoint = registry.load("alpha")
    assert registry.loaded("alpha") is checkpoint
    meta = root / "alpha" / "metadata.json"
    stat = meta.stat()
    os.utime(meta, (stat.st_atime, stat.st_mtime + 10))  # a changed file: the kept copy is stale
    assert registry.loaded("alpha") is None


def reopen(page: pathview.PathPage, url: str, cached, idle=True) -> dict:
    """The reducer as a link opens: no state yet."""
    return pathview.reduce(page, "", ["alpha", "beta"], lambda s: "alpha", url=url, model=None,
                           events=[None] * len(page.events), current=None, meta=None,
                           form=[None] * len(page.form_ids), slider=None, idle=idle, cached=cached)


def test_reduce_writes_a_cached_answer_instead_of_a_request() -> None:
    page = signal_path.PAGE
    url = "#" + to_hash(ViewState(model="alpha", prompt="abc"))[1:]
    asked: list[dict] = []

    def hit(request: dict) -> dict:
        asked.append(request)
        return {"request": request, "n_steps": 5, "key": "k", "error": ""}

    answered = reopen(page, url, hit)
    assert answered["request"] is no_update and answered["meta"]["key"] == "k"
    assert asked == [answered["meta"]["request"]] and asked[0]["prompt"] == "abc"
    missed = reopen(page, url, lambda request: None)
    assert missed["meta"] is no_update and missed["request"] == asked[0]
    running = reopen(page, url, hit, idle=False)  # a job runs: the request goes to Dash, which cancels it
    assert running["meta"] is no_update and running["request"] == asked[0] and len(asked) == 1
    stepped = pathview.reduce(page, page.ids.url, ["alpha"], lambda s: "alpha", url=url, model="alpha",
                              events=[None, None], current=answered["state"], meta=answered["meta"],
                              form=[None] * len(page.form_ids), slider=2, cached=hit)
    assert stepped["meta"] is no_update and stepped["request"] is no_update  # nothing new to compute
