"""`brillm organization` end to end: simulator, one and two tiny checkpoints, and bad inputs."""
import json
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brillm_core import Checkpoint, CharTokenizer, random_model
from brillm_core.cli import main
from brillm_core.organization import cli as org_cli
from brillm_core.organization.encoding import METHODS
from brillm_core.organization.matching import SPATIAL_NULL, VOXEL_NULL
from brillm_core.organization.pipeline import ENCODINGS
from brillm_core.organization.responses import POOLING
from brillm_core.organization.simulate import ATOM_EDGES, NOISE_KINDS

CHARS = ["<unk>"] + list(string.ascii_lowercase + " .,")
SIM = ["--n-tr", "120", "--nodes", "16", "--units", "8", "--voxels", "400", "--voxels-per-atom", "40",
       "--k-true", "4", "-k", "4", "--n-perm", "100", "--phase-null", "2"]
N_TR, N_VOX = 40, 90


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Two checkpoints of one vocabulary, a 140-word stimulus (56 s), 40 volumes of TR 1.5 s, templates."""
    root = tmp_path_factory.mktemp("org")
    paths = {}
    for seed in (0, 1):
        model = random_model(len(CHARS), 4, 0.3, seed=seed, max_positions=64)
        paths[f"m{seed}"] = Checkpoint(model, CharTokenizer(CHARS)).save(root / f"m{seed}")
    rng = np.random.default_rng(0)
    (root / "story.txt").write_text(" ".join("".join(rng.choice(list("abcdefg"), 3)) for _ in range(140)), encoding="utf-8")
    np.save(root / "brain.npy", rng.standard_normal((N_TR, N_VOX)))
    pd.DataFrame(np.repeat(np.eye(3), N_VOX // 3, axis=0), columns=["Auditory", "Language", "Visual"]).to_csv(
        root / "templates.csv", index=False)
    paths.update(root=root, story=root / "story.txt", brain=root / "brain.npy", templates=root / "templates.csv")
    return paths


def real_args(inputs, out: Path, *extra: str, models=("m0",)) -> list[str]:
    return ["organization", *(str(inputs[m]) for m in models), "--stimulus", str(inputs["story"]), "--tr", "1.5",
            "--volumes", str(N_TR), "--brain", str(inputs["brain"]), "--templates", str(inputs["templates"]),
            "-k", "3", "--n-perm", "50", "--phase-null", "2", "-o", str(out), *extra]


def test_choices_match_the_pipeline():
    assert org_cli.POOLING == POOLING and org_cli.METHODS == METHODS
    assert org_cli.ENCODINGS == ENCODINGS and org_cli.NOISE_KINDS == NOISE_KINDS and org_cli.ATOM_EDGES == ATOM_EDGES


def test_simulate_prints_recovery_and_writes_report(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["organization", "--simulate", *SIM, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "matched atoms |r| min" in printed and "sub-group accuracy" in printed and "Dice" in printed
    assert "(one-to-one" in printed and "calibration (voxels coupled to no atom)" in printed and "p < .05 in" in printed
    assert "simulator (default)" in printed and "departures" not in printed and "phase null:" in printed
    recovery = json.loads((out / "recovery.json").read_text())
    assert recovery["atom_abs_r_min"] >= 0.95 and recovery["subgroup_accuracy"] >= 0.95
    report = json.loads((out / "report.json").read_text())
    assert report["formulas"]["diversity"].startswith("diversity =")
    under = pd.read_csv(out / "figures" / "atoms_under_words.csv")
    assert len(under) == 120 and list(under.columns[:3]) == ["volume", "time_s", "words"]
    assert pd.read_csv(out / "figures" / "similarity_r.csv").shape == (4, 5)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary directory left
    assert main(["organization", "--simulate", *SIM, "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_simulate_prints_the_brain_side_first_and_says_when_power_is_too_low(tmp_path, capsys):
    """With no coupling at all the atoms are still recovered from the neurons; the maps find nothing, and that is
    printed first, with a warning."""
    assert main(["organization", "--simulate", *SIM, "--coupling-snr", "0", "0", "-o", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    brain, model = printed.index("recovery of the brain side"), printed.index("recovery of the model side")
    assert brain < model and "matched atoms |r| min 0.9" in printed[model:]
    assert "warning: power is too low to recover the maps" in printed[brain:model] and "(next to nothing)" in printed


def test_simulate_hard_preset_and_flags(tmp_path, capsys):
    out = tmp_path / "hard"
    assert main(["organization", "--simulate", *SIM, "--hard", "--noise", "ar2", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "simulator (hard preset)" in printed and "departures:" in printed and "noise ar2" in printed
    assert "hrf_peak [4.0, 8.0]" in printed and "calibration" in printed and "smooth Gaussian random fields" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["simulation"]["noise"] == "ar2" and report["matching_null"] == SPATIAL_NULL
    assert main(["organization", *SIM[:2], "--hard", "-o", str(tmp_path / "x")]) == 1
    assert "apply to the simulator only" in capsys.readouterr().err


def test_real_mode_one_checkpoint(inputs, tmp_path, capsys):
    out = tmp_path / "one"
    assert main(real_args(inputs, out)) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["controls"]) == {"lexical", "untrained"}
    assert report["settings"]["responses"] == "node_gated" and report["settings"]["n_tr"] == N_TR
    timeline = pd.read_csv(out / "figures" / "timeline.csv", keep_default_na=False)
    assert timeline["time_s"].is_monotonic_increasing and timeline["word_index"].max() == 139
    printed = capsys.readouterr().out
    assert "lexical control [" in printed and "stability:" in printed
    assert "phase null: 2 phase-randomised atom sets cannot show it: the smallest p they allow is 0.333" in printed
    assert "measured null rate: phase-randomised atoms reach p < .05 in" in printed
    assert "does the part of the model's atoms that the lexical control cannot give add" in printed
    assert f"matching null: {VOXEL_NULL}" in printed


def test_fdr_q_and_encoding_reach_checkpoint_runs(inputs, tmp_path):
    """--fdr-q used to be dropped for checkpoints: brain data that follow the model must give fewer hits at 0.001."""
    from brillm_core import load_checkpoint
    from brillm_core.organization.checkpoints import simulated_brain
    from brillm_core.organization.stimulus import read_stimulus, stimulus_responses, tokenize_stimulus

    ckpt = load_checkpoint(inputs["m0"], device="cpu")
    timeline = tokenize_stimulus(ckpt.tokenizer, read_stimulus(inputs["story"]))
    responses = stimulus_responses(ckpt.model, timeline, 1.5, N_TR).matrix
    bold, _, _ = simulated_brain(responses, 1.5, n_signals=3, n_voxels=N_VOX, voxels_per_signal=30, snr=1.0)
    np.save(tmp_path / "follows.npy", bold)
    counts = {}
    for q in ("0.05", "0.001"):
        args = replace(real_args(inputs, tmp_path / q, "--no-untrained", "--fdr-q", q, "--encoding", "per-atom"),
                       str(inputs["brain"]), str(tmp_path / "follows.npy"))
        assert main(args) == 0
        report = json.loads((tmp_path / q / "report.json").read_text())
        assert report["settings"]["fdr_q"] == float(q) and report["settings"]["joint"] is False
        counts[q] = int(pd.read_csv(tmp_path / q / "maps.csv").filter(like="significant_").to_numpy().sum())
    assert counts["0.05"] > counts["0.001"] > 0


def test_real_mode_compares_checkpoints(inputs, tmp_path, capsys):
    out = tmp_path / "two"
    assert main(real_args(inputs, out, "--responses", "landscape", "--pool", "mean", "--no-untrained",
                          models=("m0", "m1"))) == 0
    table = pd.read_csv(out / "comparison.csv")
    assert table["checkpoint"].tolist() == ["0-m0", "1-m1"] and "consistency" in table
    assert (out / "0-m0" / "report.json").is_file() and (out / "1-m1" / "similarity.csv").is_file()
    assert json.loads((out / "1-m1" / "report.json").read_text())["settings"]["n_ans"] == len(CHARS)


def test_nan_and_constant_voxels_are_excluded_and_reported(inputs, tmp_path, capsys):
    data = np.load(inputs["brain"])
    data[3, 0] = np.nan
    data[:, 1] = 2.0
    np.save(tmp_path / "holes.npy", data)
    args = real_args(inputs, tmp_path / "out", "--no-untrained")
    args[args.index(str(inputs["brain"]))] = str(tmp_path / "holes.npy")
    assert main(args) == 0
    assert "1 voxel(s) with NaN/inf and 1 constant" in capsys.readouterr().err
    brain = json.loads((tmp_path / "out" / "report.json").read_text())["brain"]
    assert brain["nan_voxels"] == [0] and brain["constant_voxels"] == [1]
    maps = pd.read_csv(tmp_path / "out" / "maps.csv")
    assert maps["t_0"].iloc[:2].isna().all() and not maps["used"].iloc[:2].any()


def replace(args: list[str], old: str, new: str) -> list[str]:
    return [new if a == old else a for a in args]


@pytest.mark.parametrize("change, message", [
    (lambda a, i, t: replace(a, str(N_TR), "50"), "brain data has 40 volumes but the stimulus at TR 1.5 s gives 50"),
    (lambda a, i, t: replace(a, str(N_TR), "20"), "longer than the recording"),
    (lambda a, i, t: replace(a, "3", "60"), "K = 60 exceeds"),
    (lambda a, i, t: replace(a, str(i["templates"]), str(t)), "templates have 50 voxels but the brain data has 90"),
    (lambda a, i, t: [x for x in a if x != "--brain" and x != str(i["brain"])], "missing --brain"),
])
def test_bad_inputs(inputs, tmp_path, capsys, change, message):
    small = tmp_path / "t.npy"
    np.save(small, np.eye(50, 2))
    out = tmp_path / "bad"
    assert main(change(real_args(inputs, out, "--no-untrained"), inputs, small)) == 1
    assert message in capsys.readouterr().err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_output_dir_exists_before_any_work(inputs, tmp_path, capsys):
    out = tmp_path / "exists"
    out.mkdir()
    assert main(real_args(inputs, out)) == 1
    assert "already exists" in capsys.readouterr().err


def to_grid(inputs, root: Path) -> dict[str, Path]:
    """The matrix inputs as NIfTI files: the 90 voxels scattered over a 6x5x4 grid by a mask, junk
    outside it, the templates as a label image, and names as 'label name' lines in scrambled order."""
    import nibabel as nib

    rng = np.random.default_rng(1)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    mask = np.zeros(120, dtype=bool)
    mask[rng.choice(120, N_VOX, replace=False)] = True
    mask = mask.reshape(6, 5, 4)
    bold = rng.standard_normal((6, 5, 4, N_TR)) * 100
    bold[mask] = np.load(inputs["brain"]).T
    labels = rng.integers(1, 9, (6, 5, 4))
    labels[mask] = np.repeat([1, 2, 3], N_VOX // 3)
    paths = {"brain": root / "bold.nii.gz", "mask": root / "mask.nii", "labels": root / "labels.nii.gz", "names": root / "names.txt"}
    nib.save(nib.Nifti1Image(bold.astype(np.float32), affine), str(paths["brain"]))
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), str(paths["mask"]))
    nib.save(nib.Nifti1Image(labels.astype(np.int16), affine), str(paths["labels"]))
    paths["names"].write_text("3 Visual\n1 Auditory\n2 Language\n", encoding="utf-8")
    return {**paths, "mask_array": mask}


def test_nifti_inputs_give_the_matrix_result_and_map_images(inputs, tmp_path):
    import nibabel as nib

    files = to_grid(inputs, tmp_path)
    assert main(real_args(inputs, tmp_path / "matrix")) == 0
    args = replace(replace(real_args(inputs, tmp_path / "nifti"), str(inputs["brain"]), str(files["brain"])),
                   str(inputs["templates"]), str(files["labels"]))
    assert main([*args, "--mask", str(files["mask"]), "--network-names", str(files["names"])]) == 0
    for table in ("maps", "measures"):
        a, b = (pd.read_csv(tmp_path / run / f"{table}.csv") for run in ("matrix", "nifti"))
        pd.testing.assert_frame_equal(a, b, rtol=1e-5, atol=1e-6)  # the image holds float32
    a, b = (pd.read_csv(tmp_path / run / "similarity.csv") for run in ("matrix", "nifti"))
    pd.testing.assert_frame_equal(a[["atom", "network", "pearson_r", "dice"]], b[["atom", "network", "pearson_r", "dice"]],
                                  rtol=1e-5)  # same statistics; the NIfTI run's null keeps spatial smoothness
    assert json.loads((tmp_path / "nifti" / "report.json").read_text())["matching_null"] == SPATIAL_NULL
    assert json.loads((tmp_path / "matrix" / "report.json").read_text())["matching_null"] == VOXEL_NULL
    beta = nib.load(str(tmp_path / "nifti" / "maps" / "beta.nii.gz"))
    values = np.asarray(beta.dataobj)
    assert values.shape == (6, 5, 4, 3) and np.allclose(beta.affine, np.diag([2.0, 2.0, 2.0, 1.0]))
    maps = pd.read_csv(tmp_path / "nifti" / "maps.csv")
    assert np.allclose(values[files["mask_array"]], maps[["beta_0", "beta_1", "beta_2"]].to_numpy(), atol=1e-5)
    assert np.isnan(values[~files["mask_array"]]).all()
    # the same templates as a 4-D stack of network maps, named by plain lines
    stack = np.zeros((6, 5, 4, 3), dtype=np.float32)
    stack[files["mask_array"]] = pd.read_csv(inputs["templates"]).to_numpy()
    nib.save(nib.Nifti1Image(stack, np.diag([2.0, 2.0, 2.0, 1.0])), str(tmp_path / "stack.nii.gz"))
    (tmp_path / "plain.txt").write_text("Auditory\nLanguage\nVisual\n", encoding="utf-8")
    args = replace(replace(args, str(files["labels"]), str(tmp_path / "stack.nii.gz")), str(tmp_path / "nifti"), str(tmp_path / "stack"))
    assert main([*args, "--mask", str(files["mask"]), "--network-names", str(tmp_path / "plain.txt")]) == 0
    pd.testing.assert_frame_equal(*(pd.read_csv(tmp_path / run / "similarity.csv") for run in ("nifti", "stack")), rtol=1e-5)


@pytest.mark.parametrize("change, message", [
    (lambda a, f: [*a, "--mask", str(f["mask"])], "--mask applies to NIfTI brain data only"),
    (lambda a, f: replace(a, str(a[a.index("--brain") + 1]), str(f["brain"])), "NIfTI brain data needs --mask"),
    (lambda a, f: replace(a, str(a[a.index("--templates") + 1]), str(f["labels"])), "template images need NIfTI brain data"),
    (lambda a, f: [*replace(a, str(a[a.index("--brain") + 1]), str(f["brain"])), "--mask", str(f["small_mask"])],
     "not on the mask's grid"),
    (lambda a, f: [*replace(a, str(a[a.index("--brain") + 1]), str(f["brain"])), "--mask", str(f["shifted_mask"])],
     "another grid than the mask"),
    (lambda a, f: [*replace(a, str(a[a.index("--brain") + 1]), str(f["brain"])), "--mask", str(f["empty_mask"])],
     "selects no voxel"),
    (lambda a, f: [*replace(a, str(a[a.index("--brain") + 1]), str(f["mask"])), "--mask", str(f["mask"])],
     "must be a 4-D image"),
    (lambda a, f: [*replace(a, str(a[a.index("--brain") + 1]), str(f["brain"])), "--mask", str(f["names"])],
     "cannot read mask"),
])
def test_bad_nifti_inputs_are_clear_errors(inputs, tmp_path, capsys, change, message):
    import nibabel as nib

    files = to_grid(inputs, tmp_path)
    mask = files["mask_array"].astype(np.uint8)
    nib.save(nib.Nifti1Image(mask[:5], np.eye(4)), str(tmp_path / "small.nii"))
    nib.save(nib.Nifti1Image(mask, np.diag([3.0, 2.0, 2.0, 1.0])), str(tmp_path / "shifted.nii"))
    nib.save(nib.Nifti1Image(mask * 0, np.diag([2.0, 2.0, 2.0, 1.0])), str(tmp_path / "empty.nii"))
    files.update(small_mask=tmp_path / "small.nii", shifted_mask=tmp_path / "shifted.nii", empty_mask=tmp_path / "empty.nii")
    assert main(change(real_args(inputs, tmp_path / "out"), files)) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
