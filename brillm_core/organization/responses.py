"""Artificial-neuron responses from BriLLM traces (node-gated or energy landscape), pooled into fMRI volumes (TRs)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

__all__ = [
    "POOLING",
    "GatedResponses",
    "node_gated_responses",
    "landscape_responses",
    "pooling_matrix",
    "pool_to_trs",
    "trace_responses",
    "context_free",
]

POOLING = ("sum", "mean", "last")


def _array(x: Any) -> np.ndarray:
    """A numpy view of a numpy array or a (possibly autograd-tracked, GPU) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


@dataclass(frozen=True)
class GatedResponses:
    """Node-gated responses per step: column j is unit `units[j]` of node `nodes[j]` (sparse, steps x columns)."""

    matrix: sparse.csr_matrix
    nodes: np.ndarray
    units: np.ndarray


def node_gated_responses(
    targets: Any, outputs: Any, n_nodes: int | None = None, only_active: bool = True
) -> GatedResponses:
    """AN (v, k) responds outputs[j, k] at the steps j whose target node is v, and 0 elsewhere.

    With only_active, columns are kept only for nodes that occur as targets (in increasing node id), which keeps
    the matrix small; otherwise there are n_nodes * d columns, column v*d + k for (v, k).
    """
    tgt = _array(targets).astype(np.int64).ravel()
    out = _array(outputs).astype(float)
    if out.ndim != 2 or out.shape[0] != tgt.size:
        raise ValueError(f"outputs must be (steps x d) with one row per target; got {out.shape} for {tgt.size} targets")
    if not np.isfinite(out).all():
        raise ValueError("outputs contain NaN or inf")
    if tgt.size and tgt.min() < 0:
        raise ValueError("targets contain negative node ids")
    d = out.shape[1]
    if only_active:
        nodes, col_node = np.unique(tgt, return_inverse=True)
    else:
        if n_nodes is None:
            raise ValueError("n_nodes is required when only_active is False")
        if tgt.size and tgt.max() >= n_nodes:
            raise ValueError(f"target node {tgt.max()} is out of range for {n_nodes} nodes")
        nodes, col_node = np.arange(n_nodes), tgt
    rows = np.repeat(np.arange(tgt.size), d)
    cols = (col_node[:, None] * d + np.arange(d)[None, :]).ravel()
    matrix = sparse.csr_matrix((out.ravel(), (rows, cols)), shape=(tgt.size, nodes.size * d))
    return GatedResponses(matrix, np.repeat(nodes, d), np.tile(np.arange(d), nodes.size))


def landscape_responses(energies: Any) -> np.ndarray:
    """Every node's energy at every step (steps x V); a node that was not a candidate (NaN) responds 0."""
    e = _array(energies).astype(float)
    if e.ndim != 2:
        raise ValueError(f"energies must be (steps x V), got shape {e.shape}")
    return np.nan_to_num(e, nan=0.0, posinf=0.0, neginf=0.0)


def pooling_matrix(times: Any, tr: float, n_tr: int, how: str = "sum", strict: bool = True) -> sparse.csr_matrix:
    """Sparse (n_tr x steps) matrix mapping step values to volumes; volume i covers [i*tr, (i+1)*tr) seconds.

    sum adds the steps in a volume, mean averages them, last keeps the latest (the later step on ties); a volume
    without steps gets 0. Steps after the last volume raise an error when strict, and are dropped otherwise.
    """
    if how not in POOLING:
        raise ValueError(f"pooling must be one of {POOLING}, got {how!r}")
    if not tr > 0 or n_tr < 1:
        raise ValueError(f"need TR > 0 and at least one volume, got TR {tr} and {n_tr} volumes")
    t = _array(times).astype(float).ravel()
    if not np.isfinite(t).all() or (t < 0).any():
        raise ValueError("step times must be finite and >= 0 seconds")
    vol = np.floor(t / tr).astype(np.int64)
    late = vol >= n_tr
    if late.any() and strict:
        raise ValueError(
            f"{late.sum()} steps fall after the last volume ({n_tr} x {tr} s = {n_tr * tr} s); "
            "check TR and volume count, or pass strict=False to drop them"
        )
    steps = np.flatnonzero(~late)
    vol = vol[steps]
    if how == "last":
        order = np.lexsort((steps, t[steps], vol))
        last = np.r_[vol[order][1:] != vol[order][:-1], True]
        steps, vol = steps[order][last], vol[order][last]
    weight = np.ones(steps.size)
    if how == "mean":
        weight = 1.0 / np.bincount(vol, minlength=n_tr)[vol]
    return sparse.csr_matrix((weight, (vol, steps)), shape=(n_tr, t.size))


def pool_to_trs(
    values: Any, times: Any, tr: float, n_tr: int, how: str = "sum", strict: bool = True
) -> np.ndarray:
    """Pool a (steps x columns) dense or sparse response matrix into a dense (n_tr x columns) matrix."""
    v = values if sparse.issparse(values) else _array(values).astype(float)
    if v.ndim != 2:
        raise ValueError(f"values must be (steps x columns), got {v.ndim} dimensions")
    p = pooling_matrix(times, tr, n_tr, how, strict)
    if p.shape[1] != v.shape[0]:
        raise ValueError(f"{p.shape[1]} step times for {v.shape[0]} steps")
    pooled = p @ v
    return pooled.toarray() if sparse.issparse(pooled) else np.asarray(pooled)


def trace_responses(
    trace: Any,
    times: Any,
    tr: float,
    n_tr: int,
    kind: str = "node_gated",
    how: str = "sum",
    only_active: bool = True,
    strict: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TR-pooled responses of a trace (with .targets, .outputs, .energies); returns (matrix, node ids, unit ids).

    times[j] is the time in seconds of step j, usually the onset of the word holding the step's target token.
    Landscape responses have one column per node and unit id -1.
    """
    if kind == "node_gated":
        g = node_gated_responses(trace.targets, trace.outputs, n_nodes=_array(trace.energies).shape[1], only_active=only_active)
        return pool_to_trs(g.matrix, times, tr, n_tr, how, strict), g.nodes, g.units
    if kind == "landscape":
        e = landscape_responses(trace.energies)
        return pool_to_trs(e, times, tr, n_tr, how, strict), np.arange(e.shape[1]), np.full(e.shape[1], -1)
    raise ValueError(f"kind must be 'node_gated' or 'landscape', got {kind!r}")


def context_free(step_responses: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Each step's response row replaced by the mean row of all steps with the same key (its token).

    This is the model's own route to the brain with the context removed: which tokens occur, weighted by how each
    token's neurons respond on average. A brain that follows it is lexical, whatever the model's context does.
    """
    x = np.asarray(step_responses, dtype=float)
    k = np.asarray(keys)
    if k.shape != (x.shape[0],):
        raise ValueError(f"{k.shape[0] if k.ndim else 0} keys for {x.shape[0]} steps")
    uniq, inverse = np.unique(k, return_inverse=True)
    sums = np.zeros((uniq.size, x.shape[1]))
    np.add.at(sums, inverse, x)
    return (sums / np.bincount(inverse)[:, None])[inverse]
