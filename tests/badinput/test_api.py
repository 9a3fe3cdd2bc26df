"""The corpus against the Python API: every case is a BriLLMError subclass with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from brillm_core import (BriLLMError, CheckpointError, DecodeSettings, PromptError, Trace, import_release,
                         load_checkpoint, recall_activation)

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
], ids=["negative-new-tokens", "nan-temperature", "top-k-0", "infinite-start", "start-wrong-width",
        "absurd-new-tokens", "binary-bytes", "float-ids", "recall-0-hops", "recall-negative-branch",
        "trace-json-wrong-types", "trace-json-binary", "trace-json-other-schema"])
def test_bad_arguments_raise_brillm_errors(good, call) -> None:
    with pytest.raises(BriLLMError):
        call(good)
