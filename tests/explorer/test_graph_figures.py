"""The token graph's layout and figure on synthetic data: structure, labels, arrows, selection."""

from __future__ import annotations

import base64
import itertools

import numpy as np
import pytest

from brillm_core import Checkpoint, DecodeSettings
from explorer.figures import graph
from explorer.graphdata import (GraphData, compute_graph_data, fill_square, force_positions, neighbourhood_score,
                                spectral_positions, top_per_source)
from explorer.pages import token_graph
from explorer.state import MAX_GRAPH_K


def community_graph(groups: int = 40, size: int = 25, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Own edges of a graph whose nodes (in shuffled id order) form communities: each node's three
    strongest edges stay in its community, two weaker ones go anywhere (as a language's edges
    mix topical neighbours with frequent words)."""
    rng = np.random.default_rng(seed)
    vocab = groups * size
    community = rng.permutation(vocab) // size
    members = [np.nonzero(community == c)[0] for c in range(groups)]
    sources, targets, strength = [], [], []
    for node in range(vocab):
        near = rng.choice(members[community[node]][members[community[node]] != node], 3, replace=False)
        far = rng.choice(vocab, 2, replace=False)
        sources += [node] * 5
        targets += [*near, *far]
        strength += [*rng.uniform(2, 3, 3), *rng.uniform(0, 1, 2)]
    return (vocab, np.array(sources, dtype=np.int32), np.array(targets, dtype=np.int32),
            np.array(strength, dtype=np.float32))


def synthetic_graph(positions: np.ndarray, seed: int = 1) -> GraphData:
    """GraphData with given positions and random own edges (four per node)."""
    rng = np.random.default_rng(seed)
    vocab = len(positions)
    sources = np.repeat(np.arange(vocab, dtype=np.int32), 4)
    targets = rng.integers(0, vocab, len(sources)).astype(np.int32)
    strength = rng.uniform(0, 1, len(sources)).astype(np.float32)
    top = top_per_source(sources, strength, vocab, MAX_GRAPH_K)
    return GraphData(positions.astype(np.float32), sources, targets, strength,
                     np.zeros(vocab, dtype=np.float32), top)


def test_force_layout_shows_structure_and_fills_the_panel() -> None:
    vocab, sources, targets, strength = community_graph()
    top = top_per_source(sources, strength, vocab, MAX_GRAPH_K)
    force = force_positions(vocab, sources, targets, top)
    spectral = spectral_positions(vocab, sources, targets, top)
    force_score = neighbourhood_score(force, targets, top)
    spectral_score = neighbourhood_score(spectral, targets, top)
    # 3 of a node's 5 strongest targets share its community of 25, which fits in its 30 nearest
    # neighbours: a layout that shows the communities scores near 0.6 (measured 0.61 against 0.28)
    assert force_score > 0.5 and force_score > 1.5 * spectral_score, (force_score, spectral_score)
    assert np.all(np.abs(force) <= 1) and np.all(np.ptp(np.percentile(force, [1, 99], axis=0), axis=0) > 1.79)
    np.testing.assert_array_equal(force_positions(vocab, sources, targets, top), force)  # same picture every time


def test_one_far_node_does_not_shrink_the_rest_of_the_layout() -> None:
    rng = np.random.default_rng(0)
    xy = np.concatenate([rng.normal(size=(500, 2)), [[400.0, -300.0]]])  # one node far out
    filled = fill_square(xy)
    assert np.all(np.abs(filled) <= 1) and np.all(np.abs(filled[-1]) > 0.9)  # the far node on the rim
    bulk = filled[:-1]
    assert np.all(np.ptp(bulk, axis=0) > 1.7)  # the other 500 still span most of each axis
    order = np.argsort(xy[:, 0])
    assert np.all(np.diff(filled[order, 0]) >= 0)  # left-right order is kept


def test_neighbourhood_score_counts_strongest_targets_among_nearest() -> None:
    positions = np.array([[0, 0], [1, 0], [3, 0], [7, 0]], dtype=np.float32)  # nearest: 0-1, 1-0, 2-1, 3-2
    sources = np.array([0, 0, 1, 1, 2, 2, 3], dtype=np.int32)
    targets = np.array([3, 1, 3, 2, 3, 1, 3], dtype=np.int32)  # 3 -> 3 is a self-loop: not counted
    strength = np.array([2, 1, 2, 1, 2, 1, 5], dtype=np.float32)
    top = top_per_source(sources, strength, 4, MAX_GRAPH_K)
    assert neighbourhood_score(positions, targets, top, strongest=1, neighbours=1) == 0.0
    assert neighbourhood_score(positions, targets, top, strongest=2, neighbours=1) == pytest.approx(2 / 6)
    assert neighbourhood_score(positions, targets, top, strongest=2, neighbours=3) == 1.0


@pytest.fixture(scope="module")
def trace(ckpt: Checkpoint):
    return ckpt.trace("hello world", DecodeSettings(max_new_tokens=6))


def test_frames_carry_the_trace_energies_exactly(ckpt: Checkpoint, trace) -> None:
    g = compute_graph_data(ckpt.model)
    labels = [str(i) for i in range(ckpt.config.vocab_size)]
    path = trace.path.tolist()
    frames = graph.step_frames(g, labels, trace.energies.numpy(), path)
    decoded = np.frombuffer(base64.b64decode(frames["energies"]), dtype="<f4")
    np.testing.assert_array_equal(decoded.reshape(trace.num_steps, -1), trace.energies.numpy())
    for step, (lo, hi) in enumerate(frames["range"]):
        row = trace.energies[step].numpy()
        assert lo == float(np.nanmin(row)) and hi == float(np.nanmax(row))
    assert frames["path"] == path
    assert (frames["steps"], frames["vocab"]) == (trace.num_steps, ckpt.config.vocab_size)


def test_labels_never_overlap_and_the_step_comes_first() -> None:
    rng = np.random.default_rng(3)
    positions = rng.uniform(-1, 1, (2000, 2))
    g = synthetic_graph(positions)
    labels = [f"{'w' * int(rng.integers(1, 9))} #{n}" for n in range(2000)]
    path = [int(n) for n in rng.choice(2000, 12, replace=False)]
    energies = rng.normal(size=(11, 2000)).astype(np.float32)
    frames = graph.step_frames(g, labels, energies, path)
    (x0, x1), (y0, y1) = graph.axis_ranges()
    width, height = graph.PLOT_PX
    shift = graph.LABEL_GAP / 2 + (graph.LABEL_FONT + graph.LABEL_GAP) / 2  # the step layer's offset above a node
    for step, chosen in enumerate(frames["labels"]):
        assert path[step + 1] in chosen  # the step's target is always written
        assert 10 <= len(chosen) <= graph.MAX_LABELS
        boxes = []
        for node in chosen:
            x, y = g.positions[node].tolist()
            px = (x - x0) / (x1 - x0) * width
            py = (y1 - y) / (y1 - y0) * height - shift  # the label's centre
            half_w, half_h = len(labels[node]) * graph.CHAR_PX / 2, graph.LABEL_FONT / 2
            assert py + half_h < (y1 - y) / (y1 - y0) * height  # above its node
            boxes.append((px - half_w, py - half_h, px + half_w, py + half_h))
        for a, b in itertools.combinations(boxes, 2):
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_labels_go_to_the_path_then_the_highest_energies() -> None:
    positions = np.stack([np.linspace(-1, 1, 10), np.zeros(10)], axis=1)  # far apart: every label fits
    g = synthetic_graph(positions)
    energies = np.arange(10, dtype=np.float32)[None, :].repeat(2, axis=0)
    energies[:, 9] = np.nan  # not a candidate: never labelled for its energy
    frames = graph.step_frames(g, [str(n) for n in range(10)], energies, [0, 1, 2])
    assert frames["labels"][0][:2] == [1, 0]
    assert frames["labels"][1][:3] == [2, 1, 0]
    assert frames["labels"][1][3:] == [8, 7, 6, 5, 4, 3]


def floats(text: str) -> np.ndarray:
    """A float32 array from the figure's base64 (``graph.encode_float32``)."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


def test_token_graph_figure_and_selection(ckpt: Checkpoint) -> None:
    g = compute_graph_data(ckpt.model)
    labels = [str(i) for i in range(ckpt.config.vocab_size)]
    fig = graph.token_graph(g, labels, 2, selected=5, detail_k=3)
    pairs = np.frombuffer(base64.b64decode(fig.data[graph.EDGES].meta["pairs"]), dtype="<i4").reshape(-1, 2)
    idx = graph.thinned_edges(g, 2)  # the edge layer's (source, target) pairs, none drawn by plotly itself
    np.testing.assert_array_equal(pairs, np.stack([g.sources[idx], g.targets[idx]], axis=1))
    assert np.isnan(np.asarray(fig.data[graph.EDGES].x)).all()
    for k in (1, 3):
        idx = graph.thinned_edges(g, k)
        assert np.bincount(g.sources[idx], minlength=ckpt.config.vocab_size).max() <= k
    # the nodes and the selection are the layers' to draw: plotly gets a gap point per trace (its legend entry)
    np.testing.assert_array_equal(floats(fig.data[graph.NODES].meta["x"]), g.positions[:, 0])
    np.testing.assert_array_equal(floats(fig.data[graph.NODES].meta["y"]), g.positions[:, 1])
    assert fig.data[graph.NODES].meta["text"] == labels and fig.layout.hovermode is False
    assert all(np.isnan(np.asarray(trace.x)).all() and len(trace.x) == 1 for trace in fig.data)
    out, into = fig.data[graph.OUT_EDGES], fig.data[graph.IN_EDGES]
    out_x, into_x = floats(out.meta["x"]), floats(into.meta["x"])
    assert len(out_x) == 3 * len(g.out_edges(5, 3)) > 0 and len(into_x) == 3 * len(g.in_edges(5, 3)) > 0
    np.testing.assert_array_equal(out_x[0::3], g.positions[5, 0])  # every out-edge starts at node 5
    np.testing.assert_array_equal(into_x[1::3], g.positions[5, 0])  # every in-edge ends there
    np.testing.assert_array_equal(floats(fig.data[graph.MARKS].meta["y"]), g.positions[[5], 1])
    assert "of 5" in out.name and "of 5" in into.name and fig.layout.showlegend
    assert fig.layout.dragmode == "pan" and fig.layout.uirevision
    assert list(fig.layout.xaxis.range) == list(graph.axis_ranges()[0])  # the layout fills the panel
    assert 0.9 <= np.abs(g.positions).max() <= 1.0  # the bulk spans the axes, the rim holds any outlier
    empty = graph.token_graph(g, labels, 2)  # no selection: no points, so no legend entries
    assert len(empty.data[graph.OUT_EDGES].x) == 0 and len(empty.data[graph.MARKS].x) == 0
    assert len(floats(empty.data[graph.MARKS].meta["x"])) == 0


def test_page_zooms_with_the_wheel() -> None:
    page = token_graph.layout()
    found = []

    def walk(component) -> None:
        if getattr(component, "id", None) == f"{token_graph.P}-graph":
            found.append(component)
        children = getattr(component, "children", None)
        for child in children if isinstance(children, list) else [children] if children is not None else []:
            walk(child)

    walk(page)
    assert found and found[0].config["scrollZoom"] is True and found[0].config["displaylogo"] is False
    assert "Preparing the graph" in found[0].figure.layout.annotations[0].text  # not empty axes while it lays out


def test_energy_text_keeps_every_float32_digit_that_tells_energies_apart() -> None:
    values = np.array([50013.046875, 50013.05078125, 1.8896345, np.nan], dtype=np.float32)  # neighbours 1 ulp apart
    shown = graph.energy_text(values)
    assert shown[0] != shown[1] and shown[3] == "–"
    assert [np.float32(text) for text in shown[:3]] == list(values[:3])  # each text reads back as the exact value
