"""Shared fixtures: small random models and checkpoints made on the fly (no files shipped)."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from brillm_core import Checkpoint, CharTokenizer, random_model


def make_checkpoint(vocab_size: int = 12, hidden: int = 6, own: float = 0.3, seed: int = 0) -> Checkpoint:
    """A random model with a character tokeniser whose first node is <unk>."""
    chars = ["<unk>"] + list(string.ascii_lowercase + string.digits + " .,")[: vocab_size - 1]
    return Checkpoint(random_model(vocab_size, hidden, own, seed=seed), CharTokenizer(chars))


@pytest.fixture
def small_checkpoint() -> Checkpoint:
    """V = 12, d = 6, 30 % own edges."""
    return make_checkpoint()


@pytest.fixture
def saved_checkpoint(tmp_path: Path) -> Path:
    """A small checkpoint saved to a temporary directory."""
    return make_checkpoint().save(tmp_path / "ckpt")


def pytest_configure(config: pytest.Config) -> None:
    """One intra-op thread, as the ``brillm`` command and the app set where their processes start (the
    library sets none); and let parallel runs on one machine keep apart: DASH_TEST_PORT_BASE moves
    dash_duo's first port."""
    import os

    import torch

    torch.set_num_threads(1)

    base = os.environ.get("DASH_TEST_PORT_BASE")
    if base:
        from dash.testing.application_runners import BaseDashRunner

        BaseDashRunner._next_port = int(base)


class SessionChrome:
    """The test session's one Chrome, for every ``dash_duo``: launching Chrome for each browser test cost
    2-5 s on the project's 2-core machine, minutes of the suite. Each test gets a new tab (its own page
    scripts, CDP settings and timers; the earlier tabs closed), the window size Chrome started with, its
    own download folder and no log entries of earlier tests. A Chrome that died is started again."""

    def __init__(self) -> None:
        self.driver: Any = None
        self.size: dict[str, int] = {}

    def take(self, launch: Callable[[], Any], download_path: str) -> Any:
        """The session's Chrome with a fresh tab for one test (``launch`` starts it the first time)."""
        if self.driver is not None:
            try:
                old = self.driver.window_handles
                self.driver.switch_to.new_window("tab")
                fresh = self.driver.current_window_handle
                for handle in old:
                    self.driver.switch_to.window(handle)
                    self.driver.close()
                self.driver.switch_to.window(fresh)
                self.driver.execute_cdp_cmd("Page.bringToFront", {})  # focused, as a new Chrome's tab: blur fires
                self.driver.set_window_size(self.size["width"], self.size["height"])
            except Exception:  # noqa: BLE001 - a crashed or closed browser: start a new one
                self.close()
        if self.driver is None:
            self.driver = launch()
            self.size = self.driver.get_window_size()
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": download_path})
        self.driver.get_log("browser")  # read, so that a test sees only its own entries
        return self.driver

    def close(self) -> None:
        """Quit Chrome (at the end of the session, or when it stopped answering)."""
        if self.driver is not None:
            try:
                self.driver.quit()
            except Exception:  # noqa: BLE001 - already gone
                pass
            self.driver = None


@pytest.fixture(scope="session")
def session_chrome() -> Iterator[SessionChrome]:
    """The session's Chrome, quit when the session ends."""
    chrome = SessionChrome()
    yield chrome
    chrome.close()


@pytest.fixture
def dash_duo(request: pytest.FixtureRequest, dash_thread_server: Any, tmpdir: Any,
             session_chrome: SessionChrome) -> Iterator[Any]:
    """dash[testing]'s ``dash_duo`` (same options) on the session's Chrome (see ``SessionChrome``)."""
    from dash.testing.composite import DashComposite

    class OnSessionChrome(DashComposite):
        def get_webdriver(self) -> Any:
            return session_chrome.take(super().get_webdriver, self.download_path)

        def __exit__(self, *_exc: Any) -> None:
            self.driver.get("about:blank")  # this test's page stops before its server does

    config = request.config
    with OnSessionChrome(
        server=dash_thread_server, browser=config.getoption("webdriver"), remote=config.getoption("remote"),
        remote_url=config.getoption("remote_url"), headless=config.getoption("headless"),
        options=config.hook.pytest_setup_options(), download_path=tmpdir.mkdir("download").strpath,
        percy_assets_root=config.getoption("percy_assets"), percy_finalize=config.getoption("nopercyfinalize"),
        pause=config.getoption("pause"),
    ) as duo:
        yield duo
