"""Explorer speed as a user sees it, in headless Chromium (selenium), printed.

Against a server this script starts (gunicorn, as in production; 127.0.0.1 only) on two
random checkpoints of V = 4,000 nodes, d = 32, generated into a temporary folder under /tmp:

1. key press -> redrawn step on the Signal path view: from the ArrowRight key event to the
   first animation frame that shows the new step's label and candidate chart (target <= 50 ms),
   idle and while ``load_test.py`` drives --sessions sessions against the same server.
2. reopening a link whose trace is cached: navigation start to a drawn page (step label and
   candidate chart of the link's step; target <= 1 s).
3. a new job's progress bar: its value and text when the bar first shows (must start at 0).

The number of own parameter rows (--rows) does not change what the browser does; it is
kept small by default so that the run fits a shared machine (the release has 906,998).
Usage: python benchmarks/bench_browser.py [--rows N] [--presses 40] [--sessions 50] [--load-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.load_test import free_port, run_load, start_server, stop_server  # noqa: E402
from brillm_core import CharTokenizer, Checkpoint, random_model  # noqa: E402

V, D = 4000, 32
PROMPT = "".join(chr(0x4E00 + i) for i in (5, 17, 29, 41, 53, 65, 77, 89))
NEW_TOKENS = 24
WINDOW = (1440, 900)

# Installed before any page script: records when the step label and the candidate chart first show
# step `window.__want` (at first the link's step; performance.now(), i.e. ms since navigation start),
# and the progress bar as it first becomes visible.
PROBE = """
window.__want = Number(new URLSearchParams(location.hash.slice(1)).get("s") || 0);
window.__drawnAt = null; window.__bar = null;
(function watch() {
  var label = document.getElementById("sp-step-label");
  var gd = document.querySelector("#sp-energy .js-plotly-plot");
  var row = document.getElementById("sp-progress-row");
  if (row && !window.__bar && row.classList.contains("running")) {
    window.__bar = {value: document.getElementById("sp-progress").getAttribute("value"),
                    text: document.getElementById("sp-status").textContent, at: performance.now()};
  }
  if (window.__want !== null && window.__drawnAt === null && label && gd && gd.layout && gd.layout.title &&
      label.textContent.indexOf("step " + window.__want + " of") === 0 &&
      String(gd.layout.title.text).indexOf("Step " + window.__want + ":") === 0) {
    window.__drawnAt = performance.now();
  }
  requestAnimationFrame(watch);
})();
"""

# One key press, timed in the page: keydown -> first frame showing the step it leads to.
PRESS = """
var done = arguments[arguments.length - 1], key = arguments[0], want = arguments[1];
window.__want = want; window.__drawnAt = null;
var t0 = performance.now();
document.body.dispatchEvent(new KeyboardEvent("keydown", {key: key, bubbles: true}));
(function wait() {
  if (window.__drawnAt !== null) return done(window.__drawnAt - t0);
  if (performance.now() - t0 > 20000) return done(-1);
  requestAnimationFrame(wait);
})();
"""


# The browser's own floor in the same conditions: one animation frame, requestAnimationFrame to the next.
FRAME = """
var done = arguments[arguments.length - 1], times = [], last = null;
(function tick(now) {
  if (last !== null) times.push(now - last);
  last = now;
  if (times.length < 60) requestAnimationFrame(tick); else done(times);
})(performance.now());
"""


def make_models(root: Path, rows: int) -> Path:
    """Two random 4,000-node character checkpoints ('bench-a', 'bench-b') of one vocabulary."""
    chars = [chr(0x4E00 + i) for i in range(V)]
    for seed, name in ((0, "bench-a"), (1, "bench-b")):
        model = random_model(V, D, rows, seed=seed, name=name)
        Checkpoint(model, CharTokenizer(chars), {"training": {"loss": [8.3, 7.9]}}).save(root / name)
    return root


def browser():
    """Headless Chromium at 1440x900 with the probe installed on every page."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", "--disable-background-networking", "--no-first-run"):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(options=options)
    driver.set_script_timeout(60)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
    return driver


def wait_for(driver, script: str, timeout: float = 300.0) -> Any:
    """Poll a page expression until it is truthy (the server may be computing a 4,000-node trace)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for: {script}")


def open_view(driver, url: str) -> tuple[float, dict | None]:
    """Open a link in a fresh page; ms from navigation start to its step (s=) drawn, and the progress bar seen."""
    driver.get("about:blank")
    driver.get(url)
    drawn = wait_for(driver, "return window.__drawnAt")
    return float(drawn), driver.execute_script("return window.__bar")


def presses(driver, count: int, steps: int, stop: threading.Event | None = None) -> list[float]:
    """Time ``count`` arrow-key presses, walking forward to the last step and back."""
    times, step, direction = [], int(driver.execute_script("return window.__want")), 1
    for _ in range(count):
        if stop is not None and stop.is_set():
            break
        if not 0 <= step + direction < steps:
            direction = -direction
        step += direction
        ms = driver.execute_async_script(PRESS, "ArrowRight" if direction > 0 else "ArrowLeft", step)
        if ms < 0:
            raise RuntimeError(f"step {step} was never drawn")
        times.append(float(ms))
    return times


def summary(name: str, values: list[float]) -> str:
    """Median, 90th percentile and max of a list of milliseconds."""
    if not values:
        return f"{name}: no samples"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (f"{name}: n={len(values)}  median {statistics.median(values):.1f} ms  p90 {p90:.1f} ms  "
            f"max {ordered[-1]:.1f} ms")


def main(argv: list[str] | None = None) -> int:
    """Generate the checkpoints, start the server, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000, help="own parameter rows per checkpoint (default 40,000)")
    parser.add_argument("--presses", type=int, default=40, help="key presses timed per condition (default 40)")
    parser.add_argument("--sessions", type=int, default=50, help="load_test sessions for the loaded run (default 50)")
    parser.add_argument("--load-seconds", type=float, default=60.0, help="how long the load runs (default 60)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-browser-", dir="/tmp") as tmp:
        print(f"generating two random checkpoints: V = {V}, d = {D}, {args.rows:,} own rows each …", flush=True)
        models = make_models(Path(tmp) / "models", args.rows)
        port = free_port()
        proc = start_server("gunicorn", models, Path(tmp) / "cache", port, args.workers)
        base = f"http://127.0.0.1:{port}"
        driver = browser()
        try:
            steps = len(PROMPT) - 1 + NEW_TOKENS
            link = base + "/#" + urlencode({"m": "bench-a", "p": PROMPT, "n": NEW_TOKENS, "s": 3})
            print(f"Signal path, {V} nodes, {steps} steps; headless Chromium {WINDOW[0]}x{WINDOW[1]}, "
                  f"gunicorn {args.workers} workers", flush=True)
            first_ms, bar = open_view(driver, link)
            print(f"first open (trace computed): {first_ms:.0f} ms to a drawn page")
            if bar is None:
                print("progress bar: the job finished before the bar was first drawn")
            else:
                print(f"progress bar when first shown: value {bar['value']} of 3, text {bar['text']!r}")
            reopen = [open_view(driver, link)[0] for _ in range(5)]
            print(summary("reopen a cached link -> drawn page (target <= 1000 ms)", reopen))
            print(f"machine load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            print(summary("baseline: one animation frame of the same page", driver.execute_async_script(FRAME)))
            idle = presses(driver, args.presses, steps)
            print(summary("key press -> redrawn step, idle (target <= 50 ms)", idle))
            stop = threading.Event()
            report: dict[str, Any] = {}

            def load() -> None:
                report["load"] = run_load(base, args.sessions, args.load_seconds, models=("bench-a", "bench-b"))
                stop.set()

            loader = threading.Thread(target=load, daemon=True)
            loader.start()
            time.sleep(min(5.0, args.load_seconds / 4))  # let the sessions ramp up
            loaded: list[float] = []
            while not stop.is_set():
                loaded += presses(driver, 10, steps, stop)
            loader.join()
            print(f"machine load average (1 min): {os.getloadavg()[0]:.1f}")
            print(summary(f"key press -> redrawn step, {args.sessions} sessions of load_test.py running "
                          "(target <= 50 ms)", loaded))
            print(f"the load during those presses: {report['load'].summary().splitlines()[0]}")
        finally:
            driver.quit()
            stop_server(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
