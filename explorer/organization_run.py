"""The organisation page's settings (validated, <-> URL hash) and its computation on the simulator or a checkpoint.

Hash keys carry an ``o_`` prefix so that they never collide with the path pages' keys; ``m`` (the checkpoint) is
shared with them. Three sources: the simulator; a checkpoint on a typed stimulus with demonstration brain data
simulated from the model's own responses (``simulated_brain``); a checkpoint on uploaded recorded data (a
stimulus, brain data and templates, named in links by their content hashes; see ``uploads``).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

import numpy as np

from brillm_core import Checkpoint
from brillm_core.organization import (
    OrganizationError, OrganizationReport, check_fits, load_brain, load_templates, prepare_brain, run_checkpoint,
    run_simulation, simulated_brain, stimulus_from_text, stimulus_responses, tokenize_stimulus, words_per_tr,
)

from .uploads import KINDS, Upload, stimulus_of

MAX_TEXT = 5000
UPLOAD_KEY = re.compile(r"[0-9a-f]{24}|")
TAIL_SECONDS = 12.0  # volumes recorded after the last word, for the haemodynamic response to return
CHOICES = {"source": ("sim", "model", "upload"), "kind": ("node_gated", "landscape"), "pool": ("sum", "mean", "last"),
           "method": ("ols_ar", "ols", "ridge"), "encoding": ("auto", "joint", "per-atom")}
LIMITS: dict[str, tuple[float, float]] = {
    "word_rate": (0.5, 10.0), "tr": (0.5, 5.0), "k": (1, 32), "alpha": (0.0, 5.0), "seed": (0, 2**31 - 1),
    "n_perm": (10, 2000), "n_tr": (60, 600), "nodes": (4, 200), "units": (2, 32), "voxels": (200, 8000),
    "k_true": (1, 16), "atom": (0, 31),
}
VIEW_ONLY = ("atom",)
SIMULATOR_ONLY = ("n_tr", "nodes", "units", "voxels", "k_true")
DROPPED = {"sim": ("model", "text", "word_rate", "kind", "pool", *KINDS), "model": (*SIMULATOR_ONLY, *KINDS),
           "upload": (*SIMULATOR_ONLY, "text")}
Progress = Callable[[float, str], None]


# Read when the "model" source runs with no stimulus typed: plain lowercase prose written for this
# project (a character model with only letters and basic punctuation can read all of it).
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
class OrgSettings:
    """Everything the page runs and shows."""

    source: str = "sim"
    model: str = ""
    text: str = ""
    word_rate: float = 2.5
    tr: float = 1.5
    kind: str = "node_gated"
    pool: str = "sum"
    k: int = 6
    alpha: float = 0.2
    seed: int = 0
    method: str = "ols_ar"
    encoding: str = "auto"
    n_perm: int = 200
    n_tr: int = 200
    nodes: int = 40
    units: int = 16
    voxels: int = 1200
    k_true: int = 6
    atom: int = 0
    stimulus: str = ""  # upload keys (source "upload")
    brain: str = ""
    templates: str = ""

    def request(self) -> dict[str, Any]:
        """What the computation depends on (each source ignores the others' fields)."""
        return {k: v for k, v in asdict(self).items() if k not in VIEW_ONLY and k not in DROPPED[self.source]}


DEFAULT = OrgSettings()
SHORT = {f.name: ("m" if f.name == "model" else f"o_{f.name}") for f in fields(OrgSettings)}


def parse(raw: dict[str, Any]) -> tuple[OrgSettings, list[str]]:
    """Validated settings from long names (unknown keys ignored); values out of range are clamped with a warning."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for f in fields(OrgSettings):
        if f.name not in raw or raw[f.name] is None:
            continue
        value, default = raw[f.name], getattr(DEFAULT, f.name)
        if f.name in CHOICES:
            if value not in CHOICES[f.name]:
                warnings.append(f"{f.name}={value!r} is not one of {', '.join(CHOICES[f.name])}; using {default}")
                value = default
        elif f.name in KINDS:  # upload keys
            value = str(value)
            if not UPLOAD_KEY.fullmatch(value):
                warnings.append(f"{f.name}={value[:40]!r} is not an upload key; ignored")
                value = default
        elif f.name in ("model", "text"):
            value = str(value)
            if len(value) > MAX_TEXT:
                warnings.append(f"{f.name} is longer than {MAX_TEXT} characters; cut")
                value = value[:MAX_TEXT]
        else:
            lo, hi = LIMITS[f.name]
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if not math.isfinite(number):
                warnings.append(f"{f.name}={value!r} is not a number; using {default}")
                number = default
            if not lo <= number <= hi:
                warnings.append(f"{f.name}={number:g} is outside {lo:g}..{hi:g}; clamped")
                number = min(max(number, lo), hi)
            value = int(number) if isinstance(default, int) else number
        values[f.name] = value
    return replace(DEFAULT, **values), warnings


def to_hash(settings: OrgSettings) -> str:
    """``#key=value&...`` with the fields that differ from the defaults."""
    items = [(SHORT[k], f"{v:g}" if isinstance(v, float) else v)
             for k, v in asdict(settings).items() if v != getattr(DEFAULT, k)]
    return "#" + urlencode(items) if items else ""


def with_other_pages(own: str, current: str | None) -> str:
    """The page's hash ``own`` plus the keys other pages keep in the link (prompt, step, ...), taken from
    ``current``, so that leaving this page for another view keeps that view's state."""
    mine = set(SHORT.values())
    others = [(k, v) for k, v in parse_qsl((current or "").lstrip("#"), keep_blank_values=True) if k not in mine]
    if not others:
        return own or "#"
    return (own or "#") + ("&" if own else "") + urlencode(others)


def from_hash(text: str | None) -> tuple[OrgSettings, list[str]]:
    """Settings from a URL hash; other pages' keys (except ``m``) are ignored."""
    long = {v: k for k, v in SHORT.items()}
    pairs = parse_qsl((text or "").lstrip("#"), keep_blank_values=True)
    return parse({long[k]: v for k, v in pairs if k in long})


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
                n_phase_null=5, lexical_control=True, progress=progress, n_tr=s.n_tr, tr=s.tr, k_true=s.k_true,
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
    bold, templates, names = simulated_brain(first.matrix, s.tr, n_signals=min(4, s.k), seed=s.seed)
    run = run_checkpoint(checkpoint, stimulus, prepare_brain(bold, n_tr, s.tr), templates, names, tr=s.tr,
                         kind=s.kind, how=s.pool, k=s.k, alpha=s.alpha, seed=s.seed, method=s.method, encoding=s.encoding,
                         n_perm=s.n_perm, stability_seeds=(s.seed + 1, s.seed + 2), n_phase_null=5, progress=progress)
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
                         stability_seeds=(s.seed + 1, s.seed + 2), n_phase_null=5, progress=progress)
    note = (f"Recorded data: {files['stimulus'].name} ({len(stimulus.words)} words), {files['brain'].name} "
            f"({n_tr} volumes of {s.tr:g} s x {brain.n_voxels} voxels or regions), templates "
            f"{files['templates'].name} ({len(names)} networks).")
    return OrgResult(run.report, words_per_tr(stimulus.words, stimulus.onsets, s.tr, n_tr), s.tr, templates, None, note)
