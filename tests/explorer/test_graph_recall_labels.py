"""The recall graph's labels never overlap, even with a crowded first hop and long tokens."""

from __future__ import annotations

import itertools

import numpy as np
import plotly.graph_objects as go
import torch

from brillm_core import RecallResult
from explorer.figures import recall


def crowded_result(vocab: int = 120, seed: int = 0) -> RecallResult:
    """Node 0 starts; 45 nodes light up at hop 1, 30 at hop 2, 10 at hop 3."""
    rng = np.random.default_rng(seed)
    first_hop = torch.zeros(vocab, dtype=torch.int64)
    first_hop[1:46], first_hop[46:76], first_hop[76:86] = 1, 2, 3
    activation = torch.tensor(rng.uniform(0, 1, vocab))
    edges = [(1, 0, n, 0.1) for n in range(1, 46)] + [(2, int(rng.integers(1, 46)), n, 0.05) for n in range(46, 86)]
    return RecallResult([0], activation, first_hop, edges)


def test_recall_labels_do_not_overlap() -> None:
    result = crowded_result()
    words = ["Ġcommandments", "Ġand", "Ġthe", "ĠJerusalem", "Ġwhosoever", "x"]
    fig = go.Figure(recall.recall_graph(result, lambda n: words[n % len(words)] * (1 + n % 3), max_nodes=85))
    nodes = fig.data[-1]
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    width = recall.PLOT_WIDTH_PX
    height = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert len(nodes.x) == 86 and max(np.bincount(np.asarray(nodes.x, dtype=int))) == 45
    boxes = []
    for x, y, label in zip(nodes.x, nodes.y, nodes.text):
        px, py = (x - x0) / (x1 - x0) * width, (y1 - y) / (y1 - y0) * height
        left = px + recall.LABEL_OFFSET_PX - 8  # the marker's radius at most, then the text
        boxes.append((left, py - recall.LABEL_FONT / 2, px + recall.LABEL_OFFSET_PX + len(label) * recall.CHAR_PX,
                      py + recall.LABEL_FONT / 2))
    for a, b in itertools.combinations(boxes, 2):
        assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    assert all(size <= recall.ROW_PX for size in nodes.marker.size)
    assert any(label.endswith("…") for label in nodes.text)  # long tokens were cut to their column
    assert all(full.startswith(label.rstrip("…")) for full, label in zip(nodes.hovertext, nodes.text))
