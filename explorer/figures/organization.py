"""Functional-organisation figures and tables: atoms under the words, sub-groups, maps by network, similarity."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .common import CANDIDATE, CHOSEN, base_layout, placeholder, show_token

ATOM_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf")


def atoms_under_words(atoms: np.ndarray, words: Sequence[str], tr: float, selected: int = -1) -> go.Figure:
    """Each atom's time course stacked one above the other; hovering a volume shows the words starting in it."""
    n, k = atoms.shape
    if n == 0 or k == 0:
        return placeholder("No atoms.")
    times = np.arange(n) * tr
    spread = 2.5 * float(np.abs(atoms).max() or 1.0)
    fig = go.Figure()
    for i in range(k):
        width = 3 if i == selected else 1.3
        fig.add_trace(go.Scatter(
            x=times, y=atoms[:, i] - i * spread, mode="lines", name=f"atom {i}",
            line={"width": width, "color": ATOM_COLOURS[i % len(ATOM_COLOURS)]},
            customdata=np.column_stack([np.arange(n), atoms[:, i], np.asarray(words, dtype=object)]),
            hovertemplate=f"atom {i}<br>volume %{{customdata[0]}} (%{{x:.1f}} s): %{{customdata[1]:.4f}}"
                          "<br>words: %{customdata[2]}<extra></extra>",
        ))
    fig.update_yaxes(tickvals=[-i * spread for i in range(k)], ticktext=[f"atom {i}" for i in range(k)],
                     zeroline=False)
    fig.update_xaxes(title="time (s); hover a line for the words spoken in that volume")
    fig.update_layout(showlegend=False, hovermode="closest")
    return base_layout(fig, f"{k} atoms (time courses of the sub-groups) under the stimulus", max(300, 60 * k + 80))


def subgroup_bars(labels: Sequence[str], loadings: np.ndarray, atom: int, top: int = 25) -> go.Figure:
    """The `top` ANs of one atom's sub-group by |loading| (positive blue, negative red)."""
    if len(labels) == 0:
        return placeholder(f"Atom {atom} has no AN with a non-zero loading.")
    lab = [show_token(t) for t in list(labels)[:top][::-1]]
    load = np.asarray(loadings, dtype=float)[:top][::-1]
    fig = go.Figure(go.Bar(
        x=load, y=lab, orientation="h", marker_color=[CANDIDATE if v >= 0 else CHOSEN for v in load],
        hovertemplate="%{y}<br>loading %{x:.4f}<extra></extra>",
    ))
    fig.update_xaxes(title="loading on the atom")
    fig.update_yaxes(type="category", automargin=True)
    return base_layout(fig, f"Atom {atom}: strongest {len(lab)} of {len(labels)} ANs (token#node:unit)",
                       max(280, 18 * len(lab) + 90))


def map_by_network(t_map: np.ndarray, significant: np.ndarray, templates: np.ndarray, names: Sequence[str],
                   atom: int) -> go.Figure:
    """One atom's t values per voxel, grouped by the template network each voxel belongs to (first match)."""
    member = np.where((templates > 0).any(axis=1), np.argmax(templates > 0, axis=1), -1)
    groups = [*names, "no network"]
    fig = go.Figure()
    for g, name in enumerate(groups):
        idx = np.flatnonzero((member == g) if g < len(names) else (member == -1))
        idx = idx[np.isfinite(t_map[idx])]
        if idx.size == 0:
            continue
        sig = significant[idx]
        fig.add_trace(go.Box(
            y=t_map[idx], name=f"{name} ({int(sig.sum())}/{idx.size} sig.)", boxpoints="outliers",
            marker_color=ATOM_COLOURS[g % len(ATOM_COLOURS)] if g < len(names) else "#999999",
            hovertemplate=f"{name}<br>t %{{y:.3f}}<extra></extra>",
        ))
    if not fig.data:
        return placeholder("No usable voxel.")
    fig.update_yaxes(title=f"t of atom {atom}")
    fig.update_layout(showlegend=False)
    return base_layout(fig, f"Atom {atom}'s map by network (FDR-significant voxels / voxels)", 340)


def similarity_heatmap(r: np.ndarray, dice: np.ndarray, matches: np.ndarray, names: Sequence[str]) -> go.Figure:
    """Atom x network Pearson r (colour) with Dice in the text; matched cells marked with a star."""
    k = r.shape[0]
    text = [[f"{r[i, j]:.2f}{' ★' if matches[i, j] else ''}<br>D {dice[i, j]:.2f}" for j in range(r.shape[1])]
            for i in range(k)]
    fig = go.Figure(go.Heatmap(
        z=r, x=list(names), y=[f"atom {i}" for i in range(k)], text=text, texttemplate="%{text}",
        colorscale="RdBu", zmid=0, colorbar={"title": "r"},
        customdata=dice, hovertemplate="%{y} vs %{x}<br>r %{z:.3f}<br>Dice %{customdata:.3f}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    return base_layout(fig, "Atom x network similarity: Pearson r of t map vs template, Dice of significant voxels "
                            "(★ = match)", max(300, 40 * k + 120))


def measures_rows(measures: dict, controls: dict) -> list[dict]:
    """The summary measures with their formulas, then each control's measures and how far the model's responses
    and atoms differ from it (the verdicts are the page's headline)."""
    rows = [{"measure": name, "value": round(float(v["value"]), 4), "formula": v["formula"]}
            for name, v in measures.items()]
    for name, c in controls.items():
        for m in ("diversity", "consistency", "effective_rank", "held_out_r_mean"):
            if m in c:
                rows.append({"measure": f"{name} control: {m}", "value": round(float(c[m]), 4), "formula": ""})
        rows.append({"measure": f"{name} control: non-{name} share", "value": round(float(c["non_control_share"]), 4),
                     "formula": f"share of the model's (unit-scaled) responses' sum of squares the {name} control "
                                "does not carry"})
        rows.append({"measure": f"{name} control: smallest canonical correlation",
                     "value": round(float(min(c["canonical_correlations"])), 4),
                     "formula": f"of the model's and the {name} control's atoms: near 1, they span the same space"})
    return rows


def region_table(betas: np.ndarray, t_map: np.ndarray, q: np.ndarray, significant: np.ndarray,
                 templates: np.ndarray, names: Sequence[str], voxel_names: Sequence[str] | None,
                 top: int = 50) -> pd.DataFrame:
    """One atom's strongest voxels (or regions) by |t|: name, networks containing it, beta, t, q, significant."""
    order = np.argsort(-np.nan_to_num(np.abs(t_map), nan=-1.0), kind="stable")[:top]
    order = order[np.isfinite(t_map[order])]
    return pd.DataFrame({
        "voxel": order,
        "name": [voxel_names[v] if voxel_names else f"voxel {v}" for v in order],
        "networks": [", ".join(n for n, inside in zip(names, templates[v] > 0) if inside) or "-" for v in order],
        "beta": np.round(betas[order], 4),
        "t": np.round(t_map[order], 3),
        "q": q[order],
        "significant": significant[order],
    })
