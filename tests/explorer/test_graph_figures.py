"""The token graph's layout and figure on synthetic data (and the bundled teaching model): structure,
spacing, the set-aside block, label rankings, selection."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from brillm_core import Checkpoint, DecodeSettings, load_checkpoint
from explorer.figures import graph
from explorer.graphdata import (PANEL_PX, GraphData, compute_graph_data, fill_square, force_positions,
                                SPREAD_SLACK, min_distance, neighbourhood_score, set_aside, spectral_positions, spread,
                                top_per_source)
from explorer.pages import token_graph
from explorer.state import MAX_GRAPH_K

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"


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
    path = trace.path.tolist()
    frames = graph.step_frames(g, trace.energies.numpy(), path)
    decoded = np.frombuffer(base64.b64decode(frames["energies"]), dtype="<f4")
    np.testing.assert_array_equal(decoded.reshape(trace.num_steps, -1), trace.energies.numpy())
    for step, (lo, hi) in enumerate(frames["range"]):
        row = trace.energies[step].numpy()
        assert lo == float(np.nanmin(row)) and hi == float(np.nanmax(row))
    assert frames["path"] == path
    assert (frames["steps"], frames["vocab"]) == (trace.num_steps, ckpt.config.vocab_size)
    # made for this picture: the layers draw it over no other one
    assert frames["picture"] == graph.token_graph(g, [str(n) for n in range(ckpt.config.vocab_size)], 3).data[
        graph.NODES].meta["picture"]


def test_labels_are_ranked_path_first_then_the_highest_energies() -> None:
    positions = np.stack([np.linspace(-1, 1, 10), np.zeros(10)], axis=1)
    g = synthetic_graph(positions)
    energies = np.arange(10, dtype=np.float32)[None, :].repeat(3, axis=0)
    energies[:, 9] = np.nan  # not a candidate: never ranked for its energy
    frames = graph.step_frames(g, energies, [0, 1, 2, 1])
    assert frames["labels"][0] == [1, 0, 8, 7, 6, 5, 4, 3, 2]  # the step's target and source, then energies
    assert frames["labels"][1][:3] == [2, 1, 0]  # and the earlier path, back to its start
    assert frames["labels"][2][:3] == [1, 2, 0]  # each node once
    rng = np.random.default_rng(3)
    big = synthetic_graph(rng.uniform(-1, 1, (2000, 2)))
    energies = rng.normal(size=(11, 2000)).astype(np.float32)
    path = [int(n) for n in rng.choice(2000, 12, replace=False)]
    for step, ranked in enumerate(graph.step_frames(big, energies, path)["labels"]):
        strongest = np.argsort(-energies[step])[: graph.ENERGY_LABELS].tolist()
        assert ranked[: step + 2] == path[: step + 2][::-1]
        assert ranked[step + 2:] == [n for n in strongest if n not in path[: step + 2]]


def test_the_other_nodes_rank_by_their_own_edges() -> None:
    g = synthetic_graph(np.zeros((6, 2)))
    ranking = graph.node_ranking(g)
    between = g.sources != g.targets
    count = np.bincount(np.concatenate([g.sources[between], g.targets[between]]), minlength=6)
    assert sorted(ranking.tolist()) == list(range(6)) and np.all(np.diff(count[ranking]) <= 0)


def pixel_distances(positions: np.ndarray) -> np.ndarray:
    """Distances between every two nodes on the panel the layout is spaced for."""
    width, height = PANEL_PX
    pixels = np.stack([(positions[:, 0] + 1) / 2 * width, (1 - positions[:, 1]) / 2 * height], axis=1)
    return pdist(pixels)


def test_small_graphs_keep_their_nodes_apart() -> None:
    teaching = load_checkpoint(SAMPLES / "teaching", device="cpu")
    g = compute_graph_data(teaching.model)
    # 21 nodes: two label heights apart at least (the force layout alone stacked eight pairs on one spot)
    assert pixel_distances(g.positions).min() >= 30
    # a graph of two tight clusters: every node still apart, by the spacing for its size
    vocab = 60
    sources = np.repeat(np.arange(vocab, dtype=np.int32), 3)
    targets = ((sources // 30) * 30 + (np.arange(len(sources)) % 29 + sources % 30 + 1) % 30).astype(np.int32)
    strength = np.ones(len(sources), dtype=np.float32)
    top = top_per_source(sources, strength, vocab, MAX_GRAPH_K)
    positions = force_positions(vocab, sources, targets, top)
    assert pixel_distances(positions).min() >= SPREAD_SLACK * min_distance(vocab, *PANEL_PX) > 20
    assert np.all(np.abs(positions) <= 1)


def test_spread_parts_points_on_one_spot_the_same_way_every_time() -> None:
    points = np.full((40, 2), 100.0)
    apart = spread(points, 10.0, (400.0, 300.0))
    assert pdist(apart).min() >= 10.0 * SPREAD_SLACK and np.all((apart >= 0) & (apart <= [400, 300]))
    np.testing.assert_array_equal(spread(points, 10.0, (400.0, 300.0)), apart)


def test_tokens_without_own_edges_are_set_aside_below_the_graph_with_a_caption() -> None:
    vocab = 50
    rng = np.random.default_rng(0)
    sources = np.repeat(np.arange(40, dtype=np.int32), 3)  # tokens 40-49 have no own edge ...
    targets = rng.integers(0, 40, len(sources)).astype(np.int32)
    sources = np.append(sources, [45]).astype(np.int32)  # ... but a self-loop, which does not count
    targets = np.append(targets, [45]).astype(np.int32)
    strength = rng.uniform(0, 1, len(sources)).astype(np.float32)
    top = top_per_source(sources, strength, vocab, MAX_GRAPH_K)
    assert set_aside(vocab, sources, targets).nonzero()[0].tolist() == list(range(40, 50))
    positions = force_positions(vocab, sources, targets, top)
    aside, placed = positions[40:], positions[:40]
    assert aside[:, 1].max() < placed[:, 1].min()  # a block below the graph
    assert np.ptp(aside[:, 1]) < 0.2 and np.all(np.diff(aside[:, 0]) > 0)  # in a row, in token order
    g = GraphData(positions, sources, targets, strength, np.zeros(vocab, dtype=np.float32), top)
    caption = graph.token_graph(g, [str(n) for n in range(vocab)], 3).data[graph.NODES].meta["aside"]
    assert caption["text"] == "set aside: 10 tokens with no own edge to another token"
    assert (caption["x"], caption["y"]) == (float(aside[:, 0].min()), float(aside[:, 1].max()))
    every = synthetic_graph(np.zeros((8, 2)))  # every token has own edges: no block, no caption
    assert graph.aside_caption(every) is None


def floats(text: str) -> np.ndarray:
    """A float32 array from the figure's base64 (``graph.encode_float32``)."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


def test_token_graph_figure_and_selection(ckpt: Checkpoint) -> None:
    g = compute_graph_data(ckpt.model)
    labels = [str(i) for i in range(ckpt.config.vocab_size)]
    fig = graph.token_graph(g, labels, 2, selected=5)
    pairs = np.frombuffer(base64.b64decode(fig.data[graph.EDGES].meta["pairs"]), dtype="<i4").reshape(-1, 2)
    idx = graph.thinned_edges(g, 2)  # the edge layer's (source, target) pairs, none drawn by plotly itself
    np.testing.assert_array_equal(pairs, np.stack([g.sources[idx], g.targets[idx]], axis=1))
    assert np.isnan(np.asarray(fig.data[graph.EDGES].x)).all()
    for k in (1, 3):
        idx = graph.thinned_edges(g, k)
        assert np.bincount(g.sources[idx], minlength=ckpt.config.vocab_size).max() <= k
    # the nodes are the layers' to draw: plotly gets a gap point per trace (its legend entry)
    nodes = fig.data[graph.NODES].meta
    np.testing.assert_array_equal(floats(nodes["x"]), g.positions[:, 0])
    np.testing.assert_array_equal(floats(nodes["y"]), g.positions[:, 1])
    assert nodes["text"] == labels and fig.layout.hovermode is False
    ranking = np.frombuffer(base64.b64decode(nodes["rank"]), dtype="<i4")
    np.testing.assert_array_equal(ranking, graph.node_ranking(g))
    assert all(len(trace.x) == 1 and (trace.x[0] is None or np.isnan(trace.x[0])) for trace in fig.data)
    out, into = fig.data[graph.OUT_EDGES], fig.data[graph.IN_EDGES]
    assert "of 5" in out.name and "of 5" in into.name and fig.layout.showlegend
    assert fig.layout.dragmode == "pan" and fig.layout.uirevision == nodes["picture"]
    assert list(fig.layout.xaxis.range) == list(graph.axis_ranges()[0])  # the layout fills the panel
    assert 0.9 <= np.abs(g.positions).max() <= 1.0  # the bulk spans the axes, the rim holds any outlier
    empty = graph.token_graph(g, labels, 2)  # no selection: no points, so no legend entries
    assert len(empty.data[graph.OUT_EDGES].x) == 0 and len(empty.data[graph.MARKS].x) == 0
    # the selection the layers draw: the other ends of the node's strongest edges, for this picture
    chosen = graph.selection(g, 5, 3, "5")
    assert chosen["node"] == 5 and chosen["picture"] == nodes["picture"]
    assert chosen["out"] == g.targets[g.out_edges(5, 3)].tolist() and len(chosen["out"]) > 0
    assert chosen["in"] == g.sources[g.in_edges(5, 3)].tolist() and len(chosen["in"]) > 0
    assert chosen["names"] == [out.name, into.name, fig.data[graph.MARKS].name]
    none = graph.selection(g, -1, 3, "")
    assert (none["node"], none["out"], none["in"]) == (-1, [], []) and none["names"][0] == empty.data[3].name
    other = compute_graph_data(load_checkpoint(SAMPLES / "teaching", device="cpu").model)
    assert graph.picture_id(other) != nodes["picture"]  # another checkpoint: another picture


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
