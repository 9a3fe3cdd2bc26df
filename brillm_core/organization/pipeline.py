"""The whole functional-organisation analysis (atoms, encoding, matching, controls) and its check on the simulator."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..atomic import write_atomic
from .atoms import AtomModel, Stability, fit_best_atoms, match_atoms
from .controls import compare_with_control, lexical_responses
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
            "dice": m.dice.ravel(),
            "p_dice": m.p_dice.ravel(),
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


def _encode(atoms: np.ndarray, brain: BrainData, tr: float, method: str, fdr_q: float, encoding: str, seed: int
            ) -> tuple[EncodingResult, list[str]]:
    """Encoding maps as `encoding` asks ("auto": joint unless the convolved atoms are collinear, then per atom),
    with the warnings the choice calls for."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    enc = fit_encoding(atoms, brain, tr, method, fdr_q, joint=encoding != "per-atom", seed=seed)
    if not enc.joint or enc.vif.max() <= MAX_VIF:
        return enc, []
    collinear = f"atoms are collinear after HRF convolution (max variance inflation {enc.vif.max():.0f} > {MAX_VIF:g})"
    if encoding == "joint":
        return enc, [f"{collinear}: the joint maps are unreliable; use fewer atoms or per-atom models"]
    per_atom = fit_encoding(atoms, brain, tr, method, fdr_q, joint=False, seed=seed)
    return per_atom, [f"{collinear}: one model per atom was fitted instead of the joint model (each map then "
                      "credits its atom with what it shares with the others)"]


def _phase_null(atoms: np.ndarray, brain: BrainData, tr: float, method: str, fdr_q: float, joint: bool, seed: int,
                n_null: int, real: int) -> dict:
    """Significant (atom, voxel) pairs of phase-randomised atom sets against the real count, with a verdict."""
    counts = [int(fit_encoding(phase_randomise(atoms, seed + i), brain, tr, method, fdr_q, joint=joint,
                               seed=seed + i).significant.sum()) for i in range(n_null)]
    p = (1 + sum(c >= real for c in counts)) / (1 + n_null)
    above = real > max(counts)
    return {
        "n_surrogates": n_null,
        "counts": counts,
        "mean_significant": float(np.mean(counts)),
        "max_significant": max(counts),
        "mean_fraction": float(np.mean(counts)) / (atoms.shape[1] * brain.kept.size),
        "real_significant": real,
        "p": p,
        "above_null": bool(above),
        "verdict": (f"the atoms' maps ({real} significant pairs) exceed every one of {n_null} phase-randomised atom "
                    f"sets (at most {max(counts)}; p = {p:.3g})" if above else
                    f"the atoms' maps ({real} significant pairs) do not exceed {n_null} phase-randomised atom sets "
                    f"(up to {max(counts)}; p = {p:.3g}): atoms with the same spectra but no alignment with the "
                    "stimulus map as much"),
    }


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
    controls: Mapping[str, np.ndarray] | None = None,
    n_phase_null: int = 10,
    grid: np.ndarray | None = None,
    progress: ProgressFn | None = None,
) -> OrganizationReport:
    """Atoms of the responses (time x ANs), their encoding maps in the brain data, network matching and controls.

    Atoms start from an SVD and from a random start per stability seed; the lowest objective wins and the others'
    agreement with it is the stability. `controls` maps a name ("lexical", "untrained", ...) to another (time x
    columns) response matrix that goes through the same pipeline (same K, same encoding model) and is compared with
    the model by `compare_with_control`. The phase null encodes `n_phase_null` phase-randomised copies of the atoms
    (seeds seed, seed+1, ...). `grid` (a 3-D mask of the voxels) makes the matching null spatially smooth.
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
    control_items = dict(controls or {})
    n_stages = 4 + bool(n_phase_null) + len(control_items)
    done = 0

    def step(message: str) -> None:
        nonlocal done
        say(done / n_stages, message)
        done += 1

    step(f"dictionary learning, K = {k}, from an SVD start and {len(stability_seeds)} random start(s)")
    model, stability = fit_best_atoms(x, k, alpha, stability_seeds)
    warn = []
    if stability is not None and not stability.stable:
        warn.append(f"atoms are not stable: an equally good start matches the chosen atoms only at |r| = "
                    f"{stability.worst_equally_good_r:.2f} (< {stability.threshold}); atoms that do not replicate "
                    "should not be interpreted")
    step(f"encoding ({method}, {encoding}) of {b.kept.size} voxels")
    enc, enc_warnings = _encode(model.atoms, b, tr, method, fdr_q, encoding, seed)
    warn += enc_warnings
    step("held-out prediction (blocked cross-validation)")
    held = held_out_prediction(model.atoms, b, tr, method=method)
    step(f"matching with {len(names)} networks ({n_perm} null maps)")
    match = network_similarity(enc.t, enc.significant, tmpl, names, enc.voxel_mask, n_perm, seed, r_threshold,
                               p_threshold, grid)
    measures = summary_measures(model.atoms, match)
    null = {}
    if n_phase_null:
        step(f"{n_phase_null} phase-randomised copies of the atoms")
        null = _phase_null(model.atoms, b, tr, method, fdr_q, enc.joint, seed, n_phase_null, int(enc.significant.sum()))
    control_out = {}
    for name, cx in control_items.items():
        step(f"control: {name}")
        cx = np.asarray(cx, dtype=float)
        k_c = min(k, *cx.shape, int(np.count_nonzero(np.ptp(cx, axis=0) > 0)))
        if k_c < 1:
            raise ValueError(f"control {name!r} has no varying response")
        cm = fit_best_atoms(cx, k_c, alpha, ())[0]
        cenc = fit_encoding(cm.atoms, b, tr, method, fdr_q, joint=enc.joint, seed=seed)
        cmatch = network_similarity(cenc.t, cenc.significant, tmpl, names, cenc.voxel_mask, n_perm, seed, r_threshold,
                                    p_threshold, grid)
        control_out[name] = {
            "k_used": k_c,
            "reconstruction_r2": cm.r2,
            "n_significant": int(cenc.significant.sum()),
            "held_out_r_mean": float(np.nanmean(held_out_prediction(cm.atoms, b, tr, method=method))),
            **{m: v["value"] for m, v in summary_measures(cm.atoms, cmatch).items()},
            **compare_with_control(model.atoms, cm.atoms, b, tr, name, seed=seed),
        }
    say(1.0, "done")
    settings = {
        "n_tr": x.shape[0], "n_ans": x.shape[1], "tr": tr, "k": k, "alpha": alpha, "seed": seed,
        "method": method, "encoding": encoding, "joint": enc.joint, "fdr_q": fdr_q, "n_perm": n_perm,
        "r_threshold": r_threshold, "p_threshold": p_threshold, "stability_seeds": list(stability_seeds),
        "n_phase_null": n_phase_null, "network_names": names,
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
    """Atom recovery plus map recovery: Dice of coupled voxels, false positives among null voxels, phase null.

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
    }


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
    n_phase_null: int = 10,
    lexical_control: bool = False,
    progress: ProgressFn | None = None,
    **simulation: object,
) -> SimulationResult:
    """Simulate (keyword arguments go to `simulate`, with the same seed), run the pipeline, and score recovery.

    The lexical control is the simulation's word occurrences (one column per word type). Spatially smooth
    simulations lie on a grid, and the matching null is then spatially smooth too.
    """
    start = time.perf_counter()
    sim = simulate(seed=seed, **simulation)
    controls = {}
    if lexical_control:
        controls["lexical"] = lexical_responses(sim.words, sim.onsets, sim.tr, sim.atoms.shape[0])[0]
    labels = [f"{sim.node_names[v]}:{u}" for v, u in zip(sim.an_nodes, sim.an_units)]
    report = run_organization(
        sim.responses, sim.bold, sim.templates, sim.network_names, tr=sim.tr, k=k, alpha=alpha, seed=seed,
        method=method, encoding=encoding, fdr_q=fdr_q, n_perm=n_perm, stability_seeds=stability_seeds,
        an_labels=labels, controls=controls, n_phase_null=n_phase_null, grid=sim.grid_mask, progress=progress,
    )
    report.settings["simulation"] = sim.settings
    return SimulationResult(sim, report, recovery_figures(sim, report), time.perf_counter() - start)
