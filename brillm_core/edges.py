"""EdgeTable: which parameter row each directed edge (source, target) reads, as tensors.

Rows follow the release's numbering: walking sources in id order and, inside each,
targets in id order, every edge with a row of its own gets the next row, starting at 1;
every other edge reads the shared row 0. So the table only needs the sorted keys
``source * V + target`` of the edges with their own row: edge number k in that order
reads row k + 1. A CSR pointer per source gives each source's slice in O(1).
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import CheckpointError


class EdgeTable:
    """Sorted own-row edge keys plus a per-source CSR pointer; no Python loop over edges."""

    def __init__(self, vocab_size: int, own_keys: torch.Tensor) -> None:
        keys = torch.as_tensor(own_keys, dtype=torch.int64).flatten()
        if keys.numel() and (keys.min() < 0 or keys.max() >= vocab_size * vocab_size):
            raise CheckpointError("edge keys fall outside the V x V edge range")
        if keys.numel() > 1 and not bool((keys[1:] > keys[:-1]).all()):
            raise CheckpointError("edge keys must be strictly increasing (sorted, no repeats)")
        self.vocab_size = int(vocab_size)
        self.own_keys = keys
        sources = keys // vocab_size
        counts = torch.bincount(sources, minlength=vocab_size)
        self.indptr = torch.zeros(vocab_size + 1, dtype=torch.int64, device=keys.device)
        self.indptr[1:] = torch.cumsum(counts, 0)

    @classmethod
    def from_own_mask(cls, own: np.ndarray | torch.Tensor) -> "EdgeTable":
        """Table from a V x V boolean matrix marking the edges that own a row."""
        own_t = torch.as_tensor(own, dtype=torch.bool)
        if own_t.dim() != 2 or own_t.shape[0] != own_t.shape[1]:
            raise CheckpointError(f"own-row mask must be square V x V, got {tuple(own_t.shape)}")
        return cls(own_t.shape[0], torch.nonzero(own_t.flatten()).flatten())

    @property
    def num_own(self) -> int:
        """Edges with a row of their own."""
        return int(self.own_keys.numel())

    @property
    def num_rows(self) -> int:
        """Parameter rows the table addresses: the shared row plus one per own edge."""
        return self.num_own + 1

    def to(self, device: torch.device | str) -> "EdgeTable":
        """The same table with its tensors on another device."""
        return EdgeTable(self.vocab_size, self.own_keys.to(device))

    def rows(self, sources: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Parameter row of each edge (any broadcastable shapes); 0 for shared edges."""
        keys = torch.as_tensor(sources, device=self.own_keys.device) * self.vocab_size + torch.as_tensor(
            targets, device=self.own_keys.device
        )
        if self.num_own == 0:
            return torch.zeros_like(keys)
        idx = torch.searchsorted(self.own_keys, keys)
        found = self.own_keys[idx.clamp(max=self.num_own - 1)] == keys
        return torch.where(found, idx + 1, torch.zeros_like(idx))

    def rows_into(self, target: int) -> torch.Tensor:
        """Row of every edge entering ``target``, indexed by source id (shape V)."""
        sources = torch.arange(self.vocab_size, device=self.own_keys.device)
        return self.rows(sources, torch.full_like(sources, target))

    def own_targets(self, source: int) -> torch.Tensor:
        """Targets reached from ``source`` through edges with their own row, ascending."""
        start, end = int(self.indptr[source]), int(self.indptr[source + 1])
        return self.own_keys[start:end] - source * self.vocab_size

    def own_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(sources, targets) of all own-row edges, in row order (row = index + 1)."""
        return self.own_keys // self.vocab_size, self.own_keys % self.vocab_size
