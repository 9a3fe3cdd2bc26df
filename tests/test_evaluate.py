"""Baselines against hand-computed values; ``brillm eval`` end to end, stored in metadata.json."""

from __future__ import annotations

import json
import math

import pytest
import torch

from brillm_core.cli.train import main as cli_main
from brillm_core.bigram import estimate_discount, kneser_ney_probs
from brillm_core.data import BigramCounts
from brillm_core.evaluate import pairs, unigram_probs, unigram_score, windows
from brillm_core.scoring import score_ids
from brillm_core.trace import DecodeSettings
from brillm_core.checkpoint import load_checkpoint
from brillm_core.training import TrainSettings, train
from tests.toy_grammar import write_toy

# Training stream 1 2 1 2 3 1 over V = 4 nodes (node 0 never seen).
# Bigrams: (1,2) x2, (2,1), (2,3), (3,1) -> n1 = 3, n2 = 1, D = 3 / (3 + 2) = 0.6.
# Continuation counts N1+(. w): w=1: 2, w=2: 1, w=3: 1, w=0: 0; 4 bigram types, 3 continued words.
# Pc(w) = max(N1+(. w) - D, 0) / 4 + D * 3 / 4 / 4:  Pc = [0.1125, 0.4625, 0.2125, 0.2125].
STREAM = torch.tensor([1, 2, 1, 2, 3, 1])
P_CONT = [0.1125, 0.4625, 0.2125, 0.2125]


def counts() -> BigramCounts:
    """Counts of the hand-worked stream."""
    return BigramCounts.from_stream(STREAM, 4)


def test_discount_is_n1_over_n1_plus_2n2():
    assert estimate_discount(counts()) == pytest.approx(0.6)


def test_kneser_ney_matches_hand_computed_values():
    probs = kneser_ney_probs(counts(), torch.tensor([0, 1, 2, 3]), 0.6)
    assert probs.sum(dim=1).tolist() == pytest.approx([1.0] * 4)
    assert probs[0].tolist() == pytest.approx(P_CONT)  # unseen history: continuation distribution
    # v = 1: c(1) = 2, c(1,2) = 2, one successor type: (2 - .6) / 2 + .6 * 1 / 2 * Pc
    assert probs[1, 2].item() == pytest.approx(0.7 + 0.3 * 0.2125)
    assert probs[1, 1].item() == pytest.approx(0.3 * 0.4625)
    # v = 2: c(2) = 2, successors 1 and 3 once each: (1 - .6) / 2 + .6 * 2 / 2 * Pc
    assert probs[2].tolist() == pytest.approx([0.6 * 0.1125, 0.2 + 0.6 * 0.4625, 0.6 * 0.2125, 0.2 + 0.6 * 0.2125])
    # v = 3: c(3) = 1, c(3,1) = 1: (1 - .6) / 1 + .6 * 1 / 1 * Pc
    assert probs[3, 1].item() == pytest.approx(0.4 + 0.6 * 0.4625)


def test_kneser_ney_with_fixed_discount():
    probs = kneser_ney_probs(counts(), torch.tensor([1]), 0.75)
    p_cont_2 = 0.25 / 4 + 0.75 * 3 / 16
    assert probs[0, 2].item() == pytest.approx((2 - 0.75) / 2 + 0.75 / 2 * p_cont_2)


def test_unigram_score_hand_computed():
    probs = unigram_probs(counts())
    assert probs.tolist() == pytest.approx([0.0, 0.5, 1 / 3, 1 / 6])
    chunks = windows(torch.tensor([1, 2, 3, 3, 1]), 3)  # windows [1 2 3] [3 1]: predicts 2, 3, 1
    prev, target = pairs(chunks)
    assert prev.tolist() == [1, 2, 3] and target.tolist() == [2, 3, 1]
    score = unigram_score(probs, target)
    assert score.perplexity == pytest.approx(math.exp((math.log(3) + math.log(6) + math.log(2)) / 3))
    assert (score.top1, score.top5) == (1, 3)
    assert math.isinf(unigram_score(probs, torch.tensor([0])).perplexity)  # add-nothing: unseen is impossible


def test_discounted_unigram_hand_computed():
    # N = 6 tokens, 3 types seen, D = 0.6: P(w) = max(c - .6, 0) / 6 + .6 * 3 / 6 / 4
    probs = unigram_probs(counts(), 0.6)
    assert probs.tolist() == pytest.approx([0.075, 2.4 / 6 + 0.075, 1.4 / 6 + 0.075, 0.4 / 6 + 0.075])
    assert probs.sum().item() == pytest.approx(1.0)


def test_eval_end_to_end_stores_results(tmp_path, capsys):
    corpus = write_toy(tmp_path / "train.txt", sentences=300, seed=0)
    held = write_toy(tmp_path / "held.txt", sentences=30, seed=5)
    settings = TrainSettings(tokenizer="word", vocab_size=None, hidden_size=4, max_positions=32, seq_len=12,
                             batch_size=8, negatives=400, max_steps=60, save_every=60)
    path = train([corpus], tmp_path / "run", settings, progress=False)
    assert cli_main(["eval", str(tmp_path / "run"), str(held)]) == 0
    out = capsys.readouterr().out
    assert "Kneser-Ney bigram" in out and "unigram (MLE, 0 unseen)" in out and "unigram (discounted" in out
    stored = json.loads((path / "metadata.json").read_text())["evaluations"]["held.txt"]
    assert stored["window"] == 12
    assert stored["model"]["tokens"] == stored["unigram"]["tokens"] == stored["unigram_mle"]["tokens"] == stored["kneser_ney_bigram"]["tokens"]
    # The model figure is score_ids over the same windows.
    ck = load_checkpoint(path, device="cpu")
    ids = torch.tensor(ck.tokenizer.encode(held.read_text().replace("\n", " ")).ids)
    nll = sum(score_ids(ck.model, w.tolist()).nll for w in windows(ids, 12))
    assert stored["model"]["nll"] == pytest.approx(nll, rel=1e-6)
    # A grammar this regular: the bigram baseline beats the unigram one, and the model learns it.
    assert stored["kneser_ney_bigram"]["perplexity"] < 0.5 * stored["unigram"]["perplexity"]
    assert stored["model"]["perplexity"] < stored["unigram"]["perplexity"]
    assert ck.metadata["training"]["loss_history"]  # training metadata kept beside the evaluation
    # The memory ablation is stored beside the full-memory figures, scored with the window.
    assert cli_main(["eval", str(tmp_path / "run"), str(held), "--memory-window", "1"]) == 0
    assert "BriLLM, memory window 1" in capsys.readouterr().out
    evaluations = json.loads((path / "metadata.json").read_text())["evaluations"]
    ablated = evaluations["held.txt (memory window 1)"]
    assert evaluations["held.txt"] == stored and ablated["memory_window"] == 1 and stored["memory_window"] is None
    one = DecodeSettings(memory_window=1)
    assert ablated["model"]["nll"] == pytest.approx(sum(score_ids(ck.model, w.tolist(), one).nll for w in windows(ids, 12)), rel=1e-6)
    assert ablated["kneser_ney_bigram"] == stored["kneser_ney_bigram"]
    assert cli_main(["eval", str(tmp_path / "run"), str(held), "--memory-window", "0"]) == 1
    assert "memory_window must be at least 1" in capsys.readouterr().err


def test_eval_bad_inputs(tmp_path, capsys):
    corpus = write_toy(tmp_path / "train.txt", sentences=100)
    settings = TrainSettings(tokenizer="word", vocab_size=None, hidden_size=4, max_positions=32, seq_len=12,
                             batch_size=4, max_steps=2, save_every=2)
    path = train([corpus], tmp_path / "run", settings, progress=False)
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    assert cli_main(["eval", str(path), str(tmp_path / "bad.txt")]) == 1
    assert "not UTF-8" in capsys.readouterr().err
    assert cli_main(["eval", str(tmp_path / "nowhere"), str(corpus)]) == 1
    assert "checkpoint directory not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli_main(["eval", str(tmp_path / "empty"), str(corpus)]) == 1
    assert "neither a checkpoint" in capsys.readouterr().err
    # a tokenizer whose vocabulary does not match the checkpoint's nodes
    (path / "tokenizer.json").write_text(
        (path / "tokenizer.json").read_text().replace('"[UNK]": 0,', '"[UNK]": 0, "zzz": 10,'), encoding="utf-8"
    )
    assert cli_main(["eval", str(path), str(corpus)]) == 1
    assert "tokens but the model has" in capsys.readouterr().err


def shared_row_model(own_bias: list[float], shared_bias: float):
    """V = 6, d = 2, W = 0; only edges (0, 1) and (0, 2) own a row: from node 0, targets 0, 3, 4, 5 tie on row 0."""
    from brillm_core.config import ModelConfig
    from brillm_core.edges import EdgeTable
    from brillm_core.model import BriLLM

    edges = EdgeTable(6, torch.tensor([1, 2]))
    config = ModelConfig(vocab_size=6, hidden_size=2, max_positions=8, num_rows=edges.num_rows)
    biases = torch.tensor([shared_bias, *own_bias]).reshape(3, 1, 1).expand(3, 1, 2).clone()
    params = {"weights": torch.zeros(3, 2, 2), "biases": biases, "node_bias": torch.zeros(6, 1, 2), "positions": torch.ones(1, 8, 1)}
    return BriLLM(config, edges, params)


def test_ties_count_as_a_hit_with_probability_one_over_the_number_tied():
    # Shared row highest: target 3 ties with 0, 4, 5 at the top (g = 0, m = 4).
    top = score_ids(shared_row_model([-3.0, -2.0], 3.0), [0, 3])
    assert (top.top1, top.top5, top.mean_rank) == pytest.approx((1 / 4, 1.0, 2.5))
    # Shared row below both own rows: g = 2, m = 4; top-1 impossible, top-5 (5 - 2) / 4 = 0.75, rank 2 + 2.5.
    low = score_ids(shared_row_model([3.0, 2.5], -3.0), [0, 3])
    assert (low.top1, low.top5, low.mean_rank) == pytest.approx((0.0, 0.75, 4.5))
    # An own-row target alone at the top is a plain hit.
    own = score_ids(shared_row_model([3.0, 2.5], -3.0), [0, 1])
    assert (own.top1, own.top5, own.mean_rank) == (1.0, 1.0, 1.0)


def test_baselines_share_ties_fairly_too():
    # A uniform distribution over 4 nodes: every target ties with all 4 (top-1 1/4, top-5 1, rank 2.5).
    score = unigram_score(torch.full((4,), 0.25, dtype=torch.float64), torch.tensor([0, 3]))
    assert (score.top1, score.top5, score.mean_rank) == pytest.approx((0.5, 2.0, 2.5))
