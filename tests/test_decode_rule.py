"""Every consumer of the decode rule agrees with ``propagate`` under both decoders.

Propagation is checked against the independent reference elsewhere (test_propagation);
here each other consumer (explain, recall, the reverse view, scoring, the training loss,
the token graph's edge strengths) must give propagate's numbers for the same question.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from brillm_core import DecodeSettings, PromptError, edge_strengths, incoming_energy, propagate, random_model
from brillm_core import recall_activation, score_ids
from brillm_core import decode
from brillm_core.explain import explain_step
from brillm_core.training.objective import Objective
from explorer.graphdata import compute_graph_data

V = 9
BOTH = pytest.mark.parametrize("release", [False, True], ids=["training", "release-decoder"])


def model_with_self_loops():
    """A small random model in which some self-loops own a row and others read the shared row."""
    model = random_model(V, 6, 0.45, seed=21)
    own_self = [s for s in range(V) if int(model.edges.rows(torch.tensor(s), torch.tensor(s))) > 0]
    assert 0 < len(own_self) < V  # both kinds of self-loop occur
    return model


def settings(release: bool, **kwargs) -> DecodeSettings:
    """Settings with a temperature that matters under the training semantics."""
    return DecodeSettings(release_decoder=release, temperature=0.7, **kwargs)


def test_the_rule_itself() -> None:
    training, release = DecodeSettings(temperature=0.5), DecodeSettings(temperature=0.5, release_decoder=True)
    assert [decode.pe_index(i, training) for i in range(3)] == [1, 2, 3]
    assert [decode.training_pe_index(i) for i in range(3)] == [1, 2, 3]
    assert [decode.pe_index(i, release) for i in range(3)] == [0, 1, 2]
    assert decode.temperature(training) == 0.5 and decode.temperature(release) == 1.0
    assert not decode.excludes_self_loop(training) and decode.excludes_self_loop(release)


@BOTH
def test_explain_gives_propagates_energy_and_probability(release: bool) -> None:
    model = model_with_self_loops()
    trace = propagate(model, [3, 3, 5, 1], settings(release, max_new_tokens=3))
    for i in range(trace.num_steps):
        for target in range(V):
            ex = explain_step(model, trace, i, target)
            assert ex.pe_index == decode.pe_index(i, trace.settings)
            if release and target == ex.source:
                assert math.isnan(float(trace.energies[i, target]))  # not a candidate; explained all the same
                continue
            assert ex.energy == pytest.approx(float(trace.energies[i, target]), abs=1e-6)
            assert ex.probability == pytest.approx(float(trace.probabilities[i, target]), abs=1e-6)


@BOTH
@pytest.mark.parametrize("context", [[4], [2, 6, 6]])
def test_recall_first_hop_is_propagates_next_step(release: bool, context: list[int]) -> None:
    model = model_with_self_loops()
    result = recall_activation(model, context, hops=1, branch=V, beam=V, settings=settings(release))
    nxt = propagate(model, context, settings(release, max_new_tokens=1)).probabilities[-1]
    expected = torch.nan_to_num(nxt.double(), nan=0.0)
    assert torch.equal(result.activation, expected)
    if release:
        assert result.activation[context[-1]] == 0  # the source never reaches itself


@BOTH
@pytest.mark.parametrize("start", [None, (0.2, -0.4, 1.0, 0.0, 0.5, -1.0)])
def test_reverse_view_without_context_is_a_propagate_from_each_source(release: bool, start) -> None:
    model = model_with_self_loops()
    target = 3
    chosen = settings(release, start_signal=start)
    frame = incoming_energy(model, target, None, chosen).set_index("source")
    for s in range(V):
        step = propagate(model, [s], chosen.with_new_tokens(1)).step(0)
        energy, probability = float(step.energies[target]), float(step.probabilities[target])
        if release and s == target:
            assert math.isnan(frame.loc[s, "energy"]) and math.isnan(energy)
            continue
        assert frame.loc[s, "energy"] == energy  # the same arithmetic, bit for bit
        assert frame.loc[s, "probability"] == pytest.approx(probability, abs=1e-6)


@BOTH
def test_reverse_view_with_context_is_the_single_source_rule(release: bool) -> None:
    model = model_with_self_loops()
    context, target = [1, 7, 3], 5
    chosen = settings(release)
    frame = incoming_energy(model, target, context, chosen).set_index("source")
    trace = propagate(model, context, chosen.with_new_tokens(1))
    signal = trace.step(2).signal_in  # the context's next signal, at the context's next step
    # The context's own last node sends exactly what propagate recorded.
    last = context[-1]
    assert frame.loc[last, "energy"] == float(trace.energies[2, target])
    assert frame.loc[last, "probability"] == pytest.approx(float(trace.probabilities[2, target]), abs=1e-6)
    for s in range(V):
        _, energies, probabilities = decode.step_distribution(model, s, signal, 2, chosen)
        if release and s == target:
            assert math.isnan(frame.loc[s, "energy"])
            continue
        assert frame.loc[s, "energy"] == float(energies[target])
        assert frame.loc[s, "probability"] == pytest.approx(float(probabilities[target]), abs=1e-6)


@BOTH
def test_score_is_propagates_log_probability(release: bool) -> None:
    model = model_with_self_loops()
    ids = [2, 5, 8, 0, 3, 1, 6, 4]  # no repeated node: the release's decoder offers no self-loop
    chosen = settings(release)
    trace = propagate(model, ids, chosen)
    expected = -sum(math.log(float(trace.probabilities[i, ids[i + 1]])) for i in range(len(ids) - 1))
    assert score_ids(model, ids, chosen).nll == pytest.approx(expected, rel=1e-5)


def test_training_loss_is_propagates_full_vocabulary_loss() -> None:
    # Training has one semantics (PE[i + 1], every node a candidate, T = 1): with every
    # node as a candidate, its (1 + k)-way loss is propagate's mean negative log-likelihood.
    model = model_with_self_loops()
    with torch.no_grad():
        model.positions.uniform_(-1, 1, generator=torch.Generator().manual_seed(2))
    ids = torch.tensor([[2, 5, 5, 8, 0, 3], [7, 1, 4, 4, 2, 6]])
    sources, gold = ids[:, :-1], ids[:, 1:]
    others = torch.stack([torch.tensor([t for t in range(V) if t != g]) for g in gold.flatten().tolist()])
    candidates = torch.cat([gold.unsqueeze(-1), others.reshape(2, 5, V - 1)], -1)
    rows = model.edges.rows(sources.unsqueeze(-1), candidates)
    with torch.no_grad():
        loss = float(Objective(model, sparse=False)(ids, rows))
    nll = []
    for seq in ids.tolist():
        trace = propagate(model, seq, DecodeSettings())
        nll += [-math.log(float(trace.probabilities[i, seq[i + 1]])) for i in range(len(seq) - 1)]
    assert loss == pytest.approx(sum(nll) / len(nll), abs=1e-5)


@BOTH
@pytest.mark.parametrize("start", [None, (0.2, -0.4, 1.0, 0.0, 0.5, -1.0)])
def test_graph_edge_strengths_are_propagates_step_zero_energies(release: bool, start) -> None:
    model = model_with_self_loops()
    chosen = settings(release, start_signal=start)
    strengths = edge_strengths(model, chosen)
    graph = compute_graph_data(model, chosen)
    assert np.array_equal(graph.strength, strengths.own_energy.numpy(), equal_nan=True)
    assert np.array_equal(graph.shared_strength, strengths.shared_energy.numpy())
    for s in range(V):
        energies = propagate(model, [s], chosen.with_new_tokens(1)).energies[0]
        mine = strengths.own_sources == s
        targets = strengths.own_targets[mine]
        assert torch.equal(strengths.own_energy[mine].nan_to_num(-1.0), energies[targets].nan_to_num(-1.0))
        shared = (model.edges.rows(torch.tensor(s), torch.arange(V)) == 0).nonzero().flatten()
        shared = shared[~(release & (shared == s))]
        assert torch.equal(energies[shared], strengths.shared_energy[s].expand(shared.numel()))


def test_default_graph_uses_the_training_semantics() -> None:
    model = model_with_self_loops()
    default = compute_graph_data(model)
    assert np.array_equal(default.strength, edge_strengths(model, DecodeSettings()).own_energy.numpy())
    release = edge_strengths(model, DecodeSettings(release_decoder=True)).own_energy.numpy()
    assert not np.allclose(default.strength, release, equal_nan=True)  # PE[0] instead of PE[1]


def test_a_start_signal_of_the_wrong_width_is_refused_by_every_consumer() -> None:
    model = model_with_self_loops()
    wrong = DecodeSettings(start_signal=(1.0, 2.0))
    for run in (lambda: propagate(model, [3], wrong), lambda: incoming_energy(model, 2, None, wrong),
                lambda: recall_activation(model, [3], hops=1, settings=wrong), lambda: edge_strengths(model, wrong)):
        with pytest.raises(PromptError, match="6 values"):
            run()


def test_an_overflowed_energy_stays_infinite_so_its_log_probability_is_no_number() -> None:
    """nan_to_num also turns +inf into the largest double: an overflowed row then scored a finite perplexity."""
    energies = torch.tensor([[math.inf, math.inf, 1.0], [math.nan, 2.0, 1.0]])
    shown = decode.logits(energies, DecodeSettings())
    assert shown[0, 0] == math.inf and shown[1, 0] == -math.inf
    log_p = decode.log_probabilities(energies, DecodeSettings())
    assert torch.isnan(log_p[0]).all() and torch.isfinite(log_p[1, 1:]).all()
