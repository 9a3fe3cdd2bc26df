"""The Dash app factory: pages, nav bar, allow-listed model folders, disk cache, background jobs."""

from __future__ import annotations

from pathlib import Path

import dash
import torch
from dash import Dash, html
from dash.exceptions import DependencyException

from .cache import DEFAULT_SIZE_LIMIT, ResultCache, prepare_cache_dir, signing_secret
from .context import Services
from .jobs import HealingCache, JobManager, gate_requests
from .opener import opener, register as register_opener
from .pages import PAGES
from .registry import Registry

ASSETS = Path(__file__).resolve().parents[1] / "assets"
JOBS_SIZE_LIMIT = 2**28
MAX_REQUEST_BYTES = 48 * 2**20  # a 32 MB upload, base64-encoded inside a callback's JSON, fits; larger bodies get 413


def create_app(model_dirs: list[Path], cache_dir: Path, *, cache_size: int = DEFAULT_SIZE_LIMIT,
               title: str = "BriLLM Explorer") -> Dash:
    """Build the explorer for the checkpoints found in ``model_dirs`` (each a checkpoint or a
    folder of checkpoints), caching results and background jobs under ``cache_dir``, which must be
    private to this user (CacheDirError otherwise: Dash's job store unpickles what it reads)."""
    cache_dir = prepare_cache_dir(cache_dir)
    one_torch_thread()
    services = Services(Registry(model_dirs), ResultCache(cache_dir / "results", cache_size))
    jobs = HealingCache(str(cache_dir / "jobs"), size_limit=JOBS_SIZE_LIMIT)
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        serve_locally=True,
        title=title,
        update_title=None,
        suppress_callback_exceptions=True,
        background_callback_manager=JobManager(jobs),
    )
    for page in PAGES:
        page.register(app, services)
    pages = sorted(dash.page_registry.values(), key=lambda p: p["order"])
    nav = html.Nav([html.Span(title, className="brand"),
                    *(html.A(p["name"], href=p["path"], className="nav-link") for p in pages), opener()],
                   className="navbar")
    register_opener(app)
    app.layout = html.Div([nav, html.Main(dash.page_container, className="content")])
    app.server.secret_key = signing_secret(cache_dir)  # else Dash would keep it in the job store, pickled
    app.server.config["BRILLM_MODELS"] = services.registry.names()
    app.server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.server.wsgi_app = gate_requests(app.server.wsgi_app)  # type: ignore[method-assign]
    app.server.register_error_handler(DependencyException, lambda _: ("not found", 404))  # a bad asset path
    set_up_now(app)
    return app


def one_torch_thread() -> None:
    """Run the server's tensor work on one intra-op thread: it is many small ops, and requests already run
    side by side; OpenMP's hand-off between threads cost 10x and more on a busy machine (a Teaching store of
    258 steps took 10.5 s on two threads while other work ran, 1.0 s on one)."""
    torch.set_num_threads(1)


def set_up_now(app: Dash) -> None:
    """Let Dash finish its setup before the first real request. Dash sets itself up on the first request,
    unguarded: in a threaded server the page's first two requests (layout and callbacks) raced through it,
    one got HTTP 500 ('dictionary changed size during iteration') and the page stayed blank."""
    answer = app.server.test_client().get("/_dash-dependencies")
    if answer.status_code != 200:
        raise RuntimeError(f"the app failed to set itself up (HTTP {answer.status_code}): {answer.text[:500]}")
