"""Explorer speed at the release's scale (V = 4,000, d = 32), printed.

1. Server time of a step change with the trace cached: the reducer and the render
   callbacks of the Token graph view, called through Flask's test client exactly as the
   browser calls them (aim <= 100 ms). The Signal path view steps in the browser with no
   request (timed by bench_browser.py).
2. Time to trace a 32-step path (uncached) and build the Signal path's step store (every
   step's figures), serialised to JSON.
3. First paint of the 4,000-node token graph in headless Chromium (aim <= 2 s): the
   figure's JSON handed to the bundled plotly.js, timed until newPlot resolves.
Usage: python benchmarks/bench_explorer.py [--rows N] [--repeats R] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import plotly

from brillm_core import CharTokenizer, Checkpoint, random_model
from explorer import compute
from explorer.app import create_app
from explorer.cache import ResultCache
from explorer.figures import graph as graph_fig
from explorer.pages import signal_path
from explorer.state import ViewState, to_dict

V, D = 4000, 32
PROMPT = "".join(chr(0x4E00 + i) for i in range(8))  # 8 prompt tokens + 24 new = 32 steps... minus one
NEW_TOKENS = 25  # 8 prompt nodes give 7 forced steps; 7 + 25 = 32 steps


def make_checkpoint(directory: Path, rows: int) -> Checkpoint:
    """A random release-sized character model saved as a native checkpoint."""
    chars = [chr(0x4E00 + i) for i in range(V)]
    ckpt = Checkpoint(random_model(V, D, rows, seed=0, name="bench"), CharTokenizer(chars))
    ckpt.save(directory)
    return ckpt


def callback_key(app, marker: str) -> str:
    """The callback_map key of the callback whose outputs contain ``marker``."""
    return next(k for k in app.callback_map if marker in k)


def call(client, app, marker: str, inputs: list[dict], state: list[dict] | None = None) -> dict:
    """POST one callback the way the renderer does; returns its response JSON."""
    key = callback_key(app, marker)
    outs = [dict(zip(("id", "property"), part.rsplit(".", 1))) for part in key.strip(".").split("...")]
    changed = next((i for i in inputs if isinstance(i, dict) and i["property"] in ("value", "data")
                    and i["id"].endswith(("-slider", "-meta"))), inputs[0])
    body = {"output": key, "outputs": outs, "inputs": inputs, "state": state or [],
            "changedPropIds": [f"{changed['id']}.{changed['property']}"]}
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code in (200, 204), response.data[:500]
    return response.get_json() if response.status_code == 200 else {}


def step_change_ms(app, cache_dir: Path, ckpt: Checkpoint, state: ViewState, repeats: int) -> dict[str, float]:
    """Median server ms of: reducer (next click) + render, for both views."""
    result = compute.path_for(ResultCache(cache_dir / "results"), ckpt, state)
    compute.graph_for(ResultCache(cache_dir / "results"), ckpt)
    meta = {"request": state.request(), "key": compute.path_key(ckpt, state), "n_steps": result.trace.num_steps,
            "path": result.trace.path.tolist(), "error": "", "graph_key": compute.graph_key(ckpt)}
    client = app.server.test_client()
    client.get("/")
    out = {}
    for prefix, marker, extra in (("tg", "tg-graph.figure", ["tg-drawn"]),):
        times, reducer_times = [], []
        drawn = None
        for i in range(repeats + 1):
            s = state.with_(step=i % result.trace.num_steps)
            start = time.perf_counter()
            moved = call(client, app, f"{prefix}-state.data", _reducer_inputs(prefix, s), _reducer_state(prefix, s, meta))
            assert moved["response"][f"{prefix}-state"]["data"]["step"] == min(s.step + 1, result.trace.num_steps - 1)
            mid = time.perf_counter()
            inputs = [{"id": f"{prefix}-meta", "property": "data", "value": meta},
                      {"id": f"{prefix}-state", "property": "data", "value": to_dict(s)}]
            states = [{"id": e, "property": "data", "value": drawn} for e in extra]
            response = call(client, app, marker, inputs, states)
            end = time.perf_counter()
            if extra:
                drawn = response["response"]["tg-drawn"]["data"]
            if i:  # the first call builds the full figure / warms caches
                reducer_times.append((mid - start) * 1000)
                times.append((end - mid) * 1000)
            else:
                out[f"{prefix}_first_render_ms (full figure, trace read from disk)"] = (end - mid) * 1000
        out[f"{prefix}_reducer_ms"] = statistics.median(reducer_times)
        out[f"{prefix}_render_ms"] = statistics.median(times)
    return out


def _reducer_inputs(prefix: str, s: ViewState) -> list[dict]:
    """Reducer inputs, in the callback's order, for a slider move (prev/next/keys move it in the browser)."""
    events = [{"id": "tg-graph", "property": "clickData", "value": None},
              {"id": "tg-k", "property": "value", "value": s.graph_k}] if prefix == "tg" else [
        {"id": "sp-energy", "property": "clickData", "value": None},
        {"id": "sp-undo", "property": "n_clicks", "value": None}, []]
    ids = [("url", "hash", ""), ("go", "n_clicks", None), ("prompt", "n_submit", None), ("model", "value", s.model)]
    return ([{"id": f"{prefix}-{i}", "property": p, "value": v} for i, p, v in ids] + events
            + [{"id": f"{prefix}-slider", "property": "value", "value": s.step + 1},
               {"id": f"{prefix}-play", "property": "n_clicks", "value": None}])


def _reducer_state(prefix: str, s: ViewState, meta: dict) -> list[dict]:
    """Reducer states."""
    form = ["prompt", "new", "greedy", "temp", "topk", "seed", "rd", "start"]
    return ([{"id": f"{prefix}-state", "property": "data", "value": to_dict(s)},
             {"id": f"{prefix}-meta", "property": "data", "value": meta}]
            + [{"id": f"{prefix}-{f}", "property": "value", "value": None} for f in form]
            + [{"id": f"{prefix}-interval", "property": "disabled", "value": True}])


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
    fig = graph_fig.token_graph(g, labels, k, energies=None)
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
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=480_000, help="own parameter rows of the random model (release scale)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--graph-k", type=int, default=4, help="edges per node drawn in the first-paint test")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ckpt = make_checkpoint(work / "models" / "bench", args.rows)
        state = ViewState(model="bench", prompt=PROMPT, new_tokens=NEW_TOKENS, graph_k=3)
        print(f"model: V={V}, d={D}, {args.rows:,} own rows")
        seconds, steps = trace_and_render_s(ckpt, state)
        print(f"trace + step store of a {steps}-step path (uncached): {seconds * 1000:.0f} ms")
        app = create_app([work / "models"], work / "cache")
        for name, value in step_change_ms(app, work / "cache", ckpt, state, args.repeats).items():
            print(f"step change, trace cached, {name}: {value:.1f} ms")
        if not args.no_browser:
            seconds, nodes, edges = first_paint_s(ckpt, args.graph_k, work)
            print(f"first paint of the token graph ({nodes} nodes, {edges} edges) in headless Chromium: "
                  f"{seconds:.2f} s")


if __name__ == "__main__":
    main()
