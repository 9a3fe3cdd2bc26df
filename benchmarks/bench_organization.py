"""Time the functional-organisation analysis where people wait for it, and print its calibration.

- the explorer page's model run on the flagship checkpoint (its default settings and built-in story);
- a 300-volume `brillm organization` run with two checkpoints on recorded-like data (a brain driven by the
  stimulus words, written as files first), as the command line does it;
- the simulator (default and hard presets): time per stage, recovery and calibration, verdicts, warnings;
- the calibration table: on complete nulls (no coupling at all), the share of (atom, voxel) pairs with p < .05 and
  p < .001 and the atoms with any FDR hit, per recording length, noise and encoding method;
- optionally (--verdict-nulls N) the control tests on complete nulls: how often each p-value falls below .05.

Run it on an idle machine for figures to keep; `--quick` runs a reduced version that checks it works.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from brillm_core import load_checkpoint
from brillm_core.cli import main as brillm
from brillm_core.organization.checkpoints import model_text
from brillm_core.organization.encoding import METHODS, fit_encoding
from brillm_core.organization.pipeline import run_organization, run_simulation
from brillm_core.organization.simulate import HARD, lexical_brain, simulate_noise
from brillm_core.organization.stimulus import stimulus_from_text
from explorer.organization_run import compute
from explorer.state import from_dict

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {"default": {}, "hard": HARD}
NULLS = [("ar1", 0.3), ("ar1", 0.6), ("ar1", 0.85), ("ar2", 0.0), ("pink", 0.0), ("drift", 0.3)]


def page_run(model: str) -> None:
    """The page's model source with its defaults, as the explorer's job computes it."""
    checkpoint = load_checkpoint(ROOT / "sample_models" / model, device="cpu")
    settings = from_dict({"org": {"source": "model"}})[0].org
    start, cpu = time.perf_counter(), time.process_time()
    result = compute(settings, checkpoint, lambda f, m: None)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"\n== page, model source on {model}: {result.report.settings['n_tr']} volumes, "
          f"{result.report.settings['n_ans']} ANs, K = {settings.k}: {seconds:.2f} s (CPU {cpu:.2f} s; target <= 10 s)")
    for name, c in result.report.controls.items():
        print(f"  {name} [{c['verdict_code']}]: {c['verdict']}")


def cli_run(models: list[str], volumes: int, tr: float = 1.5) -> None:
    """`brillm organization` on two checkpoints, 300 volumes of text the first wrote, a brain driven by its words."""
    first = load_checkpoint(ROOT / "sample_models" / models[0], device="cpu")
    words = int((volumes * tr - 12) * 2.5)
    text = model_text(first, words)
    stimulus = stimulus_from_text(text, 2.5)
    bold, templates, names = lexical_brain(stimulus.words, stimulus.onsets, tr, volumes, snr=1.0)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "story.txt").write_text(text, encoding="utf-8")
        np.save(d / "bold.npy", bold)
        (d / "networks.csv").write_text(",".join(f'"{n}"' for n in names) + "\n" + "\n".join(
            ",".join(f"{v:g}" for v in row) for row in templates) + "\n", encoding="utf-8")
        args = ["organization", *(str(ROOT / "sample_models" / m) for m in models), "--stimulus", str(d / "story.txt"),
                "--tr", str(tr), "--volumes", str(volumes), "--brain", str(d / "bold.npy"),
                "--templates", str(d / "networks.csv"), "-o", str(d / "out")]
        start, cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
            code = brillm(args)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"\n== command line, {' and '.join(models)}: {volumes} volumes, {bold.shape[1]} voxels, {len(stimulus.words)} "
          f"words: {seconds:.1f} s (CPU {cpu:.1f} s; target <= 60 s), exit {code}")
    for line in out.getvalue().splitlines():
        if "control [" in line:
            print("  " + line.strip())


def recovery(preset: str, k: int, seed: int, n_perm: int) -> None:
    """One simulator run: time per stage, recovery (brain side first), calibration, verdicts and warnings."""
    stamps: list[tuple[float, str]] = []
    result = run_simulation(k, seed=seed, n_perm=n_perm, stability_seeds=(seed + 1,), lexical_control=True,
                            progress=lambda f, m: stamps.append((time.perf_counter(), m)), **PRESETS[preset])
    sim, f, rep = result.data, result.figures, result.report
    print(f"\n== {preset} preset, K = {k}: {sim.responses.shape[0]} TRs, {sim.responses.shape[1]} ANs, "
          f"{sim.bold.shape[1]} voxels; whole pipeline {result.seconds:.2f} s")
    stages: dict[str, float] = {}
    for (t0, message), (t1, _) in zip(stamps, stamps[1:]):
        stages[message.split(":")[0]] = stages.get(message.split(":")[0], 0.0) + t1 - t0
    print("  " + "; ".join(f"{stage} {seconds:.2f} s" for stage, seconds in stages.items()))
    print(f"  brain side: Dice mean {f['dice_mean']:.3f} (min {f['dice_min']:.3f}); network match accuracy "
          f"{f['network_match_accuracy']:.2f}")
    if f["power_warning"]:
        print(f"  WARNING: {f['power_warning']}")
    print(f"  calibration on null voxels: p < .05 in {100 * f['null_p05_rate']:.2f} % (nominal 5 %); FDR-significant "
          f"{100 * f['false_positive_rate']:.2f} %, in {f['null_fdr_atoms']} of {k} atoms")
    print(f"  model side: matched atom |r| min {f['atom_abs_r_min']:.3f}; sub-group accuracy "
          f"{f['subgroup_accuracy']:.4f}")
    print(f"  phase null: {rep.phase_null['verdict']}; measured null rate {100 * rep.phase_null['null_p05_rate']:.2f} %")
    print(f"  lexical control [{rep.controls['lexical']['verdict_code']}]: {rep.controls['lexical']['verdict']}")
    for warning in rep.warnings:
        print(f"  WARNING: {warning}")


def null_data(kind: str, rho: float, n_tr: int, n_voxels: int, rng: np.random.Generator) -> np.ndarray:
    """Pure noise, or AR(1) noise plus a linear drift of up to 3 noise SDs per voxel ("drift")."""
    if kind == "drift":
        return simulate_noise("ar1", n_tr, n_voxels, rng, rho) + np.linspace(-1.5, 1.5, n_tr)[:, None] * rng.uniform(
            -1, 1, n_voxels)
    return simulate_noise(kind, n_tr, n_voxels, rng, rho)


def calibration_table(lengths: list[int], n_voxels: int, seed: int) -> None:
    """p < .05 and p < .001 rates (and atoms with FDR hits) of 8 smooth atoms on complete nulls."""
    print(f"\n== calibration on complete nulls ({date.today().isoformat()}): 8 smooth atoms, {n_voxels} voxels;"
          " % of (atom, voxel) pairs with p < .05 / p < .001, then atoms (of 8) with any FDR hit")
    print("  volumes  noise        " + "".join(f"{m:>24}" for m in METHODS))
    for n_tr in lengths:
        for kind, rho in NULLS:
            rng = np.random.default_rng(seed)
            atoms = gaussian_filter1d(rng.standard_normal((n_tr, 8)), 3, axis=0)
            y = null_data(kind, rho, n_tr, n_voxels, rng)
            cells = []
            for method in METHODS:
                enc = fit_encoding(atoms, y, 1.5, method=method)
                hits = int(enc.significant.any(axis=1).sum())
                cells.append(f"{100 * (enc.p < 0.05).mean():5.2f} / {100 * (enc.p < 0.001).mean():4.2f} ({hits})")
            label = kind + (f" {rho}" if kind in ("ar1", "drift") else "")
            print(f"  {n_tr:7d}  {label:<11}" + "".join(f"{c:>24}" for c in cells))


def verdict_nulls(lengths: list[int], n_runs: int, seed: int) -> None:
    """How often each control test's p falls below .05 on complete nulls (model, control and brain unrelated)."""
    print(f"\n== control tests on complete nulls ({n_runs} runs each): share of p <= .05 (nominal 5 %)")
    for n_tr in lengths:
        for kind, rho in NULLS:
            hits = np.zeros(3)
            for run in range(n_runs):
                rng = np.random.default_rng(seed + run)
                mix = rng.standard_normal((2, 60, 120))
                model, control = (gaussian_filter1d(rng.standard_normal((n_tr, 60)), 2, axis=0) @ m for m in mix)
                templates = np.repeat(np.eye(2), 50, axis=0)
                rep = run_organization(model, null_data(kind, rho, n_tr, 100, rng), templates, tr=1.5, k=4, n_perm=10,
                                       stability_seeds=(), n_phase_null=0, controls={"lexical": control})
                c = rep.controls["lexical"]
                hits += [c["p_model"] <= 0.05, c["p_control"] <= 0.05, c["p_added_by_model"] <= 0.05]
            label = kind + (f" {rho}" if kind in ("ar1", "drift") else "")
            print(f"  {n_tr:4d} volumes {label:<10} p_model {100 * hits[0] / n_runs:5.1f} %  p_control "
                  f"{100 * hits[1] / n_runs:5.1f} %  p_added {100 * hits[2] / n_runs:5.1f} %")


def main() -> None:
    """Where people wait, then the presets, then the calibration tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a reduced run that checks the benchmark works")
    ap.add_argument("--k", type=int, nargs="+", default=[8])
    ap.add_argument("--presets", nargs="*", choices=tuple(PRESETS), default=list(PRESETS))
    ap.add_argument("--n-perm", type=int, default=1000)
    ap.add_argument("--null-volumes", type=int, nargs="+", default=[300, 150, 100, 57])
    ap.add_argument("--null-voxels", type=int, default=1000)
    ap.add_argument("--verdict-nulls", type=int, default=0, help="runs per cell of the control tests' null table")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.quick:
        args.presets, args.null_volumes, args.null_voxels, args.n_perm = [], [100], 200, 200
    page_run("kjv-final")
    cli_run(["kjv-early", "kjv-final"], 100 if args.quick else 300)
    for preset in args.presets:
        for k in args.k:
            recovery(preset, k, args.seed, args.n_perm)
    calibration_table(args.null_volumes, args.null_voxels, args.seed)
    if args.verdict_nulls:
        verdict_nulls(args.null_volumes, args.verdict_nulls, args.seed)


if __name__ == "__main__":
    main()
