"""The Dash app factory: pages, nav bar, allow-listed model folders, disk cache, background jobs."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import dash
import torch
from dash import Dash, html
from dash.exceptions import DependencyException

from brillm_core import BriLLMError

from .callback_guard import guard_callbacks
from .cache import DEFAULT_SIZE_LIMIT, ResultCache, SigningKey, prepare_cache_dir
from . import uploads
from .context import Services
from .jobs import HealingCache, JobManager, give_client_cookie
from .opener import opener, register as register_opener
from .pages import PAGES
from .registry import Registry

ASSETS = Path(__file__).resolve().parents[1] / "assets"
JOBS_SIZE_LIMIT = 2**28
MAX_REQUEST_BYTES = 48 * 2**20  # a 32 MB upload, base64-encoded inside a callback's JSON, fits; larger bodies get 413


def create_app(model_dirs: list[Path], cache_dir: Path, *, cache_size: int = DEFAULT_SIZE_LIMIT,
               title: str = "BriLLM Explorer", secret_key: str | None = None) -> Dash:
    """Build the explorer for the checkpoints found in ``model_dirs`` (each a checkpoint or a
    folder of checkpoints), caching results and background jobs under ``cache_dir``, which must be
    private to this user (CacheDirError otherwise: Dash's job store unpickles what it reads).
    Job handles are signed with ``secret_key``, else with the key kept in the cache directory.
    Call it while the process runs one thread: it forks the process that starts background jobs."""
    cache_dir = prepare_cache_dir(cache_dir)
    one_torch_thread()
    jobs = JobManager(HealingCache(str(cache_dir / "jobs"), size_limit=JOBS_SIZE_LIMIT), models_of=models_named)
    services = Services(Registry(model_dirs), ResultCache(cache_dir / "results", cache_size), jobs)
    jobs.isolate(uploads.PARSE_JOB, lambda *args: uploads.parse(services.cache, *args), uploads.PARSE_MEMORY)
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        serve_locally=True,
        title=title,
        update_title=None,
        suppress_callback_exceptions=True,
        background_callback_manager=jobs,
    )
    for page in PAGES:
        page.register(app, services)
    pages = sorted(dash.page_registry.values(), key=lambda p: p["order"])
    nav = html.Nav([html.Span(title, className="brand"),
                    *(html.A(p["name"], href=p["path"], className="nav-link") for p in pages), opener()],
                   className="navbar")
    register_opener(app)
    app.layout = html.Div([nav, html.Main(dash.page_container, className="content")])
    sign_with(app, secret_key, cache_dir)
    app.server.config["BRILLM_MODELS"] = services.registry.names()
    app.server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.server.after_request(give_client_cookie)
    app.server.register_error_handler(DependencyException, lambda _: ("not found", 404))  # a bad asset path
    guard_callbacks(app)
    set_up_now(app)
    jobs.start_helper(lambda names: warm(services, names))
    return app


def sign_with(app: Dash, secret_key: str | None, cache_dir: Path) -> None:
    """Sign job handles with ``secret_key``, else with the cache directory's key file, followed on every
    request (a worker restarted after the directory was deleted makes a new one, and all must agree)."""
    if secret_key:
        app.server.secret_key = secret_key
        return
    key = SigningKey(cache_dir)  # a file of data: Dash's default would keep it in the job store, pickled
    app.server.secret_key = key.current()

    @app.server.before_request
    def follow_key() -> None:
        app.server.secret_key = key.current()


def models_named(args: Any) -> list[str]:
    """The checkpoint names a job's arguments hold (the page's request: its model and Compare's second one)."""
    requests = [a for a in (args if isinstance(args, (list, tuple)) else [args]) if isinstance(a, dict)]
    return [r[k] for r in requests for k in ("model", "model_b") if isinstance(r.get(k), str)]


def warm(services: Services, names: list[str]) -> None:
    """Load checkpoints (those that load), so that processes forked afterwards have them loaded."""
    for name in names:
        try:
            services.registry.load(name)
        except BriLLMError:
            pass


def freeze_startup_heap() -> None:
    """Put every object alive now (the app, its pages, the loaded modules) beyond the garbage collector: a
    full collection then scans only what requests made since. A server calls it once its app is built; in a
    worker under 50 sessions, full collections of the whole heap had stalled all its requests for 0.3-0.7 s."""
    gc.freeze()


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
