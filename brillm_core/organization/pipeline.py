"""The whole functional-organisation analysis (atoms, encoding, matching, controls) and its check on the simulator."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from ..atomic import write_atomic
from .atoms import AtomModel, Stability, count_varying, fit_best_atoms, match_atoms
from .controls import (N_SURROGATES, SAME_SPACE, canonical_correlations, compare_with_control, lexical_responses,
                       non_control_share)
from .encoding import BrainData, EncodingResult, fit_encoding, held_out_prediction, prepare_brain
from .matching import FORMULAS, NetworkMatch, check_templates, network_similarity, summary_measures
from .simulate import SimulatedData, simulate
from .surrogates import phase_randomise

__all__ = [
    "ProgressFn",
    "ENCODINGS",
    "OrganizationReport",
    "SimulationResult",
    "run_organization",
    "atom_recovery",
    "recovery_figures",
    "run_simulation",
]

ProgressFn = Callable[[float, str], None]
MAX_VIF = 10.0  # above this variance inflation joint maps are unreliable: "auto" then fits one model per atom
PHASE_NULL_ALPHA = 0.05  # the phase null's claim: the real maps exceed the copies at p <= .05 (19 copies at least)
N_PHASE_NULL = 19  # phase-randomised atom sets: the fewest whose smallest p reaches PHASE_NULL_ALPHA
CALIBRATED_VOLUMES = 300  # complete nulls hold 5 % from this length on (tests/organization/test_encoding.py)
ANTI_CONSERVATIVE = 1.5  # a measured null rate above 1.5 times nominal is warned about
LOW_POWER_DICE = 0.5  # simulator: maps recovering less than this (mean Dice) of the coupled voxels are warned about
ENCODINGS = ("auto", "joint", "per-atom")
TOP_ANS_IN_JSON = 50  # the JSON lists each sub-group's strongest ANs; the CSV table has them all


def _noop(fraction: float, message: str) -> None:
    """Default progress callback."""


@dataclass(frozen=True)
class OrganizationReport:
    """Everything the analysis found, with JSON and CSV export."""

    settings: dict
    atom_model: AtomModel
    an_labels: list[str]
    stability: Stability | None
    brain: BrainData
    encoding: EncodingResult
    held_out_r: np.ndarray  # voxels, NaN where excluded
    match: NetworkMatch
    measures: dict
    phase_null: dict
    controls: dict[str, dict] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """A JSON-ready summary: settings, atoms, sub-groups (strongest ANs), similarity, measures, controls."""
        m, enc = self.match, self.encoding
        subgroups = []
        for g in self.atom_model.subgroups():
            top = g.ans[:TOP_ANS_IN_JSON]
            subgroups.append({
                "atom": g.atom,
                "size": int(g.ans.size),
                "top": [{"an": int(a), "label": self.an_labels[a], "loading": float(w)} for a, w in zip(top, g.loadings)],
                "n_significant_voxels": int(enc.significant[g.atom].sum()),
                "best_network": m.network_names[m.best[g.atom]] if m.best[g.atom] >= 0 else None,
            })
        return {
            "settings": self.settings,
            "brain": self.brain.report(),
            "atoms": {
                "k": self.atom_model.k,
                "reconstruction_r2": self.atom_model.r2,
                "n_iter": self.atom_model.n_iter,
                "converged": self.atom_model.converged,
                "variance_inflation": self.encoding.vif.tolist(),
                "time_courses": self.atom_model.atoms.T.tolist(),
            },
            "subgroups": subgroups,
            "stability": None if self.stability is None else {
                **vars(self.stability), "equally_good": self.stability.equally_good(), "stable": self.stability.stable,
                "description": self.stability.describe()},
            "encoding_test": self.encoding.describe(),
            "matching_null": self.match.null,
            "held_out_r_mean": float(np.nanmean(self.held_out_r)),
            "similarity": self.similarity_table().to_dict(orient="records"),
            "atoms_per_network": m.atoms_per_network(),
            "measures": self.measures,
            "formulas": FORMULAS,
            "phase_null": self.phase_null,
            "controls": self.controls,
            "warnings": self.warnings,
        }

    def similarity_table(self) -> pd.DataFrame:
        """Long table: one row per atom and network with r, Dice, their permutation p-values and the match flag."""
        m = self.match
        k, n = np.meshgrid(np.arange(m.r.shape[0]), np.arange(m.r.shape[1]), indexing="ij")
        return pd.DataFrame({
            "atom": k.ravel(),
            "network": [m.network_names[i] for i in n.ravel()],
            "pearson_r": m.r.ravel(),
            "p_r": m.p_r.ravel(),
            "q_r": m.q_r.ravel(),
            "dice": m.dice.ravel(),
            "p_dice": m.p_dice.ravel(),
            "q_dice": m.q_dice.ravel(),
            "match": m.matches.ravel(),
        })

    def tables(self) -> dict[str, pd.DataFrame]:
        """The CSV tables by file stem."""
        am, enc = self.atom_model, self.encoding
        k = am.k
        atoms = pd.DataFrame(am.atoms, columns=[f"atom_{i}" for i in range(k)])
        atoms.insert(0, "volume", np.arange(len(atoms)))
        rows = [(g.atom, int(a), self.an_labels[a], float(w)) for g in am.subgroups() for a, w in zip(g.ans, g.loadings)]
        maps = {"voxel": np.arange(self.brain.n_voxels), "used": enc.voxel_mask, "held_out_r": self.held_out_r}
        for i in range(k):
            maps |= {f"beta_{i}": enc.betas[i], f"t_{i}": enc.t[i], f"q_{i}": enc.q[i], f"significant_{i}": enc.significant[i]}
        measures = pd.DataFrame([{"measure": n, **v} for n, v in self.measures.items()])
        per_net = [{"network": n, "atoms": " ".join(map(str, a)), "n_atoms": len(a)} for n, a in self.match.atoms_per_network().items()]
        controls = pd.DataFrame([{"control": n, **{c: v for c, v in d.items() if np.isscalar(v)}} for n, d in self.controls.items()])
        return {
            "atoms": atoms,
            "subgroups": pd.DataFrame(rows, columns=["atom", "an", "label", "loading"]),
            "maps": pd.DataFrame(maps),
            "similarity": self.similarity_table(),
            "atoms_per_network": pd.DataFrame(per_net),
            "measures": measures,
            "controls": controls,
        }

    def to_json(self, directory: str | Path) -> Path:
        """Write report.json into directory (created if needed), atomically."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        path = d / "report.json"
        write_atomic(path, json.dumps(self.summary(), indent=1, default=_json_default))
        return path

    def to_csv_tables(self, directory: str | Path) -> list[Path]:
        """Write each table as <name>.csv into directory, each file atomically."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, table in self.tables().items():
            paths.append(d / f"{name}.csv")
            write_atomic(paths[-1], table.to_csv(index=False))
        return paths


def _json_default(x: object) -> object:
    """Make numpy scalars and arrays JSON-serialisable; NaN floats become null through tolist()."""
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")


def _encode(atoms: np.ndarray, brain: BrainData, tr: float, method: str, fdr_q: float, encoding: str
            ) -> tuple[EncodingResult, list[str]]:
    """Encoding maps as `encoding` asks ("auto": joint unless the convolved atoms are collinear, then per atom),
    with the warnings the choice calls for."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    enc = fit_encoding(atoms, brain, tr, method, fdr_q, joint=encoding != "per-atom")
    if not enc.joint or enc.vif.max() <= MAX_VIF:
        return enc, []
    collinear = f"atoms are collinear after HRF convolution (max variance inflation {enc.vif.max():.0f} > {MAX_VIF:g})"
    if encoding == "joint":
        return enc, [f"{collinear}: the joint maps are unreliable; use fewer atoms or per-atom models"]
    per_atom = fit_encoding(atoms, brain, tr, method, fdr_q, joint=False)
    return per_atom, [f"{collinear}: one model per atom was fitted instead of the joint model (each map then "
                      "credits its atom with what it shares with the others)"]


def _phase_null(atoms: np.ndarray, brain: BrainData, tr: float, method: str, fdr_q: float, joint: bool, seed: int,
                n_null: int, real: int, progress: ProgressFn = _noop) -> dict:
    """Significant (atom, voxel) pairs of phase-randomised atom sets against the real count, with a verdict, and
    the share of their (atom, voxel) pairs with p < .05: the encoding's false-positive rate on this very
    recording (its length, its noise), which holds near 5 % when the test is calibrated."""
    fits = []
    for i in range(n_null):
        progress(i / n_null, f"copy {i + 1} of {n_null}")
        fits.append(fit_encoding(phase_randomise(atoms, seed + i), brain, tr, method, fdr_q, joint=joint))
    counts = [int(f.significant.sum()) for f in fits]
    rate = float(np.mean([(f.p[:, brain.kept] < 0.05).mean() for f in fits]))
    floor = 1 / (1 + n_null)
    p = (1 + sum(c >= real for c in counts)) / (1 + n_null)
    above = p <= PHASE_NULL_ALPHA
    if above:
        verdict = (f"the atoms' maps ({real} significant pairs) exceed {n_null} phase-randomised atom sets (up to "
                   f"{max(counts)}; p = {p:.3g})")
    elif floor > PHASE_NULL_ALPHA:
        verdict = (f"{n_null} phase-randomised atom sets cannot show it: the smallest p they allow is {floor:.3g} "
                   f"(> {PHASE_NULL_ALPHA:g}); the atoms' maps have {real} significant pairs, the copies up to "
                   f"{max(counts)} (p = {p:.3g})")
    else:
        verdict = (f"the atoms' maps ({real} significant pairs) do not exceed {n_null} phase-randomised atom sets "
                   f"(up to {max(counts)}; p = {p:.3g}): atoms with the same spectra but no alignment with the "
                   "stimulus map as much")
    return {
        "n_surrogates": n_null,
        "counts": counts,
        "mean_significant": float(np.mean(counts)),
        "max_significant": max(counts),
        "mean_fraction": float(np.mean(counts)) / (atoms.shape[1] * brain.kept.size),
        "real_significant": real,
        "p": p,
        "p_floor": floor,
        "above_null": bool(above),
        "null_p05_rate": rate,
        "verdict": verdict,
    }


def _calibration_warnings(n_tr: int, method: str, null: dict) -> list[str]:
    """What the recording's length and its own null rate say about the encoding's p-values."""
    out = []
    rate = null.get("null_p05_rate")
    measured = (f"; on this recording phase-randomised atoms reach p < .05 in {100 * rate:.1f} % of (atom, voxel) "
                "pairs (nominal 5 %)") if rate is not None else ""
    if method == "ols":
        out.append("plain OLS assumes white noise: its p-values are too small on autocorrelated fMRI noise")
    elif n_tr < CALIBRATED_VOLUMES:
        out.append(f"{n_tr} volumes is below the {CALIBRATED_VOLUMES} at which the encoding's p-values were shown to "
                   "hold their nominal rate on complete nulls; shorter recordings can make them too small, most under "
                   f"strongly autocorrelated or 1/f noise{measured}")
    if rate is not None and rate > ANTI_CONSERVATIVE * 0.05:
        out.append(f"the encoding's p-values are too small on this recording: phase-randomised atoms reach p < .05 "
                   f"in {100 * rate:.1f} % of (atom, voxel) pairs against 5 %; read its maps and FDR counts with care")
    return out


def run_organization(
    responses: np.ndarray,
    brain: BrainData | np.ndarray,
    templates: np.ndarray,
    network_names: Sequence[str] | None = None,
    *,
    tr: float,
    k: int = 8,
    alpha: float = 0.2,
    seed: int = 0,
    method: str = "ols_ar",
    encoding: str = "auto",
    fdr_q: float = 0.05,
    n_perm: int = 1000,
    r_threshold: float = 0.2,
    p_threshold: float = 0.05,
    stability_seeds: Sequence[int] = (1, 2),
    an_labels: Sequence[str] | None = None,
    units: np.ndarray | None = None,
    controls: Mapping[str, np.ndarray] | None = None,
    paired: Collection[str] = (),
    n_phase_null: int = N_PHASE_NULL,
    n_surrogates: int = N_SURROGATES,
    grid: np.ndarray | None = None,
    voxels_independent: bool = False,
    progress: ProgressFn | None = None,
) -> OrganizationReport:
    """Atoms of the responses (time x ANs), their encoding maps in the brain data, network matching and controls.

    Atoms start from an SVD and from a random start per stability seed; the lowest objective wins and the others'
    agreement with it is the stability. `units` labels each AN's unit: ANs of one unit share a scale (see
    `atoms.standardise`). `controls` maps a name ("lexical", "untrained", ...) to another (time x
    columns) response matrix that gets exactly the model's procedure (same K, starts and selection, same encoding
    model) and is compared with the model by `compare_with_control` (`n_surrogates` per test); the names in
    `paired` have the model's ANs as columns. The phase null encodes `n_phase_null` phase-randomised copies of the
    atoms (seeds seed, seed+1, ...). `grid` (a 3-D mask of the voxels) makes the matching null spatially smooth;
    without one, voxels are shuffled, which the report warns about unless `voxels_independent` says that is right.
    """
    say = progress or _noop
    x = np.asarray(responses, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"responses must be (time x ANs), got shape {x.shape}")
    b = brain if isinstance(brain, BrainData) else prepare_brain(brain, n_tr=x.shape[0], tr=tr)
    if b.data.shape[0] != x.shape[0]:
        raise ValueError(f"brain data has {b.data.shape[0]} volumes but the responses have {x.shape[0]} TRs (TR {tr} s)")
    tmpl, names = check_templates(templates, b.n_voxels, network_names)
    labels = [str(i) for i in range(x.shape[1])] if an_labels is None else [str(s) for s in an_labels]
    if len(labels) != x.shape[1]:
        raise ValueError(f"{len(labels)} AN labels for {x.shape[1]} ANs")
    control_items = {name: np.asarray(cx, dtype=float) for name, cx in (controls or {}).items()}
    for name in paired:
        if name in control_items and control_items[name].shape != x.shape:
            raise ValueError(f"control {name!r} is paired with the model's ANs but has shape "
                             f"{control_items[name].shape}, not {x.shape}")
    n_stages = 4 + bool(n_phase_null) + len(control_items)
    done = 0

    def step(message: str) -> None:
        nonlocal done
        say(done / n_stages, message)
        done += 1

    def within(message: str) -> ProgressFn:
        """Progress inside the current stage: its share of the bar, with what it is doing."""
        return lambda fraction, detail: say((done - 1 + fraction) / n_stages, f"{message}: {detail}")

    step(f"dictionary learning, K = {k}, from an SVD start and {len(stability_seeds)} random start(s)")
    model, stability = fit_best_atoms(x, k, alpha, stability_seeds, units)
    warn = []
    if stability is not None and not stability.stable:
        warn.append(f"atoms are not stable: an equally good start matches the chosen atoms only at |r| = "
                    f"{stability.worst_equally_good_r:.2f} (< {stability.threshold}); atoms that do not replicate "
                    "should not be interpreted")
    step(f"encoding ({method}, {encoding}) of {b.kept.size} voxels")
    enc, enc_warnings = _encode(model.atoms, b, tr, method, fdr_q, encoding)
    warn += enc_warnings
    step("held-out prediction (blocked cross-validation)")
    held = held_out_prediction(model.atoms, b, tr, method=method)
    step(f"matching with {len(names)} networks ({n_perm} null maps)")
    match = network_similarity(enc.t, enc.significant, tmpl, names, enc.voxel_mask, n_perm, seed, r_threshold,
                               p_threshold, grid)
    if grid is None and not voxels_independent:
        warn.append("the matching null shuffles voxels (the data came without coordinates): for spatially smooth "
                    "maps its p-values are too small; brain data as a NIfTI image with a mask gets a spatial null")
    measures = summary_measures(model.atoms, match)
    null = {}
    if n_phase_null:
        step(f"{n_phase_null} phase-randomised copies of the atoms")
        null = _phase_null(model.atoms, b, tr, method, fdr_q, enc.joint, seed, n_phase_null, int(enc.significant.sum()),
                           within("phase null"))
    warn += _calibration_warnings(x.shape[0], method, null)
    control_out = {}
    for name, cx in control_items.items():
        step(f"control: {name}: its atoms, by the model's procedure")
        k_c = min(k, *cx.shape, count_varying(cx))
        if k_c < 1:
            raise ValueError(f"control {name!r} has no varying response")
        control = fit_best_atoms(cx, k_c, alpha, stability_seeds, units if name in paired else None)[0]
        compared = model if k_c == k else fit_best_atoms(x, k_c, alpha, stability_seeds, units)[0]
        cenc = fit_encoding(control.atoms, b, tr, method, fdr_q, joint=enc.joint)
        cmatch = network_similarity(cenc.t, cenc.significant, tmpl, names, cenc.voxel_mask, n_perm, seed, r_threshold,
                                    p_threshold, grid)
        shared = canonical_correlations(compared.atoms, control.atoms)
        control_out[name] = {
            "k_used": k_c,
            "reconstruction_r2": control.r2,
            "n_significant": int(cenc.significant.sum()),
            "held_out_r_mean": float(np.nanmean(held_out_prediction(control.atoms, b, tr, method=method))),
            **{m: v["value"] for m, v in summary_measures(control.atoms, cmatch).items()},
            "non_control_share": non_control_share(model, x, cx, name in paired),
            "canonical_correlations": shared.tolist(),
            **compare_with_control(compared, x, control, cx, b, tr, name, name in paired, n_surrogates=n_surrogates,
                                   seed=seed, progress=within(f"control: {name}")),
        }
        if shared.min() >= SAME_SPACE:
            warn.append(f"the model's atoms and the {name} control's span nearly the same space (canonical "
                        f"correlations {shared.min():.3f} to {shared.max():.3f}): here the model's neurons respond "
                        f"as the control does, and its maps are the control's")
    say(1.0, "done")
    settings = {
        "n_tr": x.shape[0], "n_ans": x.shape[1], "tr": tr, "k": k, "alpha": alpha, "seed": seed,
        "method": method, "encoding": encoding, "joint": enc.joint, "fdr_q": fdr_q, "n_perm": n_perm,
        "r_threshold": r_threshold, "p_threshold": p_threshold, "stability_seeds": list(stability_seeds),
        "n_phase_null": n_phase_null, "n_surrogates": n_surrogates, "paired_controls": sorted(paired),
        "network_names": names,
    }
    return OrganizationReport(settings, model, labels, stability, b, enc, held, match, measures, null, control_out, warn)


@dataclass(frozen=True)
class SimulationResult:
    """A simulated data set, the report of the pipeline on it, and the recovery figures against the truth."""

    data: SimulatedData
    report: OrganizationReport
    figures: dict
    seconds: float


def atom_recovery(sim: SimulatedData, model: AtomModel) -> dict:
    """Compare fitted atoms and sub-groups with the simulation's truth.

    Fitted atom f is labelled with the true atom it correlates with most; an AN's sub-group is right when its
    main fitted atom's label is its true main atom (with K > K_true several fitted atoms may share a label).
    Atom |r| uses a one-to-one (Hungarian) matching of true to fitted atoms, as does the stricter accuracy.
    """
    true_idx, fit_idx, abs_r = match_atoms(sim.atoms, model.atoms)
    k_true = sim.atoms.shape[1]
    label = np.argmax(np.abs(np.corrcoef(sim.atoms.T, model.atoms.T)[:k_true, k_true:]), axis=0)
    one_to_one = np.full(model.k, -1)
    one_to_one[fit_idx] = true_idx
    primary = model.primary
    assigned = primary >= 0
    return {
        "k": model.k,
        "k_true": k_true,
        "matched_true_atoms": true_idx.tolist(),
        "matched_fitted_atoms": fit_idx.tolist(),
        "atom_abs_r": abs_r.tolist(),
        "atom_abs_r_min": float(abs_r.min()),
        "subgroup_accuracy": float((assigned & (label[np.maximum(primary, 0)] == sim.an_primary)).mean()),
        "subgroup_accuracy_one_to_one": float((assigned & (one_to_one[np.maximum(primary, 0)] == sim.an_primary)).mean()),
        "reconstruction_r2": model.r2,
    }


def recovery_figures(sim: SimulatedData, report: OrganizationReport) -> dict:
    """Atom recovery plus map recovery: Dice of coupled voxels, false positives among null voxels, phase null, and a
    warning when the maps recover little (the atoms come from the neurons and recover whatever the brain does).

    Dice compares each true atom's coupled voxels with the FDR-significant voxels of its matched fitted atom.
    Calibration on the voxels coupled to no atom: the share of (fitted atom, null voxel) pairs with p < .05 (5 % if
    the test holds its nominal rate), the share that are FDR-significant, and how many atoms have any.
    """
    fig = atom_recovery(sim, report.atom_model)
    sig = report.encoding.significant
    pairs = list(zip(fig["matched_true_atoms"], fig["matched_fitted_atoms"]))
    dice = [2 * (sig[f] & sim.coupled_mask[t]).sum() / (sig[f].sum() + sim.coupled_mask[t].sum()) for t, f in pairs]
    null = sim.null_mask
    return fig | {
        "dice": [float(d) for d in dice],
        "dice_mean": float(np.mean(dice)),
        "dice_min": float(np.min(dice)),
        "null_p05_rate": float((report.encoding.p[:, null] < 0.05).mean()),
        "null_fdr_atoms": int(sig[:, null].any(axis=1).sum()),
        "false_positive_rate": float(sig[:, null].mean()),
        "false_positive_any_atom": float(sig[:, null].any(axis=0).mean()),
        "network_match_accuracy": float(np.mean([report.match.best[f] == t for t, f in pairs])),
        "max_variance_inflation": float(report.encoding.vif.max()),
        "phase_null_mean_significant": report.phase_null.get("mean_significant"),
        "phase_null_above": report.phase_null.get("above_null"),
        "phase_null_fraction": report.phase_null.get("mean_fraction"),
        "real_significant": int(sig.sum()),
        "power_warning": _power_warning(float(np.mean(dice))),
    }


def _power_warning(dice: float) -> str | None:
    """What a low Dice says: the atoms' recovery comes from the neurons alone, the maps are where power runs out."""
    if dice >= LOW_POWER_DICE:
        return None
    return (f"power is too low to recover the maps: the coupled voxels are found with Dice {dice:.3f} "
            + ("(next to nothing)" if dice < 0.1 else f"(below {LOW_POWER_DICE})")
            + "; the atoms' recovery comes from the neurons alone and says nothing about the brain side (more "
              "volumes, stronger coupling or less noise would help)")


def run_simulation(
    k: int = 8,
    *,
    alpha: float = 0.2,
    seed: int = 0,
    method: str = "ols_ar",
    encoding: str = "auto",
    fdr_q: float = 0.05,
    n_perm: int = 1000,
    stability_seeds: Sequence[int] = (),
    n_phase_null: int = N_PHASE_NULL,
    n_surrogates: int = N_SURROGATES,
    lexical_control: bool = False,
    progress: ProgressFn | None = None,
    **simulation: object,
) -> SimulationResult:
    """Simulate (keyword arguments go to `simulate`, with the same seed), run the pipeline, and score recovery.

    The lexical control is the simulation's word occurrences (one column per word type), or, for word-gated
    neurons, the same neurons' context-free responses (paired with the model's). Spatially smooth simulations lie
    on a grid, and the matching null is then spatially smooth too; otherwise the voxels are independent.
    """
    start = time.perf_counter()
    sim = simulate(seed=seed, **simulation)
    controls = {}
    if lexical_control:
        controls["lexical"] = (sim.lexical if sim.lexical is not None else
                               lexical_responses(sim.words, sim.onsets, sim.tr, sim.atoms.shape[0])[0])
    labels = [f"{sim.node_names[v]}:{u}" for v, u in zip(sim.an_nodes, sim.an_units)]
    report = run_organization(
        sim.responses, sim.bold, sim.templates, sim.network_names, tr=sim.tr, k=k, alpha=alpha, seed=seed,
        method=method, encoding=encoding, fdr_q=fdr_q, n_perm=n_perm, stability_seeds=stability_seeds,
        an_labels=labels, units=sim.an_units, controls=controls,
        paired=("lexical",) if sim.lexical is not None else (),
        n_phase_null=n_phase_null, n_surrogates=n_surrogates, grid=sim.grid_mask,
        voxels_independent=sim.grid_mask is None, progress=progress,
    )
    report.settings["simulation"] = sim.settings
    return SimulationResult(sim, report, recovery_figures(sim, report), time.perf_counter() - start)
