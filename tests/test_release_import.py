"""Import of the release's file formats, using fixtures the tests write themselves."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from brillm_core import CheckpointError, DecodeSettings, import_release, load_checkpoint, propagate
from brillm_core.tokenizer import train_bpe

from .reference import ReferenceBriLLM, row_map

TOKENS = ["<unk>", "a", "b", "c", "d", "e"]


def write_release(tmp: Path, counts: dict, rows: int | None = None, V: int = 6, d: int = 4, seed: int = 0) -> dict[str, Path]:
    """Vocabulary, count table and a state_dict in the release's formats."""
    gen = torch.Generator().manual_seed(seed)
    tokens = TOKENS[:V]
    if rows is None:
        zeros = sum(1 for s in counts for t, c in counts[s].items() if c == 0)
        rows = V * V - zeros + 1
    state = {
        "weights": torch.rand(rows, d, d, generator=gen) - 0.5,
        "biases": torch.rand(rows, 1, d, generator=gen) - 0.5,
        "node_bias": torch.rand(V, 1, d, generator=gen) - 0.5,
        "positions": torch.rand(1, 512, 1, generator=gen) + 0.5,
    }
    paths = {"weights": tmp / "model.bin", "vocab": tmp / "vocab.json", "counts": tmp / "counts.json"}
    torch.save(state, paths["weights"])
    paths["vocab"].write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    paths["counts"].write_text(json.dumps(counts))
    return paths


def sample_counts() -> dict:
    """Counts with zeros, positive values and missing entries (missing edges own a row)."""
    rng = np.random.default_rng(1)
    counts = {}
    for s in TOKENS:
        counts[s] = {t: int(rng.integers(0, 3)) for t in TOKENS if rng.random() < 0.9}
    return counts


def test_import_maps_every_edge_like_the_release(tmp_path: Path) -> None:
    counts = sample_counts()
    paths = write_release(tmp_path, counts)
    ckpt = import_release(paths["weights"], paths["vocab"], paths["counts"], tmp_path / "out")
    own = np.array([[counts[s].get(t, None) != 0 for t in TOKENS] for s in TOKENS])
    expected = row_map(own)
    loaded = load_checkpoint(tmp_path / "out")
    for (s, t), row in expected.items():
        assert int(loaded.model.edges.rows(torch.tensor(s), torch.tensor(t))) == row, (s, t)
    state = torch.load(paths["weights"], weights_only=True)
    for key in ("weights", "biases", "node_bias", "positions"):
        assert torch.equal(getattr(loaded.model, key), state[key])
    # The imported model computes what the reference computes from the raw release files.
    ref = ReferenceBriLLM(state["weights"], state["biases"], state["node_bias"], state["positions"], own)
    trace = propagate(loaded.model, [1, 2, 3], DecodeSettings(max_new_tokens=4, release_decoder=True))
    assert trace.path.tolist() == ref.greedy([1, 2, 3], 4, release=True)
    steps = ref.run(trace.path.tolist(), release=True)
    for i, step in enumerate(steps):
        np.testing.assert_allclose(trace.energies[i].numpy(), step["energies"], atol=1e-5, equal_nan=True)
    assert loaded.tokenizer.kind == "char" and loaded.config.unk_id == 0
    assert ckpt.metadata["provenance"]["counts_file"] == "counts.json"


def test_import_with_bpe_tokenizer(tmp_path: Path) -> None:
    tok = train_bpe(["the cat sat on the mat " * 20], 262)
    vocab = {t: i for i, t in enumerate(tok.tokens())}
    V = len(vocab)
    counts = {t: {u: 0 for u in list(vocab)[:3]} for t in vocab}
    state = {"weights": torch.zeros(V * V - 3 * V + 1, 2, 2), "biases": torch.zeros(V * V - 3 * V + 1, 1, 2),
             "node_bias": torch.zeros(V, 1, 2), "positions": torch.ones(1, 512, 1)}
    torch.save(state, tmp_path / "w.bin")
    (tmp_path / "v.json").write_text(json.dumps(vocab))
    (tmp_path / "c.json").write_text(json.dumps(counts))
    tok.save(tmp_path)
    import_release(tmp_path / "w.bin", tmp_path / "v.json", tmp_path / "c.json", tmp_path / "out", tokenizer=tmp_path / "tokenizer.json")
    loaded = load_checkpoint(tmp_path / "out")
    assert loaded.tokenizer.kind == "bpe" and loaded.encode(" the cat").ids == tok.encode(" the cat").ids
    with pytest.raises(CheckpointError, match="multi-character tokens"):
        import_release(tmp_path / "w.bin", tmp_path / "v.json", tmp_path / "c.json", tmp_path / "out2")


class Payload:
    """Pickling this runs code on load, unless the loader refuses non-tensor objects."""

    marker: str = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    paths = write_release(tmp_path, sample_counts())
    marker = tmp_path / "pwned"
    Payload.marker = str(marker)
    torch.save({"weights": Payload()}, paths["weights"])
    with pytest.raises(CheckpointError, match="refusing"):
        import_release(paths["weights"], paths["vocab"], paths["counts"], tmp_path / "out")
    # A plain pickle (not a torch zip) with a payload is refused too.
    paths["weights"].write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError):
        import_release(paths["weights"], paths["vocab"], paths["counts"], tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "damage,message",
    [
        ("truncate_weights", "truncated or corrupt"),
        ("rows", "count table gives"),
        ("node_bias", "node_bias has shape"),
        ("counts_unknown_token", "not in the vocabulary"),
        ("counts_truncated", "not valid JSON"),
        ("vocab_ids", "0..5"),
        ("missing_key", "lacks the release's keys"),
    ],
)
def test_inconsistent_release_files_give_clear_errors(tmp_path: Path, damage: str, message: str) -> None:
    counts = sample_counts()
    paths = write_release(tmp_path, counts)
    if damage == "truncate_weights":
        data = paths["weights"].read_bytes()
        paths["weights"].write_bytes(data[: len(data) // 2])
    elif damage == "rows":
        write_release(tmp_path, counts, rows=5)
    elif damage == "node_bias":
        state = torch.load(paths["weights"], weights_only=True)
        state["node_bias"] = torch.zeros(7, 1, 4)
        torch.save(state, paths["weights"])
    elif damage == "counts_unknown_token":
        counts["zz"] = {"a": 0}
        paths["counts"].write_text(json.dumps(counts))
    elif damage == "counts_truncated":
        paths["counts"].write_text(json.dumps(counts)[:40])
    elif damage == "vocab_ids":
        paths["vocab"].write_text(json.dumps({t: i + 1 for i, t in enumerate(TOKENS)}))
    elif damage == "missing_key":
        state = torch.load(paths["weights"], weights_only=True)
        del state["positions"]
        torch.save(state, paths["weights"])
    with pytest.raises(CheckpointError, match=message):
        import_release(paths["weights"], paths["vocab"], paths["counts"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_existing_output_directory_is_refused(tmp_path: Path) -> None:
    paths = write_release(tmp_path, sample_counts())
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="already exists"):
        import_release(paths["weights"], paths["vocab"], paths["counts"], tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
