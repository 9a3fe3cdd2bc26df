"""The token graph's static data: edge strengths, strongest edges per node, and a 2-D layout.

Edge strength: the energy an own-row edge (s, t) carries on the first step of a path
that starts at s (``brillm_core.edge_strengths``, the core's decode rule); it is what the
Signal path view would show at step 0 for a prompt of one node s. Only
edges with their own parameter row are drawn: the shared row gives every other edge of
a source the same output.

The layout is igraph's UMAP force layout of each node's ``LAYOUT_K`` strongest own
edges (stronger edges are shorter springs), seeded so that a checkpoint always gets the
same picture, then stretched so that its bulk fills [-1, 1] on both axes (``fill_square``). It puts a node near the
targets of its strongest edges, which ``neighbourhood_score`` measures; the spectral
layout it replaced is kept as ``spectral_positions``, the baseline the benchmark and
the tests compare against. Nodes are then pushed apart until no two are closer than
``min_distance`` on the panel (a force layout stacks nodes with the same targets on one
spot, which hides all but one of them). Tokens with no own edge to or from another token
(unused pieces such as [PAD] or byte tokens: the layout has nothing to place them by) are
set aside in a block below the graph (``set_aside``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import igraph
import networkx as nx
import numpy as np
from scipy.spatial import cKDTree

from brillm_core import BriLLM, DecodeSettings
from brillm_core import edge_strengths as core_edge_strengths

from .state import MAX_GRAPH_K

LAYOUT_K = 5  # strongest own edges per node that pull it towards their targets
LAYOUT_EPOCHS = 200  # UMAP iterations: 300 add 3 % to the score (kjv-final) for 50 % more time
LAYOUT_SEED = 0
LAYOUT_VERSION = 4  # part of the cache key: a new layout must not be read from an old cache
CORE = 0.9  # share of each axis given to the 1st-99th percentile of the nodes (fill_square)
# The plot area in pixels the layout is spaced for (the Token graph panel of a 1,440 px wide window);
# a wider panel or zooming in only moves nodes further apart.
PANEL_PX = (760.0, 520.0)
SPACING = 0.3  # the least distance between nodes, as a share of their distance if spread evenly (more
# would take the force layout's clusters apart: a node's nearest neighbours would no longer be its own)
ASIDE_GAP_PX = 30.0  # between the graph and the block of set-aside tokens, room for its caption
SPREAD_ROUNDS = 200  # pushes of crowded pairs at most
SPREAD_SLACK = 0.97  # a pair this much closer than the least distance is left as it is
SPECTRAL_K, RING_WEIGHT = 4, 0.05  # the baseline layout's settings
SCORE_TARGETS, SCORE_NEIGHBOURS = 5, 30


@dataclass
class GraphData:
    """Per checkpoint: node positions, own-edge strengths, top edges per node."""

    positions: np.ndarray  # (V, 2) float32 in [-1, 1]
    sources: np.ndarray  # (E,) int32 own-edge sources, in row order
    targets: np.ndarray  # (E,) int32 own-edge targets
    strength: np.ndarray  # (E,) float32 own-edge strengths
    shared_strength: np.ndarray  # (V,) float32 strength of each source's shared-row edges
    top_out: np.ndarray  # (V, MAX_GRAPH_K) int64 own-edge indices by strength, -1 padded

    def out_edges(self, node: int, k: int) -> np.ndarray:
        """Indices of ``node``'s k strongest own out-edges."""
        row = self.top_out[node, :k]
        return row[row >= 0]

    def in_edges(self, node: int, k: int) -> np.ndarray:
        """Indices of ``node``'s k strongest own in-edges."""
        idx = np.nonzero(self.targets == node)[0]
        return idx[np.argsort(-self.strength[idx], kind="stable")[:k]]


def edge_strengths(model: BriLLM, settings: DecodeSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sources, targets, strength) of own edges and each source's shared-row strength, from the core."""
    e = core_edge_strengths(model, settings)
    return (e.own_sources.cpu().numpy().astype(np.int32), e.own_targets.cpu().numpy().astype(np.int32),
            e.own_energy.cpu().numpy(), e.shared_energy.cpu().numpy())


def top_per_source(sources: np.ndarray, strength: np.ndarray, vocab_size: int, k: int) -> np.ndarray:
    """(V, k) indices of each source's strongest edges, -1 where a source has fewer."""
    out = np.full((vocab_size, k), -1, dtype=np.int64)
    order = np.lexsort((-strength, sources))  # by source, then strength descending
    sorted_src = sources[order]
    starts = np.searchsorted(sorted_src, np.arange(vocab_size))
    ends = np.searchsorted(sorted_src, np.arange(vocab_size), side="right")
    for j in range(k):
        has = starts + j < ends
        out[has, j] = order[starts[has] + j]
    return out


def layout_edges(sources: np.ndarray, targets: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Own-edge indices of each node's ``LAYOUT_K`` strongest edges (no self-loops) and each one's
    rank within its source (0 = strongest)."""
    chosen = top[:, :LAYOUT_K]
    ranks = np.broadcast_to(np.arange(chosen.shape[1]), chosen.shape)
    keep = chosen >= 0
    edges, ranks = chosen[keep], ranks[keep]
    loop = sources[edges] == targets[edges]
    return edges[~loop], ranks[~loop]


def set_aside(vocab_size: int, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Boolean mask of the tokens with no own edge to or from another token (self-loops do not count)."""
    linked = np.zeros(vocab_size, dtype=bool)
    between = sources != targets
    linked[sources[between]] = linked[targets[between]] = True
    return ~linked


def min_distance(count: int, width: float, height: float) -> float:
    """Least distance in pixels between ``count`` nodes on a ``width`` x ``height`` area (``SPACING``):
    20 nodes on the panel get 39 px (room for their labels), 1,300 get 5 px (no dot hides another)."""
    return SPACING * float(np.sqrt(width * height / max(count, 1)))


def spread(points: np.ndarray, distance: float, high: tuple[float, float],
           rounds: int = SPREAD_ROUNDS) -> np.ndarray:
    """Push apart every pair of points closer than ``distance`` (each by three quarters of the
    shortfall: pushes from crowded neighbours partly cancel), kept within [0, high]; repeated until
    no pair is closer than ``SPREAD_SLACK`` of it. Points on the same spot part in a direction fixed
    by their indices, so the result is the same every time."""
    p = np.array(points, dtype=np.float64)
    if len(p) < 2 or distance <= 0:
        return p
    for _ in range(rounds):
        pairs = cKDTree(p).query_pairs(distance * SPREAD_SLACK, output_type="ndarray")
        if not len(pairs):
            break
        a, b = pairs[:, 0], pairs[:, 1]
        gap = p[b] - p[a]
        length = np.hypot(gap[:, 0], gap[:, 1])
        angle = 2.399963 * (a + 1) + 1.1 * b  # the golden angle: coincident pairs part in many directions
        apart = length > 1e-9 * distance
        unit = np.where(apart[:, None], gap / np.where(apart, length, 1.0)[:, None],
                        np.stack([np.cos(angle), np.sin(angle)], axis=1))
        push = unit * ((distance - length) * 0.75)[:, None]
        shift = np.zeros_like(p)
        np.add.at(shift, a, -push)
        np.add.at(shift, b, push)
        p = np.clip(p + shift, 0.0, high)
    return p


def grid_block(count: int, distance: float, width: float) -> np.ndarray:
    """Pixel positions of ``count`` nodes in rows ``distance`` apart across ``width``, from the top left."""
    columns = max(1, int(width // distance))
    index = np.arange(count)
    return np.stack([(index % columns + 0.5) * distance, (index // columns + 0.5) * distance], axis=1)


def force_positions(vocab_size: int, sources: np.ndarray, targets: np.ndarray, top: np.ndarray) -> np.ndarray:
    """UMAP force layout of the strongest edges (spring length = rank + 1), scaled to fill [-1, 1]²
    with no two nodes closer than ``min_distance`` on the panel, the set-aside tokens in a block below."""
    width, height = PANEL_PX
    aside = set_aside(vocab_size, sources, targets)
    placed = np.nonzero(~aside)[0]
    # the block of set-aside tokens: rows at the bottom of the panel
    block_distance = min_distance(vocab_size, width, height)
    block = grid_block(int(aside.sum()), block_distance, width)
    top_px = height - (block[:, 1].max() + block_distance / 2 + ASIDE_GAP_PX if len(block) else 0.0)
    pixels = np.zeros((vocab_size, 2))
    pixels[aside] = block + [0.0, top_px + ASIDE_GAP_PX]
    if len(placed):
        xy = fill_square(umap_positions(placed, sources, targets, top))
        crowded = np.stack([(xy[:, 0] + 1) / 2 * width, (1 - xy[:, 1]) / 2 * top_px], axis=1)
        pixels[placed] = spread(crowded, min_distance(len(placed), width, top_px), (width, top_px))
    return np.stack([pixels[:, 0] / width * 2 - 1, 1 - pixels[:, 1] / height * 2], axis=1).astype(np.float32)


def umap_positions(nodes: np.ndarray, sources: np.ndarray, targets: np.ndarray, top: np.ndarray) -> np.ndarray:
    """igraph's UMAP layout of ``nodes`` by their strongest edges among them (seeded: the same every time)."""
    if len(nodes) < 3:  # nothing to lay out: the nodes in a row
        return np.stack([np.arange(len(nodes)), np.zeros(len(nodes))], axis=1).astype(np.float64)
    edges, ranks = layout_edges(sources, targets, top)
    index = np.full(len(top), -1)
    index[nodes] = np.arange(len(nodes))
    pairs = np.stack([index[sources[edges]], index[targets[edges]]], axis=1)
    graph = igraph.Graph(n=len(nodes), edges=pairs.tolist())
    igraph.set_random_number_generator(random.Random(LAYOUT_SEED))
    try:
        start = np.random.default_rng(LAYOUT_SEED).uniform(-1, 1, (len(nodes), 2)).tolist()
        return np.array(graph.layout_umap(dist=(ranks + 1.0).tolist(), seed=start, min_dist=0.0,
                                          epochs=LAYOUT_EPOCHS).coords, dtype=np.float64)
    finally:
        igraph.set_random_number_generator(random)


def fill_square(xy: np.ndarray) -> np.ndarray:
    """Each axis onto [-1, 1] so that the bulk fills the panel: the 1st-99th percentile range
    maps linearly onto [-CORE, CORE], and the few nodes beyond it are squeezed monotonically
    into the rim (a lone far node would otherwise shrink everything else to a corner).
    A constant axis goes to 0."""
    lo, hi = np.percentile(xy, [1, 99], axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    z = 2.0 * (xy - lo) / span - 1.0
    core = np.clip(z, -1.0, 1.0)
    spread = CORE * core + (1.0 - CORE) * np.tanh(z - core)
    return np.where(hi > lo, spread, 0.0).astype(np.float32)


def neighbourhood_score(positions: np.ndarray, targets: np.ndarray, top: np.ndarray,
                        strongest: int = SCORE_TARGETS, neighbours: int = SCORE_NEIGHBOURS) -> float:
    """Share of each node's ``strongest`` out-edge targets (self-loops left out) that lie among its
    ``neighbours`` nearest nodes in the layout: how well the picture puts a node beside where it leads."""
    vocab = len(positions)
    count = min(neighbours + 1, vocab)
    _, near = cKDTree(positions).query(positions, count)
    near = near.reshape(vocab, count)[:, 1:]
    chosen = top[:, :strongest]
    valid = chosen >= 0
    target = np.where(valid, targets[np.where(valid, chosen, 0)], -1)
    valid &= target != np.arange(vocab)[:, None]
    hits = (target[:, :, None] == near[:, None, :]).any(axis=2) & valid
    return float(hits.sum() / valid.sum()) if valid.any() else 0.0


def spectral_positions(vocab_size: int, sources: np.ndarray, targets: np.ndarray, top: np.ndarray) -> np.ndarray:
    """The former layout, kept as the baseline of the benchmark and tests: spectral (Laplacian
    eigenvectors) of the strongest edges plus a faint id ring, each axis rank-spread over [-1, 1]."""
    if vocab_size == 1:
        return np.zeros((1, 2), dtype=np.float32)
    graph = nx.Graph()
    graph.add_nodes_from(range(vocab_size))
    graph.add_weighted_edges_from((i, (i + 1) % vocab_size, RING_WEIGHT) for i in range(vocab_size))
    chosen = top[:, :SPECTRAL_K].ravel()
    chosen = chosen[chosen >= 0]
    graph.add_weighted_edges_from(
        (int(s), int(t), 1.0) for s, t in zip(sources[chosen], targets[chosen]) if s != t
    )
    if vocab_size < 3:
        pos = nx.circular_layout(graph)
    else:
        pos = nx.spectral_layout(graph, weight="weight")
    xy = np.array([pos[i] for i in range(vocab_size)], dtype=np.float64)
    ranks = np.argsort(np.argsort(xy, axis=0, kind="stable"), axis=0, kind="stable")
    return (2.0 * ranks / (vocab_size - 1) - 1.0).astype(np.float32)


def compute_graph_data(model: BriLLM, settings: DecodeSettings | None = None) -> GraphData:
    """Strengths (under ``settings``, default the training semantics), strongest edges and the
    layout of one model (seconds at 4,000 nodes)."""
    sources, targets, strength, shared = edge_strengths(model, settings or DecodeSettings())
    top = top_per_source(sources, strength, model.vocab_size, MAX_GRAPH_K)
    positions = force_positions(model.vocab_size, sources, targets, top)
    return GraphData(positions, sources, targets, strength, shared, top)
