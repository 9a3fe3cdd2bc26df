"""The engine against the plain reference in tests/reference.py, to 1e-5."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from brillm_core import DecodeSettings, PromptError, positional_encoding, propagate, random_model, reroute
from brillm_core.edges import EdgeTable

from .reference import ReferenceBriLLM, pe_table, release_float32_energies, row_map

TOL = 1e-5


def assert_trace_matches(trace, steps) -> None:
    """Every recorded number of every step equals the reference's."""
    assert trace.num_steps == len(steps)
    for i, ref in enumerate(steps):
        got = trace.step(i)
        np.testing.assert_allclose(got.energies.numpy(), ref["energies"], atol=TOL, equal_nan=True)
        np.testing.assert_allclose(got.probabilities.numpy(), ref["probabilities"], atol=TOL, equal_nan=True)
        np.testing.assert_allclose(got.signal_in.numpy(), ref["signal_in"], atol=TOL)
        np.testing.assert_allclose(got.output.numpy(), ref["output"], atol=TOL)
        np.testing.assert_allclose(got.memory_weights.numpy(), ref["memory"], atol=TOL)


@pytest.mark.parametrize("length,width", [(512, 32), (1, 2), (7, 6), (100, 4), (64, 64), (300, 50)])
def test_pe_table_is_the_release_float32_table_bit_for_bit(length: int, width: int) -> None:
    ours = positional_encoding(length, width)
    assert ours.dtype == torch.float32
    assert np.array_equal(ours.numpy().astype(np.float64), pe_table(length, width))


def test_pe_table_multiplies_position_by_frequency_in_float32() -> None:
    ours = positional_encoding(512, 32).numpy()
    # The release's quirk: PE[1, 2] = sin(1 * 10000 ** (2/32)), not sin(1 / 10000 ** (2/32)).
    assert ours[1, 2] == pytest.approx(math.sin(10000 ** (2 / 32)), abs=1e-6)
    # Computed in float64 and rounded, the table would be another one: 0.15 apart by position 511.
    f = 10000.0 ** (np.arange(0, 32, 2) / 32)
    float64_row = np.sin(511 * f)
    assert np.abs(ours[511, 0::2] - float64_row).max() > 0.01


def long_path_model():
    """A random model at the release's width and position table, and a 500-node prompt."""
    model = random_model(8, 32, 0.4, seed=11, max_positions=512)
    prompt = torch.randint(0, 8, (500,), generator=torch.Generator().manual_seed(4)).tolist()
    return model, prompt


@pytest.mark.parametrize("release", [False, True])
def test_energies_match_the_reference_over_500_positions(release: bool) -> None:
    model, prompt = long_path_model()
    trace = propagate(model, prompt, DecodeSettings(release_decoder=release))
    steps = ReferenceBriLLM.from_model(model).run(prompt, release=release)
    assert trace.num_steps == len(steps) == 499
    expected = np.stack([step["energies"] for step in steps])
    np.testing.assert_allclose(trace.energies.numpy(), expected, atol=TOL, rtol=0, equal_nan=True)
    np.testing.assert_allclose(trace.outputs.numpy(), np.stack([step["output"] for step in steps]), atol=TOL, rtol=0)


@pytest.mark.parametrize("release", [False, True])
def test_energies_equal_the_release_float32_arithmetic_bit_for_bit(release: bool) -> None:
    model, prompt = long_path_model()
    trace = propagate(model, prompt, DecodeSettings(release_decoder=release))
    expected = torch.stack(release_float32_energies(ReferenceBriLLM.from_model(model), prompt, release=release))
    assert torch.equal(trace.energies.nan_to_num(-1.0), expected.nan_to_num(-1.0))


@pytest.mark.parametrize("release", [False, True])
def test_greedy_generation_of_480_tokens_follows_the_release_float32_arithmetic(release: bool) -> None:
    model, prompt = long_path_model()
    trace = propagate(model, prompt[:20], DecodeSettings(max_new_tokens=480, release_decoder=release))
    path = trace.path.tolist()
    expected = torch.stack(release_float32_energies(ReferenceBriLLM.from_model(model), path, release=release))
    assert torch.equal(trace.energies.nan_to_num(-1.0), expected.nan_to_num(-1.0))
    # Each generated node is the release's greedy choice: the highest energy, the lowest id on ties.
    best = torch.argmax(expected[19:].nan_to_num(-math.inf), dim=1)
    assert best.tolist() == path[20:]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_edge_rows_follow_the_release_walk(seed: int) -> None:
    rng = np.random.default_rng(seed)
    own = rng.random((9, 9)) < 0.35
    table = EdgeTable.from_own_mask(own)
    expected = row_map(own)
    s, t = np.meshgrid(np.arange(9), np.arange(9), indexing="ij")
    rows = table.rows(torch.tensor(s), torch.tensor(t)).numpy()
    for (a, b), row in expected.items():
        assert rows[a, b] == row
        assert int(table.rows_into(b)[a]) == row
    assert table.num_rows == own.sum() + 1


@pytest.mark.parametrize("release", [False, True])
@pytest.mark.parametrize("seed,V,d,own", [(0, 9, 4, 0.3), (1, 12, 6, 0.0), (2, 7, 8, 1.0), (3, 15, 4, 0.5)])
def test_greedy_trace_matches_reference(seed: int, V: int, d: int, own: float, release: bool) -> None:
    model = random_model(V, d, own, seed=seed)
    ref = ReferenceBriLLM.from_model(model)
    prompt = [1, 3, 2, 3]
    trace = propagate(model, prompt, DecodeSettings(max_new_tokens=6, release_decoder=release))
    assert trace.path.tolist() == ref.greedy(prompt, 6, release=release)
    assert_trace_matches(trace, ref.run(trace.path.tolist(), release=release))
    assert trace.forced.tolist() == [True] * 3 + [False] * 6


@pytest.mark.parametrize("release", [False, True])
def test_sampled_trace_records_the_reference_numbers(release: bool) -> None:
    model = random_model(11, 4, 0.4, seed=5)
    ref = ReferenceBriLLM.from_model(model)
    settings = DecodeSettings(max_new_tokens=8, greedy=False, temperature=0.7, top_k=4, seed=3, release_decoder=release)
    trace = propagate(model, [2, 5], settings)
    assert_trace_matches(trace, ref.run(trace.path.tolist(), release=release, temperature=0.7))
    # Sampling with top-k only ever picks one of the k most probable candidates.
    for step in trace.steps[1:]:
        assert step.target in [n for n, _, _ in step.top(4)] or step.chosen_rank <= 4
    # Same seed, same path; the release decoder never takes a self-loop.
    assert propagate(model, [2, 5], settings).path.tolist() == trace.path.tolist()
    if release:
        assert all(s.source != s.target for s in trace.steps[1:])


def test_user_defined_start_signal_replaces_ones_over_d() -> None:
    model = random_model(8, 4, 0.5, seed=2)
    ref = ReferenceBriLLM.from_model(model)
    base = (0.3, -1.0, 2.0, 0.0)
    trace = propagate(model, [4, 1, 6], DecodeSettings(max_new_tokens=2, start_signal=base))
    assert_trace_matches(trace, ref.run(trace.path.tolist(), base=np.array(base)))
    with pytest.raises(PromptError, match="4 values"):
        propagate(model, [4], DecodeSettings(start_signal=(1.0, 2.0)))


def test_temperature_scales_energies_before_softmax() -> None:
    model = random_model(10, 4, 0.5, seed=4)
    hot = propagate(model, [1, 2], DecodeSettings(temperature=2.0)).step(0)
    e = hot.energies.double() / 2.0
    np.testing.assert_allclose(hot.probabilities.numpy(), torch.softmax(e, 0).numpy(), atol=1e-6)
    # In the release decoder the temperature changes nothing.
    a = propagate(model, [1, 2], DecodeSettings(temperature=2.0, release_decoder=True)).step(0)
    b = propagate(model, [1, 2], DecodeSettings(temperature=0.5, release_decoder=True)).step(0)
    assert torch.equal(a.probabilities.nan_to_num(-1), b.probabilities.nan_to_num(-1))


def test_shared_row_candidates_tie_and_memory_ignores_content() -> None:
    model = random_model(10, 4, 0.2, seed=6)
    trace = propagate(model, [3, 7, 1, 2], DecodeSettings(max_new_tokens=2))
    for step in trace.steps:
        shared = model.edges.rows(torch.tensor(step.source), torch.arange(10)) == 0
        values = step.energies[shared]
        assert torch.allclose(values, values[0].expand_as(values))
    other = propagate(model, [5, 5, 9, 0], DecodeSettings(max_new_tokens=2))
    for a, b in zip(trace.memory, other.memory):
        assert torch.equal(a, b)


def test_reroute_equals_fresh_run_with_forced_prefix() -> None:
    model = random_model(13, 6, 0.4, seed=7)
    ref = ReferenceBriLLM.from_model(model)
    trace = propagate(model, [1, 4, 2], DecodeSettings(max_new_tokens=6))
    alt = 9 if trace.path[4] != 9 else 8
    rerouted = reroute(model, trace, 3, alt)
    fresh = propagate(model, trace.path[:4].tolist() + [alt], DecodeSettings(max_new_tokens=4))
    assert rerouted.path.tolist() == fresh.path.tolist()
    assert torch.equal(rerouted.energies, fresh.energies)
    assert rerouted.num_steps == trace.num_steps
    assert rerouted.path[:4].tolist() == trace.path[:4].tolist() and int(rerouted.path[4]) == alt
    # Steps before the forced one are unchanged; later steps agree with the reference.
    assert torch.equal(rerouted.energies[:4], trace.energies[:4])
    assert_trace_matches(rerouted, ref.run(rerouted.path.tolist()))
    assert rerouted.path.tolist() == ref.greedy(rerouted.path[:5].tolist(), 4)
    with pytest.raises(PromptError):
        reroute(model, trace, trace.num_steps, 0)


def test_prompt_errors_are_clear() -> None:
    model = random_model(10, 4, 0.3, seed=1)
    with pytest.raises(PromptError, match="--ids"):
        propagate(model, [])
    with pytest.raises(PromptError, match="position table of 512"):
        propagate(model, [1] * 510, DecodeSettings(max_new_tokens=3))
    propagate(model, [1] * 509, DecodeSettings(max_new_tokens=3))  # exactly fits
    with pytest.raises(PromptError, match="not a node id"):
        propagate(model, [1, 10])
    with pytest.raises(PromptError, match="not an integer"):
        propagate(model, [1, "a"])


def test_model_moves_between_devices_with_its_edges() -> None:
    model = random_model(10, 4, 0.3, seed=1)
    before = propagate(model, [1, 2, 3], DecodeSettings(max_new_tokens=3))
    model = model.to(torch.device("cpu")).double().float()
    assert model.edges.own_keys.device == model.weights.device
    assert torch.equal(propagate(model, [1, 2, 3], DecodeSettings(max_new_tokens=3)).energies, before.energies)


def test_progress_is_reported_after_every_step() -> None:
    model = random_model(10, 4, 0.3, seed=1)
    seen: list[tuple[int, int]] = []
    propagate(model, [1, 2, 3], DecodeSettings(max_new_tokens=4), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 6) for i in range(1, 7)]
