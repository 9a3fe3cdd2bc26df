"""Explorer speed at the release's scale (V = 4,000, d = 32), printed.

Stepping happens in the browser on every path page (benchmarks/bench_browser.py times it;
benchmarks/bench_graph.py times the token graph), so this script times the server's part:
1. Time to trace a 32-step path (uncached) and build the Signal path's step store (every
   step's figures), serialised to JSON.
2. First paint of the 4,000-node token graph in headless Chromium (aim <= 2 s): the
   figure's JSON handed to the bundled plotly.js, timed until newPlot resolves.
Usage: python benchmarks/bench_explorer.py [--rows N] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import plotly

from brillm_core import CharTokenizer, Checkpoint, random_model
from explorer import compute
from explorer.figures import graph as graph_fig
from explorer.pages import signal_path
from explorer.state import ViewState

V, D = 4000, 32
PROMPT = "".join(chr(0x4E00 + i) for i in range(8))  # 8 prompt tokens + 24 new = 32 steps... minus one
NEW_TOKENS = 25  # 8 prompt nodes give 7 forced steps; 7 + 25 = 32 steps


def make_checkpoint(directory: Path, rows: int) -> Checkpoint:
    """A random release-sized character model saved as a native checkpoint."""
    chars = [chr(0x4E00 + i) for i in range(V)]
    ckpt = Checkpoint(random_model(V, D, rows, seed=0, name="bench"), CharTokenizer(chars))
    ckpt.save(directory)
    return ckpt


def trace_and_render_s(ckpt: Checkpoint, state: ViewState) -> tuple[float, int]:
    """Seconds to trace a 32-step path and serialise the Signal path's step store."""
    start = time.perf_counter()
    result = compute.compute_path(ckpt, state)
    json.dumps(signal_path.step_store(result, ckpt.token, []))
    return time.perf_counter() - start, result.trace.num_steps


def first_paint_s(ckpt: Checkpoint, k: int, workdir: Path) -> tuple[float, int, int]:
    """Seconds from newPlot to its promise resolving for the whole graph, in headless Chromium."""
    from selenium import webdriver

    g = compute.compute_graph_data(ckpt.model)
    labels = [str(n) for n in range(V)]
    fig = graph_fig.token_graph(g, labels, k)
    page = workdir / "graph.html"
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", workdir / "plotly.min.js")
    (workdir / "fig.js").write_text("window.FIG = " + fig.to_json() + ";")
    page.write_text("<html><body><div id='g' style='width:1200px;height:800px'></div>"
                    "<script src='plotly.min.js'></script><script src='fig.js'></script></body></html>")
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(options=options)
    try:
        driver.get(page.as_uri())
        ms = driver.execute_async_script(
            "var done = arguments[0]; var t = performance.now();"
            "Plotly.newPlot('g', FIG.data, FIG.layout).then(function () {"
            " requestAnimationFrame(function () { done(performance.now() - t); }); });")
    finally:
        driver.quit()
    edges = len(graph_fig.thinned_edges(g, k))
    return ms / 1000, V, edges


def main() -> None:
    """Run the two measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=480_000, help="own parameter rows of the random model (release scale)")
    parser.add_argument("--graph-k", type=int, default=4, help="edges per node drawn in the first-paint test")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ckpt = make_checkpoint(work / "models" / "bench", args.rows)
        state = ViewState(model="bench", prompt=PROMPT, max_new_tokens=NEW_TOKENS, graph_k=3)
        print(f"model: V={V}, d={D}, {args.rows:,} own rows")
        seconds, steps = trace_and_render_s(ckpt, state)
        print(f"trace + step store of a {steps}-step path (uncached): {seconds * 1000:.0f} ms")
        if not args.no_browser:
            seconds, nodes, edges = first_paint_s(ckpt, args.graph_k, work)
            print(f"first paint of the token graph ({nodes} nodes, {edges} edges) in headless Chromium: "
                  f"{seconds:.2f} s")


if __name__ == "__main__":
    main()
