"""The memory profile (weight by distance, entropy) against sums done by hand."""

from __future__ import annotations

import math

import pytest
import torch

from brillm_core import memory_profile, random_model


def test_memory_profile_averages_each_distance_over_the_steps_that_reach_it() -> None:
    model = random_model(5, 2, 0.5, seed=3, max_positions=8)
    with torch.no_grad():
        model.positions.copy_(torch.tensor([0.0, 1.0, 3.0, 2.0, 0.5, 0.0, 0.0, 0.0]).reshape(1, 8, 1))
    profile = memory_profile(model, 5)  # steps 1, 2, 3 have a memory of 1, 2, 3 outputs
    logits = [0.0, 1.0, 3.0]
    by_hand = []
    for i in (1, 2, 3):
        z = [math.exp(v) for v in logits[:i]]
        by_hand.append([w / sum(z) for w in z][::-1])  # distance 1 first
    assert profile.by_distance == pytest.approx([
        (by_hand[0][0] + by_hand[1][0] + by_hand[2][0]) / 3, (by_hand[1][1] + by_hand[2][1]) / 2, by_hand[2][2]])
    entropies = [-sum(w * math.log(w) for w in a) for a in by_hand]
    assert profile.entropy == pytest.approx(sum(entropies) / 3)
    one_hot = random_model(5, 2, 0.5, seed=3, max_positions=8)
    with torch.no_grad():
        one_hot.positions.copy_(torch.arange(8.0).reshape(1, 8, 1) * 200)  # a steep ramp: all on the previous output
    steep = memory_profile(one_hot, 8)
    assert steep.by_distance[0] == 1.0 and steep.entropy == 0.0
    with pytest.raises(ValueError, match="length must be in 3..8"):
        memory_profile(model, 9)
