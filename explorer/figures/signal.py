"""Signal path figures: candidate energies of a step, the memory ribbon, the signal heatmap."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from brillm_core import Trace

from .common import CANDIDATE, CHOSEN, FORCED, TokenText, base_layout, placeholder, token_label


def energy_bars(trace: Trace, i: int, token: TokenText, k: int = 10) -> go.Figure:
    """Top-k candidate energies at step i; the taken node marked (added if outside the top k).

    Each bar's customdata is (node, probability, rank) so a click can re-route through it.
    """
    step = trace.step(i)
    top = step.top(k)
    nodes = [n for n, _, _ in top]
    if step.target not in nodes:
        nodes.append(step.target)
    energies = [float(step.energies[n]) for n in nodes]
    probs = [float(step.probabilities[n]) for n in nodes]
    order = np.argsort(-np.nan_to_num(np.array(energies, dtype=float), nan=-np.inf), kind="stable")
    ranks = {n: r + 1 for r, n in enumerate(nodes[j] for j in order)}
    taken = FORCED if step.forced else CHOSEN
    fig = go.Figure(
        go.Bar(
            x=[token_label(n, token) for n in nodes],
            y=energies,
            marker_color=[taken if n == step.target else CANDIDATE for n in nodes],
            customdata=[[n, p, step.chosen_rank if n == step.target else ranks[n]] for n, p in zip(nodes, probs)],
            hovertemplate="node %{customdata[0]}: %{x}<br>energy %{y:.6g}<br>probability %{customdata[1]:.6g}"
            "<extra></extra>",
        )
    )
    what = "forced by the prompt" if step.forced else "chosen"
    fig.add_annotation(x=token_label(step.target, token), y=step.chosen_energy, text=what, showarrow=True,
                       arrowhead=2, ay=-30)
    candidates = int((~step.energies.isnan()).sum())
    title = f"Step {i}: {token_label(step.source, token)} → top {len(top)} of {candidates} candidates"
    fig.update_yaxes(title="energy ‖o‖₂")
    fig.update_xaxes(tickangle=-30)
    return base_layout(fig, title)


def memory_ribbon(trace: Trace, i: int, token: TokenText) -> go.Figure:
    """The weights a_j with which earlier outputs c_j make up step i's signal, as one ribbon."""
    weights = trace.memory[i].numpy().astype(float)
    if weights.size == 0:
        return placeholder("Step 0 reads the start signal e₀ = GELU(r + node_bias + PE[0]); there is no memory yet.", 160)
    path = trace.path.tolist()
    labels = [f"c{j}: {token_label(path[j], token)} → {token_label(path[j + 1], token)}" for j in range(weights.size)]
    fig = go.Figure(
        go.Bar(
            x=weights,
            base=np.concatenate([[0.0], np.cumsum(weights)[:-1]]),
            y=["memory"] * weights.size,
            orientation="h",
            marker={"color": np.arange(weights.size), "colorscale": "Viridis", "line": {"color": "white", "width": 1}},
            text=[f"c{j}" for j in range(weights.size)],
            textposition="inside",
            customdata=labels,
            hovertemplate="%{customdata}<br>weight %{x:.8g}<extra></extra>",
        )
    )
    fig.update_xaxes(range=[0, 1], title="share of the signal x_i = Σ a_j c_j (weights from positions only)")
    fig.update_yaxes(visible=False)
    return base_layout(fig, f"Memory at step {i}: {weights.size} earlier outputs", 170)


def signal_heatmap(trace: Trace, i: int) -> go.Figure:
    """The d units of the input signal at every step, the current step outlined."""
    z = trace.signals_in.numpy().T
    n = z.shape[1]
    fig = go.Figure(
        go.Heatmap(z=z, x=list(range(n)), y=list(range(z.shape[0])), colorscale="RdBu", zmid=0,
                   hovertemplate="step %{x}, unit %{y}<br>signal %{z:.6g}<extra></extra>",
                   colorbar={"title": "x"})
    )
    fig.add_shape(type="rect", x0=i - 0.5, x1=i + 0.5, y0=-0.5, y1=z.shape[0] - 0.5,
                  line={"color": CHOSEN, "width": 2})
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="unit")
    return base_layout(fig, "Input signal x_i of every step (d units)", 300)
