"""The token graph's static data: edge strengths, strongest edges per node, and a 2-D layout.

Edge strength: the energy an own-row edge (s, t) carries on the first step of a path
that starts at s (``brillm_core.edge_strengths``, the core's decode rule); it is what the
Signal path view would show at step 0 for a prompt of one node s. Only
edges with their own parameter row are drawn: the shared row gives every other edge of
a source the same output. The layout is spectral (Laplacian eigenvectors) on the
strongest ``LAYOUT_K`` edges per node plus a faint ring over node ids that keeps the
graph connected, so isolated nodes do not pile up on one point. Each axis is then
replaced by its ranks (spread evenly over [-1, 1]): Laplacian eigenvectors of sparse
graphs put a few nodes far out and squeeze the rest into a dot.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from brillm_core import BriLLM, DecodeSettings
from brillm_core import edge_strengths as core_edge_strengths

from .state import MAX_GRAPH_K

LAYOUT_K = 4
RING_WEIGHT = 0.05


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


def spectral_positions(vocab_size: int, sources: np.ndarray, targets: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Spectral layout of the strongest edges plus a faint id ring, rank-spread over [-1, 1]."""
    if vocab_size == 1:
        return np.zeros((1, 2), dtype=np.float32)
    graph = nx.Graph()
    graph.add_nodes_from(range(vocab_size))
    graph.add_weighted_edges_from((i, (i + 1) % vocab_size, RING_WEIGHT) for i in range(vocab_size))
    chosen = top[:, :LAYOUT_K].ravel()
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
    positions = spectral_positions(model.vocab_size, sources, targets, top)
    return GraphData(positions, sources, targets, strength, shared, top)
