"""Helpers for the browser tests: wait on visible state (never a fixed sleep), read texts, check the console."""

from __future__ import annotations

import time


def wait_until(predicate, timeout: float = 30.0):
    """Poll a visible condition until it holds; its value is returned. The generous default
    is for a loaded CI machine: a passing test never waits longer than it needs."""
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def open_link(dash_duo, link: str) -> None:
    """Open ``link`` (a path with its hash) as a new page, the way a pasted link opens: straight after
    ``start_server`` a bare hash change could land while the page is still starting."""
    dash_duo.driver.get("about:blank")
    dash_duo.driver.get(dash_duo.server_url + link)


def texts(dash_duo, selector: str) -> list[str]:
    """Text of every element matching ``selector``, read in one script (no stale elements)."""
    return dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)", selector)


def text(dash_duo, selector: str) -> str:
    """Text of every element matching ``selector``, joined."""
    return "".join(texts(dash_duo, selector))


def no_console_errors(dash_duo) -> None:
    """The page logged no errors."""
    assert [e for e in dash_duo.get_logs() or [] if e.get("level") == "SEVERE"] == []


# Installed before the page's scripts: the outputs of every callback request it sends.
RECORD = """
window.__outputs = [];
(function (fetch) {
  window.fetch = function (url, init) {
    if (/_dash-update-component/.test(String(url))) window.__outputs.push(JSON.parse(init.body).output);
    return fetch.apply(this, arguments);
  };
})(window.fetch);
"""


def record_callbacks(dash_duo) -> None:
    """From the next page on, record the outputs of each callback request the page sends."""
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD})


def callback_outputs(dash_duo) -> list[str]:
    """The outputs of each callback request the page sent (read from the browser's own fetch calls)."""
    return dash_duo.driver.execute_script("return window.__outputs || []")
