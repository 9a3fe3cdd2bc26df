"""Functional organisation of BriLLM's artificial neurons (Sun et al., arXiv 2410.19542).

Atoms of AN responses by sparse dictionary learning, voxel-wise encoding with an HRF and AR(p)-prewhitened OLS or
ridge, matching with network templates, controls that can win, a simulator with known truth (and a hard preset),
stimulus handling and checkpoint runs.
Returns data, never figures. Names are imported lazily (on first use), so `brillm` starts without scipy.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "atoms": ("AtomModel", "Stability", "Subgroup", "atom_stability", "fit_atoms", "fit_best_atoms", "match_atoms",
              "standardise"),
    "checkpoints": ("CheckpointRun", "comparison_table", "model_text", "run_checkpoint", "simulated_brain",
                    "unknown_warning", "untrained_model"),
    "controls": ("canonical_correlations", "compare_with_control", "lexical_responses", "non_control_share"),
    "drift": ("drift_basis", "high_pass"),
    "encoding": ("BrainData", "EncodingResult", "cross_validated_predictions", "fdr_bh", "fit_encoding",
                 "held_out_prediction", "load_brain", "prepare_brain"),
    "hrf": ("convolve_hrf", "spm_hrf"),
    "matching": ("FORMULAS", "NetworkMatch", "network_similarity", "summary_measures", "templates_from_labels"),
    "pipeline": ("ENCODINGS", "OrganizationReport", "SimulationResult", "recovery_figures", "run_organization", "run_simulation"),
    "responses": ("context_free", "landscape_responses", "node_gated_responses", "pool_to_trs", "trace_responses"),
    "simulate": ("HARD", "SimulatedData", "lexical_brain", "simulate"),
    "surrogates": ("block_bootstrap_means", "phase_randomise"),
    "tables": ("load_templates", "read_matrix"),
    "stimulus": ("OrganizationError", "Stimulus", "StimulusResponses", "TokenTimeline", "check_fits", "parse_transcript",
                 "read_stimulus", "stimulus_from_text", "stimulus_responses", "tokenize_stimulus", "words_per_tr"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    """Import the submodule defining `name` on first access."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value
