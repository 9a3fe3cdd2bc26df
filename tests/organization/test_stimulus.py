"""Stimulus handling: word timing, tokens per word, windows over the position table, pooling, bad input."""
import string

import numpy as np
import pytest

from brillm_core import Checkpoint, CharTokenizer, random_model
from brillm_core.organization.checkpoints import comparison_table, run_checkpoint, untrained_model
from brillm_core.organization.encoding import prepare_brain
from brillm_core.organization.responses import node_gated_responses, pool_to_trs
from brillm_core.organization.stimulus import (
    OrganizationError,
    check_fits,
    parse_transcript,
    read_stimulus,
    stimulus_from_text,
    stimulus_responses,
    tokenize_stimulus,
    words_per_tr,
)
from brillm_core.propagate import propagate

CHARS = ["<unk>"] + list(string.ascii_lowercase + " .,")


@pytest.fixture(scope="module")
def ckpt() -> Checkpoint:
    """A character model with a position table of 16, so that short stimuli need several windows."""
    return Checkpoint(random_model(len(CHARS), 4, 0.3, seed=1, max_positions=16), CharTokenizer(CHARS))


def test_plain_text_timing():
    s = stimulus_from_text("the cat\n sat  down", 2.0, start=1.0)
    assert s.words == ("the", "cat", "sat", "down")
    np.testing.assert_allclose(s.onsets, [1.0, 1.5, 2.0, 2.5])
    np.testing.assert_allclose(s.offsets, [1.5, 2.0, 2.5, 3.0])


def test_transcript_header_offsets_and_defaults():
    s = parse_transcript("onset,word\n0.5,hello\n1.25,world\n2.0,again\n")
    assert s.words == ("hello", "world", "again")
    np.testing.assert_allclose(s.offsets, [1.25, 2.0, 2.75])  # last word: median interval 0.75
    t = parse_transcript("a\t0\t0.2\nb\t1\n")
    np.testing.assert_allclose(t.offsets, [0.2, 2.0])


@pytest.mark.parametrize("text, match", [
    ("", "empty"), ("word,onset\n", "no words"), ("a,1\nb,0.5\n", "must not decrease"), ("a,1\nb,x\n", "row 2: onset .x. is not a number"),
    ("a,-1\n", ">= 0"), ("a,1,0.5\n", "offset is before"), ("word,time\na,1\n", "lacks column"), ("a\n", "needs a word"),
])
def test_transcript_errors(text, match):
    with pytest.raises(OrganizationError, match=match):
        parse_transcript(text)


def test_files_utf8_and_empty(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9 au lait")
    with pytest.raises(OrganizationError, match="not valid UTF-8"):
        read_stimulus(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\t ", encoding="utf-8")
    with pytest.raises(OrganizationError, match="empty"):
        read_stimulus(empty)
    tsv = tmp_path / "t.tsv"
    tsv.write_text("word\tonset\nhi\t0\n", encoding="utf-8")
    assert read_stimulus(transcript_path=tsv).words == ("hi",)
    with pytest.raises(OrganizationError, match="not found"):
        read_stimulus(tmp_path / "missing.txt")


def test_tokens_split_their_word_interval(ckpt):
    s = stimulus_from_text("ab c", 1.0)
    tl = tokenize_stimulus(ckpt.tokenizer, s)
    assert [ckpt.token(int(i)) for i in tl.ids] == ["a", "b", " ", "c"]  # the separator belongs to the next word
    np.testing.assert_allclose(tl.times, [0.0, 0.5, 1.0, 1.5])
    assert tl.word_index.tolist() == [0, 0, 1, 1]
    unknown = tokenize_stimulus(ckpt.tokenizer, stimulus_from_text("a Q", 1.0)).unknown
    assert unknown == [{"position": 2, "text": "Q", "word": 1}]
    with pytest.raises(OrganizationError, match="at least two"):
        tokenize_stimulus(ckpt.tokenizer, stimulus_from_text("a", 1.0))


def test_stimulus_longer_than_recording():
    s = stimulus_from_text("a b c d e", 1.0)  # onsets 0..4 s
    check_fits(s, 1.0, 5)
    with pytest.raises(OrganizationError, match=r"longer than the recording.*at least 5 volumes"):
        check_fits(s, 1.0, 4)
    with pytest.raises(OrganizationError, match="TR > 0"):
        check_fits(s, 0.0, 4)


def test_windows_equal_separate_propagations(ckpt):
    """40 tokens through a 16-position table: windows of 16 overlapping by one, pooled exactly."""
    s = stimulus_from_text("abc de fghij klm nop qrs tuv wx yz", 2.0)
    tl = tokenize_stimulus(ckpt.tokenizer, s)
    n, tr, n_tr = tl.ids.size, 1.0, 6
    got = stimulus_responses(ckpt.model, tl, tr, n_tr, "node_gated", "sum")
    assert got.n_steps == n - 1 and got.n_windows == int(np.ceil((n - 1) / 15))
    targets, outputs, energies = [], [], []
    for s0 in range(0, n - 1, 15):
        trace = propagate(ckpt.model, tl.ids[s0 : s0 + 16].tolist())
        targets.append(trace.targets.numpy())
        outputs.append(trace.outputs.numpy())
        energies.append(np.nan_to_num(trace.energies.numpy()))
    assert np.concatenate(targets).tolist() == tl.ids[1:].tolist()
    gated = node_gated_responses(np.concatenate(targets), np.concatenate(outputs))
    np.testing.assert_allclose(got.matrix, pool_to_trs(gated.matrix, tl.times[1:], tr, n_tr), rtol=1e-6)
    for how in ("mean", "last"):
        land = stimulus_responses(ckpt.model, tl, tr, n_tr, "landscape", how)
        np.testing.assert_allclose(land.matrix, pool_to_trs(np.concatenate(energies), tl.times[1:], tr, n_tr, how), rtol=1e-6)
    # the lexical control, by hand: each step's output (energies) replaced by its token's mean over the stimulus
    steps_t, steps_o, steps_e = np.concatenate(targets), np.concatenate(outputs), np.concatenate(energies)
    mean_out = {v: steps_o[steps_t == v].mean(axis=0) for v in set(steps_t.tolist())}
    plain = node_gated_responses(steps_t, np.array([mean_out[v] for v in steps_t]))
    np.testing.assert_allclose(got.lexical, pool_to_trs(plain.matrix, tl.times[1:], tr, n_tr), rtol=1e-5, atol=1e-9)
    assert not np.allclose(got.lexical, got.matrix)  # the context changes the outputs
    sources = tl.ids[:-1]
    mean_energy = {v: steps_e[sources == v].mean(axis=0) for v in set(sources.tolist())}
    np.testing.assert_allclose(land.lexical, pool_to_trs(np.array([mean_energy[v] for v in sources]), tl.times[1:],
                                                         tr, n_tr, "last"), rtol=1e-5, atol=1e-9)
    assert land.units.tolist() == [-1] * len(CHARS)
    assert got.labels(ckpt.token)[0].startswith(f"{ckpt.token(int(got.nodes[0]))}#{got.nodes[0]}:0")


def test_words_per_tr():
    assert words_per_tr(["a", "b", "c"], np.array([0.1, 0.2, 3.1]), 1.5, 3) == ["a b", "", "c"]


def test_untrained_model_same_graph_seeded(ckpt):
    a, b = untrained_model(ckpt.model, 3), untrained_model(ckpt.model, 3)
    assert a.config == ckpt.model.config and np.array_equal(a.edge_keys, ckpt.model.edge_keys)
    assert np.array_equal(a.weights.detach(), b.weights.detach())
    assert not np.array_equal(a.weights.detach(), ckpt.model.weights.detach())
    assert not np.array_equal(a.weights.detach(), untrained_model(ckpt.model, 4).weights.detach())


def test_run_checkpoint_with_controls_and_comparison(ckpt):
    rng = np.random.default_rng(0)
    s = stimulus_from_text(" ".join("".join(rng.choice(list("abcdef"), 3)) for _ in range(150)), 2.5)
    n_tr = 41
    brain = prepare_brain(rng.standard_normal((n_tr, 120)), n_tr, 1.5)
    templates = np.repeat(np.eye(3), 40, axis=0)
    calls = []
    run = run_checkpoint(ckpt, s, brain, templates, ["A", "B", "C"], tr=1.5, k=3, n_perm=50, n_phase_null=2,
                         stability_seeds=(), progress=lambda f, m: calls.append(f))
    assert set(run.report.controls) == {"lexical", "untrained"}
    assert run.report.settings["n_windows"] == run.responses.n_windows > 1
    assert calls == sorted(calls) and calls[-1] == 1.0
    table = comparison_table({"a": run.report, "b": run.report})
    assert table["checkpoint"].tolist() == ["a", "b"] and {"diversity", "lexical_verdict", "untrained_verdict"} <= set(table)
    assert table["lexical_verdict"].iloc[0] == run.report.controls["lexical"]["verdict_code"]
    with pytest.raises(OrganizationError, match="K = 500"):
        run_checkpoint(ckpt, s, brain, templates, tr=1.5, k=500, untrained=False)
