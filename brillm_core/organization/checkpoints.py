"""The organisation analysis on checkpoints: stimulus responses, lexical and untrained-model controls, comparison."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..checkpoint import Checkpoint
from ..model import BriLLM
from ..propagate import propagate
from ..trace import DecodeSettings
from .atoms import standardise
from .encoding import BrainData
from .hrf import convolve_hrf
from .controls import N_SURROGATES
from .pipeline import N_PHASE_NULL, OrganizationReport, ProgressFn, run_organization
from .stimulus import (
    OrganizationError,
    Stimulus,
    StimulusResponses,
    TokenTimeline,
    check_fits,
    stimulus_responses,
    tokenize_stimulus,
)

__all__ = ["UNKNOWN_WARN", "CheckpointRun", "untrained_model", "model_text", "simulated_brain", "run_checkpoint",
           "unknown_warning", "comparison_table"]

RESPONSE_SHARE = 0.3  # share of the progress bar given to propagating the stimulus
UNKNOWN_WARN = 0.10  # warn when more than this share of the stimulus tokens map to the unknown node


@dataclass(frozen=True)
class CheckpointRun:
    """One checkpoint's report with the stimulus timeline and responses it came from."""

    report: OrganizationReport
    timeline: TokenTimeline
    responses: StimulusResponses


def untrained_model(model: BriLLM, seed: int = 0) -> BriLLM:
    """The same graph (config and edge table) with the release's initialisation drawn from `seed`."""
    fresh = BriLLM(model.config, model.edges)
    fresh.reset_parameters(torch.Generator().manual_seed(seed))
    return fresh.eval()


def model_text(checkpoint: Checkpoint, n_words: int, seed: int = 0, start: str = " And") -> str:
    """`n_words` words of text the model writes itself (sampled from `start`, seeded): a stimulus wholly in its own
    vocabulary, whatever the model, for demonstrations and checks."""
    words: list[str] = []
    last = checkpoint.tokenizer.encode(start).ids[-1:]
    chunk = min(400, checkpoint.model.config.max_positions - 1)
    while len(words) < n_words:
        trace = propagate(checkpoint.model, last, DecodeSettings(max_new_tokens=chunk, greedy=False, seed=seed))
        path = trace.path.tolist()
        words += checkpoint.tokenizer.decode(path[1:]).split()
        last, seed = path[-1:], seed + 1
    return " ".join(words[:n_words])


def simulated_brain(
    responses: np.ndarray, tr: float, n_signals: int = 4, n_voxels: int = 600, voxels_per_signal: int = 60,
    snr: float = 0.6, noise_rho: float = 0.3, seed: int = 0, units: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Demonstration brain data for a checkpoint without fMRI: (bold, templates, network names).

    The first `n_signals` principal time courses of the responses standardised as the atoms see them (`units` as
    for `atoms.standardise`), HRF-convolved, each drive `voxels_per_signal` voxels
    (signal SD / noise SD = snr) over AR(1) noise; the templates are those voxel sets. The brain is made from the
    model's own responses, so matches are expected: this shows the method's mechanics, not a finding.
    """
    x = standardise(np.asarray(responses, dtype=float), units)[0]
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    n_signals = min(n_signals, int((s > 1e-9 * max(s.max(initial=0.0), 1e-300)).sum()))
    if n_signals < 1 or n_signals * voxels_per_signal > n_voxels:
        raise OrganizationError(
            f"cannot simulate {n_signals} signal(s) x {voxels_per_signal} voxels in {n_voxels} voxels from responses "
            f"of rank {int((s > 0).sum())}")
    rng = np.random.default_rng(seed)
    signals = convolve_hrf(u[:, :n_signals], tr)
    signals = (signals - signals.mean(axis=0)) / signals.std(axis=0)
    templates = np.zeros((n_voxels, n_signals))
    bold = np.empty((x.shape[0], n_voxels))
    noise = rng.standard_normal(n_voxels)
    for t in range(x.shape[0]):
        if t:
            noise = noise_rho * noise + np.sqrt(1 - noise_rho**2) * rng.standard_normal(n_voxels)
        bold[t] = noise
    for k, voxels in enumerate(rng.permutation(n_voxels)[: n_signals * voxels_per_signal].reshape(n_signals, -1)):
        templates[voxels, k] = 1.0
        bold[:, voxels] += snr * signals[:, [k]]
    return bold, templates, [f"Simulated network {k + 1}" for k in range(n_signals)]


def _scaled(progress: ProgressFn | None, lo: float, hi: float) -> ProgressFn | None:
    """A progress callback mapping [0, 1] onto [lo, hi] of the caller's bar."""
    if progress is None:
        return None
    return lambda f, m: progress(lo + (hi - lo) * f, m)


def run_checkpoint(
    checkpoint: Checkpoint,
    stimulus: Stimulus,
    brain: BrainData,
    templates: np.ndarray,
    network_names: Sequence[str] | None = None,
    *,
    tr: float,
    kind: str = "node_gated",
    how: str = "sum",
    k: int = 8,
    alpha: float = 0.2,
    seed: int = 0,
    method: str = "ols_ar",
    encoding: str = "auto",
    fdr_q: float = 0.05,
    n_perm: int = 1000,
    untrained: bool = True,
    lexical: bool = True,
    stability_seeds: Sequence[int] = (1, 2),
    n_phase_null: int = N_PHASE_NULL,
    n_surrogates: int = N_SURROGATES,
    grid: np.ndarray | None = None,
    voxels_independent: bool = False,
    progress: ProgressFn | None = None,
) -> CheckpointRun:
    """Responses of `checkpoint` to the stimulus, then the whole pipeline with the lexical and untrained controls.

    The untrained control has the checkpoint's graph with parameters re-initialised from `seed`; the lexical control
    is the same neurons' context-free responses in the checkpoint's own tokenisation (each token's mean response,
    see `StimulusResponses.lexical`). Both are paired with the model's neurons. A stimulus mostly unknown to the
    model is warned about. `voxels_independent`: brain data whose voxels are independent by construction (the
    demonstration data of `simulated_brain`), for which shuffling voxels is the right matching null. Pipeline
    errors (K too large, templates that do not fit the voxels, ...) become OrganizationError.
    """
    n_tr = brain.data.shape[0]
    timeline = tokenize_stimulus(checkpoint.tokenizer, stimulus)
    check_fits(stimulus, tr, n_tr, timeline)
    share = RESPONSE_SHARE / (2 if untrained else 1)
    responses = stimulus_responses(checkpoint.model, timeline, tr, n_tr, kind, how, _scaled(progress, 0.0, share))
    controls: dict[str, np.ndarray] = {}
    if lexical:
        controls["lexical"] = responses.lexical
    if untrained:
        fresh = untrained_model(checkpoint.model, seed)
        controls["untrained"] = stimulus_responses(fresh, timeline, tr, n_tr, kind, how,
                                                   _scaled(progress, share, 2 * share)).matrix
    try:
        report = run_organization(
            responses.matrix, brain, templates, network_names, tr=tr, k=k, alpha=alpha, seed=seed, method=method,
            encoding=encoding, fdr_q=fdr_q, n_perm=n_perm, stability_seeds=stability_seeds,
            an_labels=responses.labels(checkpoint.token), units=responses.units, controls=controls,
            paired=tuple(controls),
            n_phase_null=n_phase_null, n_surrogates=n_surrogates, grid=grid, voxels_independent=voxels_independent,
            progress=_scaled(progress, RESPONSE_SHARE, 1.0),
        )
    except OrganizationError:
        raise
    except ValueError as exc:
        raise OrganizationError(str(exc)) from exc
    report.settings.update(
        responses=kind, pooling=how, n_tokens=int(timeline.ids.size), n_steps=responses.n_steps,
        n_windows=responses.n_windows, n_unknown_pieces=len(timeline.unknown),
        n_unknown_tokens=timeline.n_unknown_tokens, unknown_share=timeline.unknown_share, model_id=checkpoint.model_id,
        timing="word i's m tokens split its interval evenly; step j is at the time of token j+1; "
        "windows of the position table overlap by one token and restart the memory",
    )
    if timeline.unknown_share > UNKNOWN_WARN:
        report.warnings.insert(0, unknown_warning(timeline))
    return CheckpointRun(report, timeline, responses)


def unknown_warning(timeline: TokenTimeline) -> str:
    """What a stimulus mostly unknown to the model does to the analysis, with the share."""
    return (f"{timeline.n_unknown_tokens} of {timeline.ids.size} stimulus tokens ({100 * timeline.unknown_share:.0f} %) "
            "map to the model's unknown node: they all respond as that one node, whatever the word, so the atoms say "
            "little about this stimulus; give a text in the model's vocabulary")


def comparison_table(reports: Mapping[str, OrganizationReport]) -> pd.DataFrame:
    """One row per checkpoint: the summary measures, fit, held-out prediction and the controls' verdicts."""
    rows = []
    for name, r in reports.items():
        row = {
            "checkpoint": name,
            "n_ans": r.settings["n_ans"],
            "reconstruction_r2": r.atom_model.r2,
            **{m: v["value"] for m, v in r.measures.items()},
            "n_significant": int(r.encoding.significant.sum()),
            "held_out_r_mean": float(np.nanmean(r.held_out_r)),
            "stability_min_abs_r": None if r.stability is None else min(r.stability.min_abs_r.values(), default=None),
            "atoms_stable": None if r.stability is None else r.stability.stable,
            "n_matched_atoms": int((r.match.best >= 0).sum()),
            "above_phase_null": r.phase_null.get("above_null"),
        }
        for control, c in r.controls.items():
            row[f"{control}_held_out_r_mean"] = c["held_out_r_mean"]
            row[f"{control}_verdict"] = c["verdict_code"]
        rows.append(row)
    return pd.DataFrame(rows)
