"""Native checkpoints: round trip, atomic saving, and every kind of broken file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import brillm_core.checkpoint as checkpoint_module
from brillm_core import CheckpointError, DecodeSettings, load_checkpoint

from .cli_runner import brillm
from .conftest import make_checkpoint


def test_round_trip_keeps_parameters_edges_and_behaviour(tmp_path: Path) -> None:
    ckpt = make_checkpoint(seed=3)
    ckpt.metadata = {"history": [{"step": 1, "loss": 2.5}]}
    ckpt.save(tmp_path / "m")
    loaded = load_checkpoint(tmp_path / "m")
    for key in ("weights", "biases", "node_bias", "positions", "edge_keys"):
        assert torch.equal(getattr(loaded.model, key), getattr(ckpt.model, key))
    assert loaded.metadata == ckpt.metadata
    settings = DecodeSettings(max_new_tokens=5)
    assert torch.equal(loaded.trace("abc", settings).energies, ckpt.trace("abc", settings).energies)
    assert loaded.model_id == load_checkpoint(tmp_path / "m").model_id


def test_float16_storage_halves_the_file_and_loads_as_float32(tmp_path: Path) -> None:
    ckpt = make_checkpoint(seed=3)
    full = (ckpt.save(tmp_path / "f32") / "model.safetensors").stat().st_size
    half = (ckpt.save(tmp_path / "f16", dtype=torch.float16) / "model.safetensors").stat().st_size
    assert half < 0.6 * full
    loaded = load_checkpoint(tmp_path / "f16")
    assert loaded.model.weights.dtype == torch.float32
    assert torch.allclose(loaded.model.weights, ckpt.model.weights, atol=1e-3)


def test_existing_directory_is_kept_unless_overwrite(tmp_path: Path) -> None:
    first, second = make_checkpoint(seed=1), make_checkpoint(seed=2)
    first.save(tmp_path / "m")
    with pytest.raises(CheckpointError, match="already exists"):
        second.save(tmp_path / "m")
    assert torch.equal(load_checkpoint(tmp_path / "m").model.weights, first.model.weights)
    second.save(tmp_path / "m", overwrite=True)
    assert torch.equal(load_checkpoint(tmp_path / "m").model.weights, second.model.weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_failed_save_leaves_the_previous_checkpoint_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_checkpoint(seed=1)
    first.save(tmp_path / "m")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module, "save_file", disk_full)
    with pytest.raises(OSError):
        make_checkpoint(seed=2).save(tmp_path / "m", overwrite=True)
    assert torch.equal(load_checkpoint(tmp_path / "m").model.weights, first.model.weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


@pytest.mark.parametrize(
    "damage,message",
    [
        ("missing_dir", "not found"),
        ("truncated_weights", "safetensors"),
        ("garbage_weights", "safetensors"),
        ("bad_config_json", "not valid JSON"),
        ("config_unknown_key", "unknown keys"),
        ("config_rows", "does not fit config.json"),
        ("no_tokenizer", "neither"),
        ("tokenizer_size", "tokenizer has"),
        ("nan_weights", "NaN"),
    ],
)
def test_broken_checkpoints_give_clear_errors(tmp_path: Path, damage: str, message: str) -> None:
    path = make_checkpoint().save(tmp_path / "m")
    weights = path / "model.safetensors"
    config = json.loads((path / "config.json").read_text())
    if damage == "missing_dir":
        path = tmp_path / "nope"
    elif damage == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "garbage_weights":
        weights.write_bytes(b"\x80\x04K\x01." * 10)  # a pickle, not safetensors
    elif damage == "bad_config_json":
        (path / "config.json").write_text("{")
    elif damage == "config_unknown_key":
        (path / "config.json").write_text(json.dumps({**config, "hiden_size": 3}))
    elif damage == "config_rows":
        (path / "config.json").write_text(json.dumps({**config, "num_rows": config["num_rows"] + 1}))
    elif damage == "no_tokenizer":
        (path / "chars.json").unlink()
    elif damage == "tokenizer_size":
        (path / "chars.json").write_text(json.dumps(["a", "b"]))
    elif damage == "nan_weights":
        from safetensors.torch import load_file, save_file

        tensors = load_file(str(weights))
        tensors["weights"][0, 0, 0] = float("nan")
        save_file(tensors, str(weights))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_model_id_is_stored_at_save_and_read_back_without_hashing(tmp_path: Path, monkeypatch) -> None:
    path = make_checkpoint(seed=3).save(tmp_path / "m")
    record = json.loads((path / "model_id.json").read_text())
    assert set(record["files"]) == {"config.json", "model.safetensors", "chars.json"}
    assert record["model_id"] == checkpoint_module.compute_model_id(path)

    def no_hashing(directory: Path) -> str:
        raise AssertionError("the stored id should have been used")

    monkeypatch.setattr(checkpoint_module, "compute_model_id", no_hashing)
    (path / "MODEL_CARD.md").write_text("a card written later")
    assert load_checkpoint(path).model_id == record["model_id"]


def test_a_changed_parameter_file_changes_the_id(tmp_path: Path) -> None:
    path = make_checkpoint(seed=3).save(tmp_path / "m")
    before = load_checkpoint(path).model_id
    make_checkpoint(seed=4).save(tmp_path / "other")
    weights = path / "model.safetensors"
    weights.write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())  # same size, new numbers
    assert load_checkpoint(path).model_id != before
    assert load_checkpoint(path).model_id == checkpoint_module.compute_model_id(path)


def test_old_checkpoints_get_their_id_from_the_parameter_files_only(tmp_path: Path) -> None:
    path = make_checkpoint(seed=3).save(tmp_path / "m")
    stored = json.loads((path / "model_id.json").read_text())["model_id"]
    (path / "model_id.json").unlink()
    (path / "MODEL_CARD.md").write_text("not part of the model")
    (path / "metadata.json").write_text('{"evaluation": {"perplexity": 3.0}}')
    assert load_checkpoint(path).model_id == stored


def test_fifo_subdirectory_and_dev_zero_link_in_a_checkpoint_are_never_read(tmp_path: Path) -> None:
    path = make_checkpoint(seed=3).save(tmp_path / "m")
    stored = json.loads((path / "model_id.json").read_text())["model_id"]
    os.mkfifo(path / "a-fifo")
    (path / "a-subdirectory").mkdir()
    (path / "zeros").symlink_to("/dev/zero")
    for recompute in (False, True):
        if recompute:
            (path / "model_id.json").unlink()
        ckpt = load_checkpoint(path)
        assert ckpt.model_id == stored
        assert ckpt.trace("ab", DecodeSettings(max_new_tokens=2)).model_id == stored
        info = brillm("info", str(path), "--json", text=True)
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["model_id"] == stored
