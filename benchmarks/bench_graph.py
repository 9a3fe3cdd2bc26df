"""Token graph: layout time and quality, server time of a cached graph, browser drawing, printed.

1. Layout at 1,500 nodes (the bundled kjv-final checkpoint) and at 4,000 nodes (a synthetic
   graph of release size: every node has 40 own edges, half to its community of 50 tokens,
   half to frequent tokens drawn from a Zipf law): seconds of the force layout and of the
   spectral layout it replaced, both run here, and each one's neighbourhood score (the share
   of each node's 5 strongest out-edge targets among its 30 nearest neighbours in the layout).
2. First layout of the 1,500-node checkpoint as the app computes it (edge strengths, strongest
   edges, layout), and the server time to draw it once it is cached: read from a fresh disk
   cache, build the figure and every step's frames of a 16-step path, serialise to JSON.
3. In headless Chromium (software WebGL), 4,000 nodes and 16,000 drawn edges: first render, a
   step (node colours, path, arrows, labels) and a wheel-zoom-sized relayout, drawn all in plotly
   Scattergl (edges too; annotations for the path and labels) and drawn the app's way (edges,
   nodes and step on the canvas layers of assets/graph_layers.js; plotly's SVG legend and axes).
Usage: python benchmarks/bench_graph.py [--repeats R] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import plotly

from brillm_core import DecodeSettings, load_checkpoint
from explorer import compute
from explorer.cache import ResultCache
from explorer.figures import graph as graph_fig
from explorer.graphdata import (GraphData, compute_graph_data, edge_strengths, force_positions, neighbourhood_score,
                                spectral_positions, top_per_source)
from explorer.state import MAX_GRAPH_K

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_models" / "kjv-final"
PROMPT = "In the beginning God created"


def timed(function: Callable[[], object]) -> tuple[float, object]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def synthetic_graph(vocab: int = 4000, per_node: int = 40, community: int = 50, seed: int = 0) -> tuple:
    """(vocab, sources, targets, strength) of a release-sized synthetic own-edge table."""
    rng = np.random.default_rng(seed)
    group = rng.permutation(vocab) // community
    members = [np.nonzero(group == g)[0] for g in range(group.max() + 1)]
    popularity = 1.0 / np.arange(1, vocab + 1)
    popularity = rng.permutation(popularity / popularity.sum())
    sources, targets, strength = [], [], []
    for node in range(vocab):
        near = rng.choice(members[group[node]], per_node // 2)
        frequent = rng.choice(vocab, per_node - per_node // 2, p=popularity)
        sources.append(np.full(per_node, node))
        targets.append(np.concatenate([near, frequent]))
        strength.append(rng.gamma(2.0, 1.0, per_node))
    return (vocab, np.concatenate(sources).astype(np.int32), np.concatenate(targets).astype(np.int32),
            np.concatenate(strength).astype(np.float32))


def compare_layouts(name: str, vocab: int, sources: np.ndarray, targets: np.ndarray, strength: np.ndarray) -> None:
    """Print time and neighbourhood score of the force and spectral layouts of one graph."""
    top = top_per_source(sources, strength, vocab, MAX_GRAPH_K)
    scores = {}
    for label, layout in (("force (igraph UMAP)", force_positions), ("spectral (before)", spectral_positions)):
        seconds, positions = timed(lambda: layout(vocab, sources, targets, top))
        scores[label] = neighbourhood_score(positions, targets, top)
        print(f"  {name}, {label}: {seconds:.2f} s, neighbourhood score {scores[label]:.3f}")
    force, spectral = scores.values()
    print(f"  {name}: force / spectral score = {force / spectral:.1f}x")


def app_timings(repeats: int) -> GraphData:
    """First layout of the sample checkpoint and the server time of drawing it from the cache."""
    ckpt = load_checkpoint(SAMPLE, device="cpu")
    firsts = [timed(lambda: compute_graph_data(ckpt.model))[0] for _ in range(repeats)]
    strengths = statistics.median(timed(lambda: edge_strengths(ckpt.model, DecodeSettings()))[0] for _ in range(repeats))
    print(f"first layout of {ckpt.config.vocab_size:,} nodes (strengths + strongest edges + layout): "
          f"median {statistics.median(firsts):.2f} s, max {max(firsts):.2f} s over {repeats} runs "
          f"(of which the edge strengths: median {strengths:.2f} s)")
    trace = ckpt.trace(PROMPT, DecodeSettings(max_new_tokens=16))
    labels = [str(n) for n in range(ckpt.config.vocab_size)]
    with tempfile.TemporaryDirectory() as tmp:
        compute.graph_for(ResultCache(Path(tmp) / "results"), ckpt)
        draws = []
        for _ in range(repeats):
            cache = ResultCache(Path(tmp) / "results")  # a new process's cache: nothing in memory

            def draw() -> int:
                g = compute.graph_for(cache, ckpt)
                fig = graph_fig.token_graph(g, labels, 3)
                frames = graph_fig.step_frames(g, trace.energies.numpy(), trace.path.tolist())
                return len(fig.to_json()) + len(json.dumps(frames))

            seconds, size = timed(draw)
            draws.append(seconds)
    print(f"cached graph drawn by the server (disk cache read, figure + {trace.num_steps} steps' frames, JSON "
          f"{size / 1e6:.2f} MB): median {statistics.median(draws) * 1000:.0f} ms")
    return compute_graph_data(ckpt.model)


# Both ways of drawing a step and a zoom, timed to the next frame: "webgl" draws every layer with
# plotly (edges, nodes coloured by restyle, path and labels as annotations: the design before the
# canvas layers); "layers" is the app's (assets/graph_layers.js: edges, nodes and step on canvases).
BROWSER_SCRIPT = """
var done = arguments[arguments.length - 1], mode = arguments[0], fig = window.FIG, frames = window.FRAMES, out = {};
function frame() { return new Promise(function (r) { requestAnimationFrame(function () { setTimeout(r, 0); }); }); }
var gd = document.getElementById('g'), x = window.NODES.x, y = window.NODES.y, text = window.NODES.text;
// "webgl": the figure as it was then, every trace in WebGL and the nodes' points in their trace
var data = mode === 'layers' ? fig.data : fig.data.map(function (trace, k) {
  return Object.assign({}, trace, {type: 'scattergl'}, k === 1 ? {x: x, y: y, text: text} : {});
});
var t = performance.now();
Plotly.newPlot(gd, data, fig.layout, {scrollZoom: true}).then(function () {
  if (mode === 'layers') return window.brillmGraph.attach('graph');
  var pairs = window.PAIRS, ex = [], ey = [];
  for (var k = 0; k < pairs.length; k += 2) { ex.push(x[pairs[k]], x[pairs[k + 1]], NaN); ey.push(y[pairs[k]], y[pairs[k + 1]], NaN); }
  return Plotly.restyle(gd, {x: [ex], y: [ey]}, [0]);
}).then(frame).then(function () {
  out.first = performance.now() - t;
  var steps = [], zooms = [], i = 0;
  function step() {
    var s = i % frames.steps, t0 = performance.now();
    if (mode === 'layers') { window.brillmGraph.show('graph', frames, s); return frame().then(function () { steps.push(performance.now() - t0); }); }
    var row = frames.rows[s], notes = [];
    frames.labels[s].forEach(function (n) { notes.push({x: x[n], y: y[n], text: text[n], showarrow: false, yshift: 11}); });
    for (var k = 0; k <= s; k++) notes.push({x: x[frames.path[k + 1]], y: y[frames.path[k + 1]], ax: x[frames.path[k]],
      ay: y[frames.path[k]], axref: 'x', ayref: 'y', text: '', showarrow: true, arrowhead: 2});
    return Plotly.update(gd, {'marker.color': [row], x: [frames.path_x.slice(0, s + 2)], y: [frames.path_y.slice(0, s + 2)]},
                         {annotations: notes}, [1, 2]).then(frame).then(function () { steps.push(performance.now() - t0); });
  }
  function zoom() {
    var r = gd._fullLayout.xaxis.range, w = (r[1] - r[0]) * (i % 2 ? 1.25 : 0.8), c = (r[0] + r[1]) / 2, t0 = performance.now();
    return Plotly.relayout(gd, {'xaxis.range': [c - w / 2, c + w / 2]}).then(frame).then(function () {
      zooms.push(performance.now() - t0); });
  }
  var chain = Promise.resolve();
  for (var k = 0; k < REPEATS; k++) chain = chain.then(step).then(zoom).then(function () { i++; });
  chain.then(function () { out.steps = steps; out.zooms = zooms; done(out); });
});
"""


def browser_timings(graph: GraphData, repeats: int, workdir: Path, mode: str) -> None:
    """First render, step and zoom timings at 4,000 nodes and 16,000 edges, drawn one way or the other
    (see BROWSER_SCRIPT)."""
    from selenium import webdriver

    vocab = len(graph.positions)
    labels = [f"tok{n} #{n}" for n in range(vocab)]
    rng = np.random.default_rng(0)
    path = [int(n) for n in rng.choice(vocab, 17, replace=False)]
    energies = rng.gamma(2.0, 1.0, (16, vocab)).astype(np.float32)
    fig = graph_fig.token_graph(graph, labels, 4)
    idx = graph_fig.thinned_edges(graph, 4)
    frames = graph_fig.step_frames(graph, energies, path)
    frames.update(rows=energies.tolist(), path_x=graph.positions[path, 0].tolist(), path_y=graph.positions[path, 1].tolist())
    pairs = np.stack([graph.sources[idx], graph.targets[idx]], axis=1).ravel().tolist()
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", workdir / "plotly.min.js")
    for script in ("colors.js", "graph_layers.js"):  # the layers' script and the colour scale it uses
        shutil.copy(ROOT / "assets" / script, workdir / script)
    nodes = {"x": graph.positions[:, 0].tolist(), "y": graph.positions[:, 1].tolist(), "text": labels}
    (workdir / "fig.js").write_text(f"window.FIG = {fig.to_json()}; window.FRAMES = {json.dumps(frames)}; "
                                    f"window.PAIRS = {json.dumps(pairs)}; window.NODES = {json.dumps(nodes)};")
    page = workdir / "graph.html"
    page.write_text("<html><body><div id='graph'><div id='g' class='js-plotly-plot' style='width:1000px;height:600px'>"
                    "</div></div><script>window.dash_clientside = {};</script><script src='plotly.min.js'></script>"
                    "<script src='colors.js'></script><script src='graph_layers.js'></script><script src='fig.js'></script>"
                    "</body></html>")
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
    try:
        driver.set_script_timeout(300)
        driver.get(page.as_uri())
        out = driver.execute_async_script(BROWSER_SCRIPT.replace("REPEATS", str(repeats)), mode)
    finally:
        driver.quit()
    how = {"webgl": "everything in plotly WebGL (before)", "layers": "canvas layers (the app)"}[mode]
    print(f"  {how}, {vocab:,} nodes, {len(idx):,} edges: first render {out['first']:.0f} ms; "
          f"a step (colours, path, arrows, labels) median {statistics.median(out['steps']):.0f} ms "
          f"(max {max(out['steps']):.0f}); a zoom median {statistics.median(out['zooms']):.0f} ms "
          f"(max {max(out['zooms']):.0f}) over {repeats} each")


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    print(f"load average at start (1, 5, 15 min): {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
          f"on {os.cpu_count()} cores")
    kjv = app_timings(args.repeats)
    print("layouts, force against spectral (same run, same graphs):")
    compare_layouts(f"kjv-final ({len(kjv.positions):,} nodes)", len(kjv.positions), kjv.sources, kjv.targets,
                    kjv.strength)
    vocab, sources, targets, strength = synthetic_graph()
    compare_layouts(f"synthetic ({vocab:,} nodes)", vocab, sources, targets, strength)
    if not args.no_browser:
        top = top_per_source(sources, strength, vocab, MAX_GRAPH_K)
        graph = GraphData(force_positions(vocab, sources, targets, top), sources, targets, strength,
                          np.zeros(vocab, dtype=np.float32), top)
        print("headless Chromium (software WebGL), a step and a zoom timed to the next frame:")
        with tempfile.TemporaryDirectory() as tmp:
            browser_timings(graph, 4 * args.repeats, Path(tmp), "webgl")
            browser_timings(graph, 4 * args.repeats, Path(tmp), "layers")
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
