"""The BriLLM module: parameters, start signal, memory and edge outputs, per the spec.

Vectors are row vectors: the signal ``x`` arriving at a node is multiplied by the
edge's matrix as ``x @ W``. Every function here is pure tensor arithmetic; the path
logic (teacher forcing, sampling, recording) lives in ``propagate``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .edges import EdgeTable
from .errors import CheckpointError


def positional_encoding(length: int, width: int) -> torch.Tensor:
    """The release's PE table, in the release's own float32 arithmetic, bit for bit.

    ``PE[p, 2k] = sin(p * f_k)``, ``PE[p, 2k+1] = cos(p * f_k)`` with the float32 frequency
    ``f_k = 10000.0 ** (2k / d)`` (it multiplies the position). Integer positions times
    float32 frequencies reach millions of radians, so a float64 table rounded to float32 is
    a different table (0.15 apart at position 511); the release's checkpoints were trained
    with this one. ``f_k`` is the float32 nearest to 10000 ** (2k / d): torch's vectorised float32
    power is 1 ulp off it on some CPUs (f_1 of d = 50 on AVX2), so it is taken in float64 and rounded.
    """
    position = torch.arange(length).reshape(-1, 1)  # int64, promoted by the float32 product
    exponent = torch.arange(0, width, 2) / width  # float32, as the release's
    freq = torch.pow(10000.0, exponent.double()).float()
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)
    return table


def gelu(x: torch.Tensor) -> torch.Tensor:
    """Exact (erf) GELU, as the release's ``nn.GELU()``."""
    return F.gelu(x, approximate="none")


def start_signal(node_bias: torch.Tensor, pe: torch.Tensor, base: torch.Tensor | float) -> torch.Tensor:
    """e_0 = GELU(base + node_bias + PE[0]) for node bias rows (..., d) and the PE table; the release's base is 1 / d."""
    return gelu(base + node_bias + pe[0])


def edge_product(signals: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """x W for signals (..., d) and edge matrices (..., d, d), leading dimensions broadcast.

    Each pair of a signal and a matrix with its own leading index is one (1 x d) @ (d x d)
    product, as the release's batched matmul; a matrix without leading dimensions against
    N signals is one (N x d) @ (d x d) product instead, which rounds differently on some
    CPUs (training's shared row does that; the forward expands both sides first).
    """
    return torch.einsum("...d,...de->...e", signals, weights)


def edge_preactivations(signals: torch.Tensor, weights: torch.Tensor, biases: torch.Tensor, pe: torch.Tensor) -> torch.Tensor:
    """x W + b + PE for signals (..., d), matrices (..., d, d), biases and PE rows (..., d), broadcast."""
    return edge_product(signals, weights) + biases + pe


def edge_outputs(signals: torch.Tensor, weights: torch.Tensor, biases: torch.Tensor, pe: torch.Tensor) -> torch.Tensor:
    """GELU(x W + b + PE): the output of each edge, the model's one definition of it (shapes as ``edge_preactivations``).

    The forward (``BriLLM.row_outputs``) and training's gold path, sampled candidates and
    shared row all call it; training's own rows take the fused ``OwnEnergies`` instead.
    """
    return gelu(edge_preactivations(signals, weights, biases, pe))


def memory_weights(positions: torch.Tensor, step: int, window: int | None = None) -> torch.Tensor:
    """a = softmax(positions[0, :step, 0]) for position logits (1, L, 1).

    Taken over dimension 1 of the (1, step, 1) slice, as the release does: torch's
    softmax over a middle dimension rounds differently from a 1-D softmax. With a
    ``window`` of N, only the last N outputs are remembered (an ablation, not the model):
    the softmax runs over positions[step - N : step] and earlier outputs weigh 0.
    """
    first = 0 if window is None else max(0, step - window)
    recent = positions[:, first:step, :].softmax(1)[0, :, 0]
    if first == 0:
        return recent
    return torch.cat([torch.zeros(first, dtype=recent.dtype, device=recent.device), recent])


def memory_signal(
    positions: torch.Tensor, outputs: torch.Tensor, window: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """x = sum_j a_j c_j over kept outputs (..., i, d), any leading batch dimensions, and the weights a.

    An elementwise product summed over j, as the release computes it (a matrix product
    would add the terms in another order and round differently). ``window``: see
    ``memory_weights``; the forgotten outputs are left out of the sum.
    """
    steps = outputs.shape[-2]
    weights = memory_weights(positions, steps, window)
    first = 0 if window is None else max(0, steps - window)
    return (outputs[..., first:, :] * weights[first:, None]).sum(-2), weights


def default_device() -> torch.device:
    """CUDA when present, CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class BriLLM(nn.Module):
    """Parameters of a BriLLM with the release's state_dict keys, plus its edge table."""

    def __init__(self, config: ModelConfig, edges: EdgeTable, parameters: dict[str, torch.Tensor] | None = None) -> None:
        """Random release-style parameters, or adopt ``parameters`` (keys as the release's) without copying."""
        super().__init__()
        if edges.vocab_size != config.vocab_size:
            raise CheckpointError(
                f"edge table is for {edges.vocab_size} nodes but the config has {config.vocab_size}"
            )
        if edges.num_rows != config.num_rows:
            raise CheckpointError(
                f"edge table addresses {edges.num_rows} rows but the config has {config.num_rows}"
            )
        self.config = config
        d, V, P, L = config.hidden_size, config.vocab_size, config.num_rows, config.max_positions
        shapes = {"weights": (P, d, d), "biases": (P, 1, d), "node_bias": (V, 1, d), "positions": (1, L, 1)}
        for name, shape in shapes.items():
            value = parameters[name] if parameters is not None else torch.empty(shape)
            if tuple(value.shape) != shape:
                raise CheckpointError(f"{name} has shape {tuple(value.shape)}, expected {shape}")
            setattr(self, name, nn.Parameter(value.float()))
        self.register_buffer("pe", positional_encoding(L, d), persistent=False)
        self.register_buffer("edge_keys", edges.own_keys.clone(), persistent=False)
        self.edges = edges
        if parameters is None:
            self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """The release's initialisation: uniform in [-0.5, 0.5], position logits ones."""
        with torch.no_grad():
            for p in (self.weights, self.biases, self.node_bias):
                p.uniform_(-0.5, 0.5, generator=generator)
            self.positions.fill_(1.0)

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        """Keep the edge table on the same device as the parameters."""
        super()._apply(fn, recurse)
        self.edges = EdgeTable(self.config.vocab_size, self.edge_keys)
        return self

    @property
    def device(self) -> torch.device:
        """Device holding the parameters."""
        return self.weights.device

    @property
    def vocab_size(self) -> int:
        """Number of nodes V."""
        return self.config.vocab_size

    @property
    def hidden_size(self) -> int:
        """Node width d."""
        return self.config.hidden_size

    def start_signal(self, node: int | torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """e_0 = GELU(base + node_bias[node] + PE[0]); base defaults to 1 / d in every channel, as the release's.

        ``node`` may be a tensor of N node ids, giving (N, d) start signals.
        """
        d = self.hidden_size
        if base is not None:
            base = torch.as_tensor(base, dtype=self.weights.dtype, device=self.device).reshape(d)
        return start_signal(self.node_bias[node, 0], self.pe, 1.0 / d if base is None else base)

    def memory_weights(self, step: int, window: int | None = None) -> torch.Tensor:
        """a = softmax(positions[0, :step, 0]): weight of each earlier output at ``step`` (see ``memory_weights``)."""
        return memory_weights(self.positions, step, window)

    def memory_signal(self, outputs: torch.Tensor, window: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Signal x_i = sum_j a_j c_j over the kept outputs c_0..c_{i-1} (i, d), and the weights a."""
        return memory_signal(self.positions, outputs, window)

    def _rows(self, signals: torch.Tensor, rows: slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Signals (N, d) and a slice of rows (W, b), each side expanded to one batch size: a single row
        broadcast against N signals would otherwise be one GEMM, which rounds differently (see ``edge_product``)."""
        w, b = self.weights[rows], self.biases[rows, 0]
        n = max(signals.shape[0], w.shape[0])
        return signals.expand(n, -1), w.expand(n, -1, -1), b.expand(n, -1)

    def row_outputs(self, signals: torch.Tensor, rows: slice, pe_index: int) -> torch.Tensor:
        """GELU(x @ W[r] + b[r] + PE[pe_index]) for signals (N, d) and a slice of N rows, or one
        of them broadcast against the other's N: outputs (N, d). Reads a slice of the parameters (no gather)."""
        return edge_outputs(*self._rows(signals, rows), self.pe[pe_index])

    def row_terms(self, signals: torch.Tensor, rows: slice, pe_index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """x @ W[r] and x @ W[r] + b[r] + PE[pe_index] (shapes as ``row_outputs``): what a step explanation shows."""
        x, w, b = self._rows(signals, rows)
        return edge_product(x, w), edge_preactivations(x, w, b, self.pe[pe_index])

    def candidate_outputs(self, source: int, signal: torch.Tensor, pe_index: int) -> torch.Tensor:
        """o(t) = GELU(x @ W[row(s,t)] + b[row(s,t)] + PE[pe_index]) for every target t (V x d).

        Only the source's own rows and the shared row are computed; shared edges copy it.
        """
        start, stop = int(self.edges.indptr[source]), int(self.edges.indptr[source + 1])
        x = signal.unsqueeze(0)
        out = self.row_outputs(x, slice(0, 1), pe_index).expand(self.vocab_size, -1).clone()
        if stop > start:
            out[self.edges.own_targets(source)] = self.row_outputs(x, slice(start + 1, stop + 1), pe_index)
        return out

    def describe(self) -> dict[str, int | float]:
        """Sizes a user asks for: nodes, width, rows, own vs shared edges, parameters."""
        cfg = self.config
        own = cfg.own_rows
        return {
            "nodes": cfg.vocab_size,
            "hidden_size": cfg.hidden_size,
            "max_positions": cfg.max_positions,
            "parameter_rows": cfg.num_rows,
            "edges_with_own_row": own,
            "edges_on_shared_row": cfg.vocab_size**2 - own,
            "parameters": cfg.parameter_count,
            "dense_parameters": cfg.dense_parameter_count,
            "stored_fraction": cfg.parameter_count / cfg.dense_parameter_count,
        }


def random_model(
    vocab_size: int,
    hidden_size: int = 32,
    own_edges: int | float = 0.1,
    *,
    seed: int = 0,
    max_positions: int = 512,
    name: str = "random",
) -> BriLLM:
    """A model with random weights and a random set of own-row edges (count or fraction)."""
    gen = torch.Generator().manual_seed(seed)
    total = vocab_size * vocab_size
    count = int(own_edges if isinstance(own_edges, int) else math.floor(own_edges * total))
    count = max(0, min(count, total))
    keys = torch.randperm(total, generator=gen)[:count].sort().values
    edges = EdgeTable(vocab_size, keys)
    config = ModelConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        max_positions=max_positions,
        num_rows=edges.num_rows,
        name=name,
    )
    model = BriLLM(config, edges)
    model.reset_parameters(gen)
    with torch.no_grad():
        model.positions.uniform_(0.5, 1.5, generator=gen)
    return model
