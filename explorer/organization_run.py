"""The organisation page's computation on the simulator or a checkpoint (its settings, ``state.OrgSettings``,
are validated with the rest of the view state).

Three sources: the simulator; a checkpoint on a typed stimulus with demonstration brain data simulated from
the model's own responses (``simulated_brain``); a checkpoint on uploaded recorded data (a stimulus, brain
data and templates, named in links by their content hashes; see ``uploads``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from brillm_core import Checkpoint
from brillm_core.organization import (
    OrganizationError, OrganizationReport, check_fits, load_brain, load_templates, prepare_brain, run_checkpoint,
    run_simulation, simulated_brain, stimulus_from_text, stimulus_responses, tokenize_stimulus, words_per_tr,
)

from .state import OrgSettings
from .uploads import KINDS, Upload, stimulus_of

TAIL_SECONDS = 12.0  # volumes recorded after the last word, for the haemodynamic response to return
Progress = Callable[[float, str], None]


# Read when the "model" source runs with no stimulus typed: plain lowercase prose written for this project.
# A model whose vocabulary lacks its words reads them as its unknown node; the page then warns with the share.
SAMPLE_STIMULUS = (
    "the morning was cold and the river ran fast under the old stone bridge. a woman with a red coat "
    "walked across it, stopped, and looked down at the water. she remembered the summer her brother "
    "had fallen in, how loud everyone had shouted, and how he had laughed when they pulled him out. "
    "now the bridge felt smaller, the water darker, the town quieter than it used to be. she counted "
    "the windows of the bakery, still lit at this hour, and thought about bread, about her mother, "
    "about the letter in her pocket that she had not yet opened. a dog barked twice. a bus went by. "
    "she took out the letter, read the first line, and began to smile, because it said that he was "
    "coming home at last, on the next train, before the snow. she ran back over the bridge, past the "
    "bakery and the church, up the hill to the station, where the clock said ten and the platform "
    "was empty and bright. then far away she heard the train, and she waited, and the light grew."
)


@dataclass(frozen=True)
class OrgResult:
    """A finished run: the report, the words per volume, the templates, and what the numbers are."""

    report: OrganizationReport
    words: list[str]
    tr: float
    templates: np.ndarray
    recovery: dict | None
    note: str


def compute(settings: OrgSettings, checkpoint: Checkpoint | None, progress: Progress,
            files: dict[str, Upload] | None = None) -> OrgResult:
    """Run the pipeline as the settings say (``files``: the uploads, by kind, for source "upload");
    user-fixable problems raise OrganizationError."""
    s = settings
    if s.source == "sim":
        try:
            result = run_simulation(
                s.k, alpha=s.alpha, seed=s.seed, method=s.method, encoding=s.encoding, n_perm=s.n_perm,
                stability_seeds=(s.seed + 1, s.seed + 2),
                lexical_control=True, progress=progress, n_tr=s.n_tr, tr=s.tr, k_true=s.k_true,
                n_nodes=s.nodes, units_per_node=s.units, n_voxels=s.voxels,
                voxels_per_atom=min(250, s.voxels // (2 * s.k_true)),
            )
        except ValueError as exc:
            raise OrganizationError(str(exc)) from exc
        sim = result.data
        return OrgResult(result.report, words_per_tr(sim.words, sim.onsets, sim.tr, sim.atoms.shape[0]), sim.tr,
                         sim.templates, result.figures,
                         f"Simulator with known truth: {sim.atoms.shape[1]} true atoms, seed {s.seed}.")
    if checkpoint is None:
        raise OrganizationError("no checkpoint is configured; start the explorer with a model folder")
    if s.source == "upload":
        return _recorded(s, checkpoint, progress, files or {})
    typed = s.text.strip()
    stimulus = stimulus_from_text(typed or SAMPLE_STIMULUS, s.word_rate)
    n_tr = int(math.ceil((stimulus.duration + TAIL_SECONDS) / s.tr))
    progress(0.0, "responses for the simulated brain data")
    first = stimulus_responses(checkpoint.model, tokenize_stimulus(checkpoint.tokenizer, stimulus), s.tr, n_tr,
                               s.kind, s.pool)
    bold, templates, names = simulated_brain(first.matrix, s.tr, n_signals=min(4, s.k), seed=s.seed, units=first.units)
    run = run_checkpoint(checkpoint, stimulus, prepare_brain(bold, n_tr, s.tr), templates, names, tr=s.tr,
                         kind=s.kind, how=s.pool, k=s.k, alpha=s.alpha, seed=s.seed, method=s.method, encoding=s.encoding,
                         n_perm=s.n_perm, stability_seeds=(s.seed + 1, s.seed + 2), voxels_independent=True,
                         progress=progress)
    note = ("" if typed else "No stimulus text was typed, so the built-in sample story was read. ") + (
            f"{len(stimulus.words)} words at {s.word_rate:g} words/s, {n_tr} volumes of {s.tr:g} s "
            f"({TAIL_SECONDS:g} s after the last word). The brain data are SIMULATED from this model's own responses "
            "(demonstration of the method, not a finding); use `brillm organization` for recorded fMRI.")
    return OrgResult(run.report, words_per_tr(stimulus.words, stimulus.onsets, s.tr, n_tr), s.tr, templates, None, note)


def _recorded(s: OrgSettings, checkpoint: Checkpoint, progress: Progress, files: dict[str, Upload]) -> OrgResult:
    """The checkpoint on uploaded recorded data, as ``brillm organization`` runs it on the same files."""
    missing = [kind for kind in KINDS if kind not in files]
    if missing:
        raise OrganizationError(f"upload {', '.join(missing)} first")
    stimulus = stimulus_of(files["stimulus"], s.word_rate)
    try:
        brain = load_brain(files["brain"].data, name=files["brain"].name)
    except ValueError as exc:
        raise OrganizationError(f"{files['brain'].name}: {exc}") from exc
    n_tr = brain.data.shape[0]
    check_fits(stimulus, s.tr, n_tr)
    templates, names = load_templates(files["templates"].data, brain.n_voxels, name=files["templates"].name)
    run = run_checkpoint(checkpoint, stimulus, brain, templates, names, tr=s.tr, kind=s.kind, how=s.pool, k=s.k,
                         alpha=s.alpha, seed=s.seed, method=s.method, encoding=s.encoding, n_perm=s.n_perm,
                         stability_seeds=(s.seed + 1, s.seed + 2), progress=progress)
    note = (f"Recorded data: {files['stimulus'].name} ({len(stimulus.words)} words), {files['brain'].name} "
            f"({n_tr} volumes of {s.tr:g} s x {brain.n_voxels} voxels or regions), templates "
            f"{files['templates'].name} ({len(names)} networks).")
    return OrgResult(run.report, words_per_tr(stimulus.words, stimulus.onsets, s.tr, n_tr), s.tr, templates, None, note)
