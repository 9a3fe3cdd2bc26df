"""The corpus against the Python API: every case is a BriLLMError subclass with a clear message."""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path

import pytest
import torch

from brillm_core import jsonfile
from brillm_core.tokenizer import MAX_BPE_LINE_CHARS, TokenizerError, train_bpe
from brillm_core import (BriLLMError, CheckpointError, DecodeSettings, PromptError, Trace, import_release,
                         incoming_energy, load_checkpoint, recall_activation)
from brillm_core.data import COUNTS_FILE, BigramCounts
from brillm_core.evaluate import EvaluationError, evaluate_path
from brillm_core.training import TrainingError, TrainSettings, train
from explorer.registry import Registry

from . import corpus


@pytest.mark.parametrize("name", sorted(corpus.CHECKPOINT_DAMAGE))
def test_broken_checkpoint_is_a_checkpoint_error(files, name: str) -> None:
    case = files[0][name]
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(case.path, device="cpu")
    assert case.message in str(info.value)
    assert not (case.path.parent / corpus.MARKER).exists()


@pytest.mark.parametrize("name", corpus.RELEASE_NAMES)
def test_disagreeing_release_files_are_refused(files, tmp_path: Path, name: str) -> None:
    case = files[1][name]
    with pytest.raises(BriLLMError) as info:
        import_release(case.weights, case.vocab, case.counts, tmp_path / "out", tokenizer=case.tokenizer)
    assert case.message in str(info.value)
    assert not (tmp_path / "out").exists() and not (case.weights.parent.parent / corpus.MARKER).exists()


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory):
    """A valid checkpoint to propagate bad prompts through."""
    return load_checkpoint(corpus.good_checkpoint(tmp_path_factory.mktemp("good") / "good"), device="cpu")


@pytest.mark.parametrize("name", sorted(corpus.PROMPTS))
def test_bad_prompts_fail_clearly_or_warn(good, name: str) -> None:
    prompt, expected = corpus.PROMPTS[name]
    kind, _, fragment = expected.partition(":")
    if kind == "error":
        with pytest.raises(PromptError, match=fragment):
            good.trace(prompt, DecodeSettings(max_new_tokens=3))
        return
    trace = good.trace(prompt, DecodeSettings(max_new_tokens=3))
    assert trace.num_steps >= 3
    assert bool(trace.unknown) == (kind == "warn")


@pytest.mark.parametrize("call", [
    lambda ck: DecodeSettings(max_new_tokens=-1),
    lambda ck: DecodeSettings(temperature=float("nan")),
    lambda ck: DecodeSettings(top_k=0),
    lambda ck: DecodeSettings(start_signal=(1.0, float("inf"))),
    lambda ck: ck.trace("ab", DecodeSettings(start_signal=(1.0,) * 7)),
    lambda ck: ck.trace("ab", DecodeSettings(max_new_tokens=10**9)),
    lambda ck: ck.trace(b"\xff\xfe", DecodeSettings()),
    lambda ck: ck.trace([1.5, 2], DecodeSettings()),
    lambda ck: recall_activation(ck.model, [1, 2], hops=0),
    lambda ck: recall_activation(ck.model, [1, 2], hops=2, branch=-1),
    lambda ck: Trace.from_json('{"schema": "brillm-trace", "version": 1, "path": "x"}'),
    lambda ck: Trace.from_json("\x00\x01"),
    lambda ck: Trace.from_json('{"schema": "other"}'),
    lambda ck: Trace.from_json("[" * 100_000),
    lambda ck: Trace.from_json('{"schema": "brillm-trace", "version": ' + "9" * 5000 + "}"),
], ids=["negative-new-tokens", "nan-temperature", "top-k-0", "infinite-start", "start-wrong-width",
        "absurd-new-tokens", "binary-bytes", "float-ids", "recall-0-hops", "recall-negative-branch",
        "trace-json-wrong-types", "trace-json-binary", "trace-json-other-schema", "trace-json-deep",
        "trace-json-5000-digits"])
def test_bad_arguments_raise_brillm_errors(good, call) -> None:
    with pytest.raises(BriLLMError):
        call(good)


def test_overflowing_weights_never_give_energies(tmp_path: Path) -> None:
    """3e38 weights are finite in float32 but overflow the signal: an error, not NaN energies or [UNK]s."""
    checkpoint = load_checkpoint(corpus.overflowing_checkpoint(tmp_path / "over"), device="cpu")
    with pytest.raises(BriLLMError, match="overflowed float32"):
        checkpoint.trace("ab", DecodeSettings(max_new_tokens=3))
    with pytest.raises(BriLLMError, match="overflowed float32"):
        checkpoint.trace("ab", DecodeSettings(max_new_tokens=3, greedy=False, seed=1))
    with pytest.raises(BriLLMError, match="overflowed float32 at step 0"):
        recall_activation(checkpoint.model, [1, 2], hops=2)
    with pytest.raises(BriLLMError, match="overflowed float32 at hop 1"):  # no context step to check first
        recall_activation(checkpoint.model, [1], hops=2)
    for context in ([1, 2], None):
        with pytest.raises(BriLLMError, match="overflowed float32"):
            incoming_energy(checkpoint.model, 3, context)
    ids = torch.tensor(checkpoint.encode("ab ba ab ba").ids)
    BigramCounts.from_stream(ids, checkpoint.config.vocab_size).save(checkpoint.path / COUNTS_FILE)
    with pytest.raises(BriLLMError, match="overflowed float32"):
        evaluate_path(checkpoint.path, _text(tmp_path), discount=0.5)


def _text(tmp_path: Path) -> Path:
    """A short held-out text."""
    (tmp_path / "text.txt").write_text("ab ba ab ba\n")
    return tmp_path / "text.txt"


@pytest.mark.parametrize("settings", [dict(temperature=1e-300, greedy=False), dict(seed=2**64), dict(seed=-1),
                                      dict(start_signal=(1e39, 0, 0, 0, 0, 0))],
                         ids=["temperature-1e-300", "seed-2**64", "seed-negative", "start-signal-past-float32"])
def test_decode_settings_out_of_range(settings: dict) -> None:
    with pytest.raises(BriLLMError):
        DecodeSettings(**settings)


@pytest.mark.parametrize("settings", [dict(seed=-1), dict(seed=2**63), dict(hidden_size=0), dict(lr=math.nan),
                                      dict(batch_size=0), dict(seq_len=1), dict(init_code=-1.0)])
def test_train_settings_out_of_range(settings: dict) -> None:
    name = next(iter(settings)).replace("_", "-")
    with pytest.raises(TrainingError, match=f"--{name} must be"):
        TrainSettings(**settings)


@pytest.mark.parametrize("discount", [math.nan, 2.0, -1.0, 1.0])
def test_kneser_ney_discount_outside_0_1_is_refused(good, tmp_path: Path, discount: float) -> None:
    with pytest.raises(EvaluationError, match=r"in \[0, 1\)"):
        evaluate_path(good.path, _text(tmp_path), discount=discount)
    assert "evaluations" not in json.loads((good.path / "metadata.json").read_text())


def test_train_onto_a_file_fails_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The output check comes before the tokeniser is trained (the first costly step)."""
    monkeypatch.setattr("brillm_core.training.loop.shared_tokenizer", lambda *a, **k: pytest.fail("training work started"))
    with pytest.raises(TrainingError, match="cannot write checkpoints"):
        train([_text(tmp_path)], _text(tmp_path) / "run", TrainSettings(tokenizer="char", max_positions=64, seq_len=8),
              progress=False)


def test_a_broken_checkpoint_is_never_the_stand_in(tmp_path: Path) -> None:
    """A link naming no listed checkpoint falls back to the first one that loads, not the first listed."""
    corpus.good_checkpoint(tmp_path / "a-broken")
    (tmp_path / "a-broken" / "model.safetensors").write_bytes(b"")
    corpus.good_checkpoint(tmp_path / "b-good")
    registry = Registry([tmp_path])
    assert registry.names() == ["a-broken", "b-good"]
    assert registry.usable_name() == "b-good" and registry.usable_name("b-good") == "b-good"
    (tmp_path / "b-good" / "model.safetensors").write_bytes(b"")
    assert registry.usable_name() == ""


TEN_MB = 10 * 2**20
SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"
ADVERSARIAL_JSON = {  # each about 10 MB; the first one never closes its string, which made the old check quadratic
    "escaped-quotes-never-closed": '"' + '\\"' * (TEN_MB // 2),
    "brackets": "[" * TEN_MB,
    "quotes": '"' * TEN_MB,
    "backslashes": '"' + "\\" * TEN_MB,
    "escaped-brackets-in-a-string": '["' + '\\"[' * (TEN_MB // 3),
    "closed-strings": '["a\\"]", ' * (TEN_MB // 10),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL_JSON))
def test_ten_megabytes_of_adversarial_json_are_checked_in_under_a_second(name: str) -> None:
    text = ADVERSARIAL_JSON[name]
    start = time.process_time()  # this process's CPU: what the check costs the server, whatever else runs
    with pytest.raises(BriLLMError):
        jsonfile.loads(text, "the file")
    assert time.process_time() - start < 1.0


@pytest.mark.parametrize("model", ["char", "bpe"])
def test_a_ten_megabyte_prompt_is_refused_before_it_is_tokenised(good, model: str) -> None:
    """The Python API: a prompt that cannot fit the position table is refused at once (it was tokenised first:
    12 s and 1.8 GB for BPE)."""
    checkpoint = good if model == "char" else load_checkpoint(SAMPLES / "kjv-early", device="cpu")
    start = time.process_time()
    with pytest.raises(PromptError, match="position table"):
        checkpoint.trace("word " * (TEN_MB // 5), DecodeSettings(max_new_tokens=3))
    assert time.process_time() - start < 0.5


def test_a_line_too_long_for_the_bpe_trainer_is_refused_before_training() -> None:
    """One line of 89 MB made the Rust trainer take 9.8 GB and abort the process."""
    start = time.process_time()
    with pytest.raises(TokenizerError, match="non-blank line 2 of the corpus has 1,048,577 characters"):
        train_bpe(["a short line", "a" * (MAX_BPE_LINE_CHARS + 1)], 300)
    assert time.process_time() - start < 1.0


def _nested(rng: random.Random, depth: int):
    """A random JSON value nesting at most ``depth`` levels, with strings full of brackets, quotes and backslashes."""
    if depth == 0 or rng.random() < 0.3:
        return "".join(rng.choice('[]{}"\\ab') for _ in range(rng.randint(0, 6)))
    if rng.random() < 0.5:
        return [_nested(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {_nested(rng, 0): _nested(rng, depth - 1) for _ in range(rng.randint(0, 3))}


def _depth(value) -> int:
    """Nesting depth of a parsed value."""
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def test_nesting_depth_counts_brackets_outside_strings_only() -> None:
    rng = random.Random(7)
    for _ in range(500):
        value = _nested(rng, rng.randint(0, 8))
        assert jsonfile.nesting_depth(json.dumps(value)) == _depth(value)
