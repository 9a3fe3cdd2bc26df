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
from brillm_core.organization.responses import POOLING

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


def test_simulate_prints_recovery_and_writes_report(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["organization", "--simulate", *SIM, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "matched atoms |r| min" in printed and "sub-group accuracy" in printed and "Dice" in printed
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


def test_real_mode_one_checkpoint(inputs, tmp_path, capsys):
    out = tmp_path / "one"
    assert main(real_args(inputs, out)) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["controls"]) == {"lexical", "untrained"}
    assert report["settings"]["responses"] == "node_gated" and report["settings"]["n_tr"] == N_TR
    timeline = pd.read_csv(out / "figures" / "timeline.csv", keep_default_na=False)
    assert timeline["time_s"].is_monotonic_increasing and timeline["word_index"].max() == 139
    assert "lexical control" in capsys.readouterr().out


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
