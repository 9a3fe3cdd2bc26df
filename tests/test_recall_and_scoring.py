"""Recall activation and full-vocabulary scoring against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from brillm_core import DecodeSettings, PromptError, incoming_energy, propagate, random_model, recall_activation, score_ids
from brillm_core.errors import BriLLMError

from .reference import ReferenceBriLLM


def next_distribution(ref: ReferenceBriLLM, path: list[int]) -> np.ndarray:
    """Reference probabilities of the step after ``path`` (the dummy target is never read)."""
    return ref.run(path + [0])[-1]["probabilities"]


def test_recall_activation_equals_hand_enumeration() -> None:
    model = random_model(6, 4, 0.5, seed=8)
    ref = ReferenceBriLLM.from_model(model)
    context, branch = [2, 4], 2
    expected = np.zeros(6)
    first = {}
    frontier = [(1.0, list(context))]
    for hop in (1, 2):
        grown = []
        for mass, path in frontier:
            p = next_distribution(ref, path)
            best = sorted(range(6), key=lambda t: (-p[t], t))[:branch]
            for t in best:
                expected[t] += mass * p[t]
                first.setdefault(t, hop)
                grown.append((mass * p[t], path + [t]))
        frontier = grown  # beam 8 keeps them all
    result = recall_activation(model, context, hops=2, branch=branch, beam=8)
    np.testing.assert_allclose(result.activation.numpy(), expected, atol=1e-6)
    assert {n: int(h) for n, h in enumerate(result.first_hop) if h > 0} == first
    frame = result.to_frame([str(i) for i in range(6)])
    assert list(frame["activation"]) == sorted(frame["activation"], reverse=True)
    assert len(result.edges) == branch + branch * branch


def test_recall_beam_keeps_only_the_heaviest_paths() -> None:
    model = random_model(6, 4, 0.5, seed=8)
    wide = recall_activation(model, [2, 4], hops=3, branch=3, beam=100)
    narrow = recall_activation(model, [2, 4], hops=3, branch=3, beam=1)
    hop3 = [e for e in narrow.edges if e[0] == 3]
    assert len(hop3) == 3  # one path survives hop 2, expanded to three successors
    assert narrow.activation.sum() < wide.activation.sum()
    with pytest.raises(PromptError):
        recall_activation(model, [2], hops=0)
    with pytest.raises(PromptError, match="branch must be in 1..64"):  # refused before any work
        recall_activation(model, [2], branch=10**9)


@pytest.mark.parametrize("release", [False, True])
@pytest.mark.parametrize("context", [None, [3], [1, 3, 5]])
def test_incoming_energy_equals_each_sources_own_step(context, release: bool) -> None:
    model = random_model(7, 4, 0.4, seed=9)
    ref = ReferenceBriLLM.from_model(model)
    settings = DecodeSettings(release_decoder=release, temperature=0.9)
    frame = incoming_energy(model, 2, context, settings).set_index("source")
    for s in range(7):
        if release and s == 2:
            assert math.isnan(frame.loc[s, "energy"])  # no self-loop candidate
            continue
        if context and len(context) >= 2:
            # every source receives the context's next signal at the context's next step
            x, _ = ref.memory([st["output"] for st in ref.run(context, release=release)])
            step = len(context) - 1
        else:
            x, step = ref.start(s), 0  # s starts a path
        pe_index = step if release else step + 1
        energies = np.array([np.linalg.norm(ref.output(s, t, x, pe_index)) for t in range(7)])
        logits = energies.copy() if release else energies / 0.9
        if release:
            logits[s] = -np.inf
        probability = np.exp(logits[2]) / np.exp(logits).sum()
        assert frame.loc[s, "energy"] == pytest.approx(energies[2], abs=1e-5)
        assert frame.loc[s, "probability"] == pytest.approx(probability, abs=1e-5)
        assert bool(frame.loc[s, "own_row"]) == (ref.rows[(s, 2)] > 0)


def test_score_equals_reference_log_likelihood() -> None:
    model = random_model(9, 4, 0.5, seed=10)
    ref = ReferenceBriLLM.from_model(model)
    ids = [1, 5, 2, 2, 8, 0, 3]
    steps = ref.run(ids)
    nll = -sum(math.log(step["probabilities"][ids[i + 1]]) for i, step in enumerate(steps))
    # Fair ties: g nodes above the target, m tied with it (itself included); top-k hit probability clamp((k - g) / m, 0, 1).
    above = [int((step["energies"] > step["energies"][ids[i + 1]]).sum()) for i, step in enumerate(steps)]
    tied = [int((step["energies"] == step["energies"][ids[i + 1]]).sum()) for i, step in enumerate(steps)]
    assert max(tied) > 1  # the path meets a tie, so the rule is exercised
    score = score_ids(model, ids)
    assert score.predicted == 6
    assert score.nll == pytest.approx(nll, rel=1e-5)
    assert score.perplexity == pytest.approx(math.exp(nll / 6), rel=1e-5)
    assert score.top1 == pytest.approx(sum(min(max((1 - g) / m, 0), 1) for g, m in zip(above, tied)))
    assert score.top5 == pytest.approx(sum(min(max((5 - g) / m, 0), 1) for g, m in zip(above, tied)))


def test_score_splits_long_texts_into_windows() -> None:
    model = random_model(5, 2, 0.5, seed=1, max_positions=4)
    ids = [1, 2, 3, 4, 0, 1, 2, 3, 4]
    whole = score_ids(model, ids)
    parts = [score_ids(model, ids[0:4]), score_ids(model, ids[4:8])]
    assert whole.predicted == 3 + 3  # the last window has one token and predicts nothing
    assert whole.nll == pytest.approx(parts[0].nll + parts[1].nll)


def test_recall_reports_progress_per_hop() -> None:
    model = random_model(6, 4, 0.5, seed=8)
    seen: list[tuple[int, int]] = []
    recall_activation(model, [2, 4], hops=3, branch=2, beam=4, progress=lambda hop, hops: seen.append((hop, hops)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_score_does_not_underflow_on_very_unlikely_targets() -> None:
    model = random_model(6, 2, 1.0, seed=3)
    with torch.no_grad():
        model.biases[:, 0, :] = 0.0
        model.weights.zero_()
        row = int(model.edges.rows(torch.tensor(1), torch.tensor(2)))
        model.biases[row, 0, :] = 300.0  # edge 1 -> 2 carries an enormous energy
    score = score_ids(model, [1, 3])  # so 3 after 1 has probability ~ e^-420: 0 in float32
    assert math.isfinite(score.nll) and score.nll > 300


def test_release_decoder_refuses_a_repeated_token_instead_of_an_infinite_perplexity() -> None:
    model = random_model(6, 4, 0.5, seed=3)
    release = DecodeSettings(release_decoder=True)
    with pytest.raises(PromptError, match="token 2 .counting from 0. repeats"):
        score_ids(model, [1, 2, 2, 4], release)
    assert math.isfinite(score_ids(model, [1, 2, 2, 4]).perplexity)  # the training semantics score it
    assert math.isfinite(score_ids(model, [1, 2, 3, 4], release).perplexity)


@pytest.mark.parametrize("window", [1, 2, 3])
def test_a_memory_window_keeps_only_the_last_outputs(window: int) -> None:
    model = random_model(9, 4, 0.5, seed=11)
    with torch.no_grad():  # a position ramp, so that every earlier output weighs something different
        model.positions.copy_(torch.linspace(0.0, 3.0, model.config.max_positions).reshape(1, -1, 1))
    ids = [1, 5, 2, 2, 8, 0, 3]
    settings = DecodeSettings(memory_window=window)
    trace = propagate(model, ids, settings)
    steps = ReferenceBriLLM.from_model(model).run(ids, memory_window=window)
    for i, (step, ref) in enumerate(zip(trace.steps, steps)):
        weights = step.memory_weights.double().numpy()
        assert weights == pytest.approx(ref["memory"], abs=1e-6)
        assert (weights[: max(0, i - window)] == 0).all() and (i == 0 or weights.sum() == pytest.approx(1.0))
        assert step.signal_in.double().numpy() == pytest.approx(ref["signal_in"], abs=1e-5)
        assert step.energies.double().numpy() == pytest.approx(ref["energies"], abs=1e-5)
    if window == 1:  # the previous output itself, bit for bit: its weight is exactly 1
        for i in range(1, len(ids) - 1):
            assert torch.equal(trace.step(i).signal_in, trace.step(i - 1).output)
    ref_nll = -sum(math.log(s["probabilities"][ids[i + 1]]) for i, s in enumerate(steps))
    assert score_ids(model, ids, settings).nll == pytest.approx(ref_nll, rel=1e-5)


def test_a_window_as_long_as_the_path_is_the_whole_memory() -> None:
    model = random_model(9, 4, 0.5, seed=12)
    ids = [1, 5, 2, 2, 8, 0, 3]
    whole = propagate(model, ids, DecodeSettings())
    wide = propagate(model, ids, DecodeSettings(memory_window=len(ids)))
    narrow = propagate(model, ids, DecodeSettings(memory_window=1))
    assert torch.equal(whole.energies, wide.energies)
    assert not torch.equal(whole.energies, narrow.energies)  # the ablation changes something on this path


def test_a_memory_window_below_one_is_refused() -> None:
    with pytest.raises(BriLLMError, match="memory_window must be at least 1"):
        DecodeSettings(memory_window=0)
