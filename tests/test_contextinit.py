"""Context start: the model's distributions equal the trigram model it was fitted as, and it learns what a bigram cannot."""

from __future__ import annotations

import random

import pytest
import torch

from brillm_core.checkpoint import load_checkpoint
from brillm_core.config import ModelConfig
from brillm_core.data import BigramCounts
from brillm_core.evaluate import evaluate
from brillm_core.propagate import propagate
from brillm_core.trace import DecodeSettings
from brillm_core.training import TrainSettings, train
from brillm_core.training.init.context import ContextFactors, context_initialise, fit_context, trigram_counts
from brillm_core.training.init.counts import relative_logits
from brillm_core.training.init.random import init_model


def fitted_log_probs(counts: BigramCounts, edges, factors: ContextFactors, path: list[int]) -> torch.Tensor:
    """log P(. | u_{i-1}, u_i) of the fitted log-bilinear model along a path (step 0: the row-tied bigram)."""
    V = counts.vocab_size
    base = torch.cat([torch.zeros(1, dtype=torch.float64), relative_logits(edges, counts, 1)])
    out = []
    for i, v in enumerate(path[:-1]):
        rows = edges.rows(torch.tensor(v), torch.arange(V))
        h = factors.context[edges.rows(torch.tensor(path[i - 1]), torch.tensor(v))].double() if i else torch.zeros(factors.context.shape[1], dtype=torch.float64)
        logits = base[rows] + factors.target[rows].double() @ h
        out.append(torch.log_softmax(logits, 0))
    return torch.stack(out)


def test_trigram_counts_count_each_triple():
    keys, n = trigram_counts(torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]), 3)
    assert dict(zip(keys.tolist(), n.tolist())) == {0 * 9 + 1 * 3 + 2: 2, 1 * 9 + 2 * 3 + 0: 2, 2 * 9 + 0 * 3 + 1: 2}


def test_context_start_gives_the_fitted_trigram_model_at_every_step():
    """The engine's full-vocabulary distribution along a path is the fitted model's, to the documented tolerance."""
    V = 12
    gen = torch.Generator().manual_seed(5)
    stream = torch.multinomial(torch.linspace(1, 3, V) ** 3, 1500, replacement=True, generator=gen)
    counts = BigramCounts.from_stream(stream, V)
    edges = counts.edges(1)
    factors = fit_context(edges, counts, stream, rank=7, l2=0.1, iterations=60, lr=0.1)
    assert factors.context.abs().max() > 0.1 and factors.target.abs().max() > 0.1  # a real correction, not zero
    model = init_model(ModelConfig(vocab_size=V, hidden_size=8, max_positions=64, num_rows=edges.num_rows), edges, seed=0)
    context_initialise(model, counts, factors, positions=32)
    path = stream[:33].tolist()
    trace = propagate(model, path, DecodeSettings().with_new_tokens(0))
    got = torch.log_softmax(trace.energies.double(), dim=1)
    want = fitted_log_probs(counts, edges, factors, path)
    error = got - want
    # Documented tolerance (training.init.context): float32 energies near 5e4 round by 4e-3; the PE in the kept code
    # and the spread of the norm's lift add errors of about PE . g / ALPHA and ALPHA * h . PE / ENERGY.
    assert error[0].abs().max().item() < 0.015  # step 0: the bigram (the start signal holds the neutral code)
    assert error.abs().max().item() < 0.05
    assert error.pow(2).mean().sqrt().item() < 0.015
    # the correction matters: without it the distributions differ far more than that
    bigram = fitted_log_probs(counts, edges, ContextFactors(torch.zeros_like(factors.context), factors.target), path)
    assert (bigram - want).abs().max().item() > 0.3


def alternating_text(lines: int, seed: int) -> str:
    """'a x b' and 'c x d' sentences: after x the next word is set by the word before x, which a bigram cannot see."""
    rng = random.Random(seed)
    return "\n".join(rng.choice(["a x b .", "c x d ."]) for _ in range(lines)) + "\n"


def test_brillm_train_context_start_beats_the_bigram_where_context_decides(tmp_path):
    (tmp_path / "train.txt").write_text(alternating_text(400, 0))
    (tmp_path / "held.txt").write_text(alternating_text(60, 1))
    settings = TrainSettings(tokenizer="word", vocab_size=None, hidden_size=4, max_positions=32, seq_len=12, batch_size=8,
                             init="context", context_l2=0.01, context_iterations=150, max_steps=0)
    path = train([tmp_path / "train.txt"], tmp_path / "run", settings, validation=tmp_path / "held.txt", progress=False)
    assert path.name == "step-00000000"
    ck = load_checkpoint(path, device="cpu")
    result = evaluate(ck, tmp_path / "held.txt")
    # Per sentence of 4 tokens the bigram pays log 2 twice (which sentence, and what follows x); the
    # context start pays it once, so its perplexity is near 2 ** (1/4) = 1.19 against the bigram's 2 ** (1/2).
    assert result.kneser_ney.perplexity > 1.35
    assert result.model.perplexity < 1.25
    # the run's own record of its start is that figure (energies near 5e4 round by 4e-3 in either computation)
    assert ck.metadata["training"]["validation_history"][0][1] == pytest.approx(result.model.perplexity, rel=1e-3)


def test_brillm_train_cli_passes_the_context_settings(tmp_path):
    from brillm_core.cli.train import main as cli_main

    (tmp_path / "train.txt").write_text(alternating_text(200, 0))
    code = cli_main(["train", str(tmp_path / "train.txt"), "-o", str(tmp_path / "run"), "--tokenizer", "word",
                     "--hidden-size", "2", "--max-positions", "16", "--seq-len", "8", "--init", "context",
                     "--context-l2", "0.5", "--context-iterations", "7", "--max-steps", "0", "--no-progress"])
    assert code == 0
    training = load_checkpoint(tmp_path / "run" / "checkpoints" / "step-00000000", device="cpu").metadata["training"]
    assert (training["settings"]["init"], training["settings"]["context_l2"], training["settings"]["context_iterations"]) == ("context", 0.5, 7)
    assert training["step"] == 0 and training["init_seconds"] > 0


def test_training_from_the_context_start_leaves_the_energy_input_row_of_w_at_zero(tmp_path):
    """The signal's channel 0 is an energy near 5e4: W must keep reading only the code channels."""
    (tmp_path / "train.txt").write_text(alternating_text(200, 0))
    settings = TrainSettings(tokenizer="word", vocab_size=None, hidden_size=4, max_positions=32, seq_len=12, batch_size=8,
                             init="context", context_l2=0.01, context_iterations=20, max_steps=3, save_every=3, lr=1e-3)
    model = load_checkpoint(train([tmp_path / "train.txt"], tmp_path / "run", settings, progress=False), device="cpu").model
    assert torch.count_nonzero(model.weights[:, 0, :]) == 0
    assert torch.count_nonzero(model.weights[:, 1:, 1:]) > 0  # the steps did move W's other entries (0 at the start)
