"""What `brillm organization` does (see `cli` for the arguments and the output layout); imported only when it runs."""
from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..atomic import write_target
from ..checkpoint import Checkpoint, load_checkpoint
from ..compare import check_same_vocabulary
from ..errors import BriLLMError
from .checkpoints import CheckpointRun, comparison_table, run_checkpoint
from .encoding import BrainData, load_brain, prepare_brain
from .pipeline import OrganizationReport, SimulationResult, run_simulation
from .simulate import simulate
from .stimulus import OrganizationError, Stimulus, check_fits, read_stimulus, words_per_tr
from .tables import load_templates
from .volumes import VoxelGrid, is_nifti, read_mask, read_recording, write_maps

__all__ = ["write_atomically", "figure_tables", "write_report", "run_command"]


def write_atomically(directory: Path, fill: Callable[[Path], None]) -> Path:
    """Let `fill` write into a temporary sibling of `directory`, then rename it into place (never over a directory;
    a symbolic link is kept and the directory created where it points)."""
    target = write_target(directory)
    if target.exists():
        raise OrganizationError(f"output directory {target} already exists; choose a new path")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        fill(tmp)
        if target.exists():
            raise OrganizationError(f"output directory {target} appeared while the analysis ran; choose a new path")
        os.chmod(tmp, 0o755)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def figure_tables(report: OrganizationReport, words: list[str], tr: float) -> dict[str, pd.DataFrame]:
    """The data behind the explorer's figures: atoms under the words, atom x network r and Dice."""
    atoms = report.atom_model.atoms
    under = pd.DataFrame(atoms, columns=[f"atom_{i}" for i in range(atoms.shape[1])])
    under.insert(0, "words", words)
    under.insert(0, "time_s", np.arange(len(atoms)) * tr)
    under.insert(0, "volume", np.arange(len(atoms)))
    m = report.match
    index = pd.Index([f"atom_{i}" for i in range(m.r.shape[0])], name="atom")
    return {
        "atoms_under_words": under,
        "similarity_r": pd.DataFrame(m.r, index=index, columns=m.network_names).reset_index(),
        "similarity_dice": pd.DataFrame(m.dice, index=index, columns=m.network_names).reset_index(),
    }


def write_report(report: OrganizationReport, directory: Path, figures: dict[str, pd.DataFrame],
                 extra: dict[str, Any] | None = None) -> None:
    """report.json, the CSV tables, figures/*.csv and any extra JSON documents (name -> data) into `directory`."""
    report.to_json(directory)
    report.to_csv_tables(directory)
    (directory / "figures").mkdir(exist_ok=True)
    for name, table in figures.items():
        table.to_csv(directory / "figures" / f"{name}.csv", index=False)
    for name, data in (extra or {}).items():
        (directory / f"{name}.json").write_text(json.dumps(data, indent=1, default=_plain), encoding="utf-8")


def _plain(x: object) -> object:
    """numpy values as plain Python for json.dumps."""
    return x.tolist() if isinstance(x, (np.ndarray, np.generic)) else str(x)


def _brain(args: argparse.Namespace) -> tuple[BrainData, VoxelGrid | None]:
    """The brain data, checked against --volumes, with the excluded voxels reported on stderr, and
    the voxel grid when it came as a NIfTI image with a mask."""
    grid = None
    try:
        if is_nifti(args.brain):
            if args.mask is None:
                raise OrganizationError(f"{args.brain}: NIfTI brain data needs --mask (a 3-D image of the voxels to analyse)")
            grid = read_mask(args.mask)
            brain = prepare_brain(read_recording(args.brain, grid), n_tr=args.volumes, tr=args.tr)
        else:
            if args.mask is not None:
                raise OrganizationError("--mask applies to NIfTI brain data only (.nii or .nii.gz)")
            brain = load_brain(args.brain, n_tr=args.volumes, tr=args.tr)
    except OrganizationError:
        raise
    except FileNotFoundError as exc:
        raise OrganizationError(f"brain data file not found: {args.brain}") from exc
    except ValueError as exc:
        raise OrganizationError(f"{args.brain}: {exc}") from exc
    if brain.nan_voxels.size or brain.constant_voxels.size:
        print(f"warning: {brain.nan_voxels.size} voxel(s) with NaN/inf and {brain.constant_voxels.size} constant "
              f"voxel(s) are excluded from the encoding (their maps are NaN; listed in report.json)", file=sys.stderr)
    return brain, grid


def _check_real_args(args: argparse.Namespace) -> None:
    """Every input the real mode needs, with one message naming what is missing."""
    missing = [flag for flag, value in (("MODEL", args.models), ("--stimulus or --transcript", args.stimulus or args.transcript),
                                        ("--tr", args.tr), ("--volumes", args.volumes), ("--brain", args.brain),
                                        ("--templates", args.templates)) if not value]
    if missing:
        raise OrganizationError(f"missing {', '.join(missing)} (or run on the simulator with --simulate)")
    if args.volumes < 3:
        raise OrganizationError(f"--volumes must be at least 3, got {args.volumes}")


def _progress(fraction: float, message: str) -> None:
    """Progress lines on stderr."""
    print(f"  [{100 * fraction:5.1f} %] {message}", file=sys.stderr)


SIMULATOR_FLAGS = {  # argparse destination -> simulate() parameter, for the departures --hard combines
    "neuron_noise": "an_noise", "coupling_snr": "coupling_snr", "noise": "noise", "noise_rho": "noise_rho",
    "hrf_peak": "hrf_peak", "atom_correlation": "atom_correlation", "atom_smoothness": "smoothness",
    "spatial_smoothness": "spatial_smoothness", "template_overlap": "template_overlap", "lexical_drive": "lexical_drive",
    "atom_edges": "atom_edges", "word_gated": "word_gated",
}


def _starts(args: argparse.Namespace) -> tuple[int, ...]:
    """Seeds of the random dictionary starts."""
    if args.random_starts < 0:
        raise OrganizationError(f"--random-starts must be >= 0, got {args.random_starts}")
    return tuple(args.seed + 1 + i for i in range(args.random_starts))


def _departures(args: argparse.Namespace) -> dict:
    """simulate() keyword arguments: the hard preset if asked, then every flag given."""
    from .simulate import HARD

    chosen = dict(HARD) if args.hard else {}
    for flag, name in SIMULATOR_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            chosen[name] = tuple(value) if isinstance(value, list) else value
    return chosen


def _simulate(args: argparse.Namespace) -> int:
    """Simulator mode: run, print the recovery and calibration figures, write the report."""
    if args.models or args.stimulus or args.transcript or args.brain or args.templates:
        raise OrganizationError("--simulate takes no MODEL, stimulus, brain data or templates")
    try:
        result: SimulationResult = run_simulation(
            args.k, alpha=args.alpha, seed=args.seed, method=args.method, encoding=args.encoding, fdr_q=args.fdr_q,
            n_perm=args.n_perm, stability_seeds=_starts(args), n_phase_null=args.phase_null,
            n_surrogates=args.surrogates, lexical_control=True,
            progress=_progress, n_tr=args.n_tr, tr=args.tr or 1.5, k_true=args.k_true, n_nodes=args.nodes,
            units_per_node=args.units, n_voxels=args.voxels, voxels_per_atom=args.voxels_per_atom, **_departures(args),
        )
    except ValueError as exc:
        raise OrganizationError(str(exc)) from exc
    sim, f = result.data, result.figures
    words = words_per_tr(sim.words, sim.onsets, sim.tr, sim.atoms.shape[0])
    write_atomically(args.output, lambda d: write_report(
        result.report, d, figure_tables(result.report, words, sim.tr), {"recovery": f}))
    defaults = {k: p.default for k, p in inspect.signature(simulate).parameters.items()}
    departures = {k: v for k, v in sim.settings.items() if np.atleast_1d(v).tolist() != np.atleast_1d(defaults[k]).tolist()}
    print(f"simulator ({'hard preset' if args.hard else 'default' if not departures else 'custom'}): "
          f"{sim.responses.shape[0]} TRs, {sim.responses.shape[1]} ANs, {sim.bold.shape[1]} voxels, "
          f"K = {args.k} (true {sim.atoms.shape[1]}); {result.seconds:.1f} s")
    if departures:
        print("  departures: " + ", ".join(f"{k} {v}" for k, v in departures.items()))
    print("recovery of the brain side (the maps):")
    print(f"  Dice of coupled voxels mean {f['dice_mean']:.3f} (min {f['dice_min']:.3f})   "
          f"network match accuracy {f['network_match_accuracy']:.2f}")
    if f["power_warning"]:
        print(f"  warning: {f['power_warning']}")
    print("calibration (voxels coupled to no atom):")
    print(f"  p < .05 in {100 * f['null_p05_rate']:.2f} % of (atom, voxel) pairs (nominal 5 %)   "
          f"FDR-significant {100 * f['false_positive_rate']:.2f} %, in {f['null_fdr_atoms']} of {args.k} atoms")
    print("recovery of the model side (atoms from the neurons alone, no brain data involved):")
    print(f"  matched atoms |r| min {f['atom_abs_r_min']:.3f}   sub-group accuracy {f['subgroup_accuracy']:.4f} "
          f"(one-to-one {f['subgroup_accuracy_one_to_one']:.4f})")
    _print_measures(result.report)
    print(f"wrote {args.output}")
    return 0


def _print_measures(report: OrganizationReport) -> None:
    """Tests used, measures, stability, the phase null's and controls' verdicts, and warnings of one report."""
    print(f"  encoding: {report.encoding.describe()}; {'joint model' if report.encoding.joint else 'one model per atom'}")
    print(f"  matching null: {report.match.null}")
    print("  " + "   ".join(f"{n} {v['value']:.3f}" for n, v in report.measures.items()))
    if report.stability is not None:
        print(f"  stability: {report.stability.describe()}")
    if report.phase_null:
        print(f"  phase null: {report.phase_null['verdict']}")
        print(f"  measured null rate: phase-randomised atoms reach p < .05 in "
              f"{100 * report.phase_null['null_p05_rate']:.1f} % of (atom, voxel) pairs on this recording (nominal 5 %)")
    for control in report.controls.values():
        name = control["control"]
        print(f"  {name} control [{control['verdict_code']}]: {control['verdict']}")
        for key, question in control["questions"].items():
            print(f"    p = {control[key]:.3g}: {question}")
        print(f"    the model's responses hold {100 * control['non_control_share']:.1f} % that the {name} control does "
              f"not (sum of squares); canonical correlations of the two sets of atoms "
              f"{min(control['canonical_correlations']):.3f}-{max(control['canonical_correlations']):.3f}")
    for warning in report.warnings:
        print(f"  warning: {warning}")


def _run_one(checkpoint: Checkpoint, args: argparse.Namespace, stimulus: Stimulus, brain: BrainData,
             templates: np.ndarray, names: list[str], grid: VoxelGrid | None) -> tuple[CheckpointRun, list[str]]:
    """One checkpoint's run and the token text of its stimulus timeline."""
    run = run_checkpoint(
        checkpoint, stimulus, brain, templates, names, tr=args.tr, kind=args.responses.replace("-", "_"),
        how=args.pool, k=args.k, alpha=args.alpha, seed=args.seed, method=args.method, encoding=args.encoding,
        fdr_q=args.fdr_q, n_perm=args.n_perm, untrained=not args.no_untrained, stability_seeds=_starts(args),
        n_phase_null=args.phase_null, n_surrogates=args.surrogates, grid=None if grid is None else grid.mask,
        progress=_progress,
    )
    if run.timeline.unknown:
        print(f"warning: {len(run.timeline.unknown)} stimulus piece(s) map to the unknown node "
              f"({100 * run.timeline.unknown_share:.0f} % of the tokens)", file=sys.stderr)
    return run, [checkpoint.token(int(n)) for n in run.timeline.ids]


def _real(args: argparse.Namespace) -> int:
    """Checkpoint mode: one report, or one per checkpoint plus comparison.csv."""
    _check_real_args(args)
    if args.output.exists():
        raise OrganizationError(f"output directory {args.output} already exists; choose a new path")
    stimulus = read_stimulus(args.stimulus, args.transcript, args.word_rate)
    check_fits(stimulus, args.tr, args.volumes)
    brain, grid = _brain(args)
    templates, names = load_templates(args.templates, brain.n_voxels, args.network_names, grid)
    several = len(args.models) > 1
    checkpoints = {f"{i}-{Path(m).name}" if several else Path(m).name: load_checkpoint(m, device="cpu")
                   for i, m in enumerate(args.models)}
    first = next(iter(checkpoints.values()))
    for other in checkpoints.values():
        check_same_vocabulary(first, other)
    words = words_per_tr(stimulus.words, stimulus.onsets, args.tr, args.volumes)
    runs: dict[str, tuple[CheckpointRun, list[str]]] = {}
    for name, checkpoint in checkpoints.items():
        print(f"checkpoint {name}", file=sys.stderr)
        runs[name] = _run_one(checkpoint, args, stimulus, brain, templates, names, grid)

    def fill(directory: Path) -> None:
        for name, (run, tokens) in runs.items():
            target = directory / name if several else directory
            target.mkdir(exist_ok=True)
            figures = figure_tables(run.report, words, args.tr)
            figures["timeline"] = pd.DataFrame({"token": tokens, "node": run.timeline.ids, "time_s": run.timeline.times,
                                                "word_index": run.timeline.word_index,
                                                "word": [stimulus.words[w] for w in run.timeline.word_index]})
            write_report(run.report, target, figures)
            if grid is not None:
                enc = run.report.encoding
                write_maps(target / "maps", grid, {"beta": enc.betas, "t": enc.t, "q": enc.q,
                                                   "significant": enc.significant, "held_out_r": run.report.held_out_r})
        if several:
            comparison_table({n: r.report for n, (r, _) in runs.items()}).to_csv(directory / "comparison.csv", index=False)

    write_atomically(args.output, fill)
    for name, (run, _) in runs.items():
        print(f"{name}: {run.report.settings['n_ans']} ANs from {run.responses.n_steps} steps, "
              f"K = {args.k}, R2 {run.report.atom_model.r2:.3f}, {int(run.report.encoding.significant.sum())} "
              f"significant (atom, voxel) pairs")
        _print_measures(run.report)
    if several:
        print(comparison_table({n: r.report for n, (r, _) in runs.items()}).to_string(index=False))
    print(f"wrote {args.output}")
    return 0


def run_command(args: argparse.Namespace) -> int:
    """brillm organization: simulator or checkpoints (arguments as `cli.register` defines them)."""
    given = [f"--{flag.replace('_', '-')}" for flag in ("hard", *SIMULATOR_FLAGS)
             if getattr(args, flag) is not None and getattr(args, flag) is not False]
    if given and not args.simulate:
        raise OrganizationError(f"{', '.join(given)} apply to the simulator only (--simulate)")
    if args.k < 1:
        raise OrganizationError(f"-k must be at least 1, got {args.k}")
    if args.phase_null < 0 or args.surrogates < 1:
        raise OrganizationError(f"--phase-null must be >= 0 and --surrogates >= 1, got {args.phase_null} and "
                                f"{args.surrogates}")
    if args.simulate:
        if args.output.exists():
            raise OrganizationError(f"output directory {args.output} already exists; choose a new path")
        return _simulate(args)
    try:
        return _real(args)
    except BriLLMError:
        raise
    except ValueError as exc:
        raise OrganizationError(str(exc)) from exc
