"""Functional organisation of BriLLM's artificial neurons (Sun et al., arXiv 2410.19542): numerical pipeline only.

Atoms of AN responses by sparse dictionary learning, voxel-wise encoding with an HRF and AR(1)-prewhitened OLS,
matching with network templates, controls, and a simulator with known truth. Returns data, never figures.
"""
from .atoms import AtomModel, Stability, Subgroup, atom_stability, fit_atoms, match_atoms
from .controls import compare_with_control, lexical_responses, phase_randomise
from .encoding import BrainData, EncodingResult, fdr_bh, fit_encoding, held_out_prediction, load_brain, prepare_brain
from .hrf import convolve_hrf, spm_hrf
from .matching import FORMULAS, NetworkMatch, network_similarity, summary_measures, templates_from_labels
from .pipeline import OrganizationReport, SimulationResult, recovery_figures, run_organization, run_simulation
from .responses import landscape_responses, node_gated_responses, pool_to_trs, trace_responses
from .simulate import SimulatedData, simulate

__all__ = [
    "AtomModel", "Stability", "Subgroup", "atom_stability", "fit_atoms", "match_atoms",
    "compare_with_control", "lexical_responses", "phase_randomise",
    "BrainData", "EncodingResult", "fdr_bh", "fit_encoding", "held_out_prediction", "load_brain", "prepare_brain",
    "convolve_hrf", "spm_hrf",
    "FORMULAS", "NetworkMatch", "network_similarity", "summary_measures", "templates_from_labels",
    "OrganizationReport", "SimulationResult", "recovery_figures", "run_organization", "run_simulation",
    "landscape_responses", "node_gated_responses", "pool_to_trs", "trace_responses",
    "SimulatedData", "simulate",
]
