"""Count initialisation: a BriLLM set by hand to the training text's Kneser-Ney bigram.

The model family can hold a bigram exactly up to one restriction: every target that
reads the shared row 0 from a source gets the same energy. So the bigram it holds is
the *row-tied* Kneser-Ney bigram: an own-row target w of source v keeps P_KN(w | v),
and the remaining mass 1 - sum_own P_KN(. | v) is spread evenly over v's shared-row
targets (``tied_bigram_probs``).

How the parameters express it (``count_initialise``): every W = 0, so the signal and
the memory do not matter yet. Each bias is ON in channel 0 and OFF (-4) elsewhere.
Channel 0 of an own row (v, w) is S + log P(w | v) - log q_v, with q_v the tied share
of one shared-row target of v; channel 0 of the shared row is S. GELU is the identity
to within 2e-6 above 5 and almost 0 at OFF + PE <= -3, so the energy is channel 0
plus PE[i + 1, 0], a shift common to every target of a step, and the softmax over all
targets gives P(w | v) for own rows and q_v for each shared one. S is chosen so that
every channel-0 value stays at least 6 (5 after the PE's -1 at worst).
Error bound: the OFF channels add at most (d - 1) * GELU(-3)^2 = (d - 1) * 1.6e-5 under
the square root, which moves an energy of at least 5 by at most (d - 1) * 1.7e-6; the
log-probabilities therefore match to within about (d - 1) * 3.4e-6 plus float32 rounding.

That start carries no token identity in its outputs (channel 0 holds an energy, the
rest is silent), so the memory has nothing to learn from and the silent channels pass
almost no gradient. ``code > 0`` instead draws the other channels of every bias from
U(-code, code), a random code of each edge that the kept outputs pass on to the memory,
and lifts channel 0 to at least CODE_FLOOR: the code then adds r^2 <= (d - 1) GELU(code + 1)^2
under the square root, moving an energy by at most r^2 / (2 CODE_FLOOR), so the start is
the bigram to within that (0.05 nats at d = 8, code 0.5). The position logits then start
as a ramp of slope RECENCY, so the memory weighs the latest outputs most (0.63, 0.23,
0.09, ... at slope 1): the signal at step i is mostly the code of edge (u_{i-1}, u_i), and
W can learn what that context says about the next token. Without a code they start at
ones, the release's initialisation.
"""

from __future__ import annotations

import math

import torch

from ...data import BigramCounts
from ...edges import EdgeTable
from ...bigram import estimate_discount, kneser_ney_probs
from ...model import BriLLM

OFF = -4.0  # bias of the silent channels: GELU(-4 + PE) is at most 4.1e-3 in size
FLOOR = 6.0  # smallest channel-0 bias: GELU(x) = x to within 2e-6 for x >= 5
CODE_FLOOR = 20.0  # smallest channel-0 bias with a random code in the other channels
RECENCY = 1.0  # slope of the position logits' ramp when a code is drawn


def tied_bigram_probs(counts: BigramCounts, min_count: int, histories: torch.Tensor, discount: float | None = None) -> torch.Tensor:
    """Row-tied Kneser-Ney P(. | v) for each history v (len(histories), V), float64.

    Own-row targets (bigram count >= ``min_count``) keep their Kneser-Ney probability;
    the rest of each row's mass is shared evenly by the targets on the shared row.
    """
    d = estimate_discount(counts) if discount is None else discount
    kn = kneser_ney_probs(counts, histories, d)
    own = torch.zeros_like(kn, dtype=torch.bool)
    V = counts.vocab_size
    keep = counts.counts >= min_count
    sources, targets = counts.keys[keep] // V, counts.keys[keep] % V
    row_of = torch.full((V,), -1, dtype=torch.int64)
    row_of[histories] = torch.arange(histories.numel())
    mask = row_of[sources] >= 0
    own[row_of[sources[mask]], targets[mask]] = True
    shared_mass = (kn * ~own).sum(1, keepdim=True)
    shared_count = (~own).sum(1, keepdim=True).clamp(min=1)
    return torch.where(own, kn, shared_mass / shared_count)


def relative_logits(edges: EdgeTable, counts: BigramCounts, min_count: int, discount: float | None = None) -> torch.Tensor:
    """log P(w | v) - log q_v of every own row (v, w), in row order (float64): the row-tied bigram's
    logit of each own-row target relative to one shared-row target of the same source."""
    V = edges.vocab_size
    probs = tied_bigram_probs(counts, min_count, torch.arange(V), discount)
    sources, targets = edges.own_pairs()
    shared = torch.ones(V, V, dtype=torch.bool)
    shared[sources, targets] = False
    # log q_v: one shared-row target's probability (any value when v has none: it is never used)
    share = torch.where(shared, probs, torch.zeros_like(probs)).amax(1).clamp(min=1e-300).log()
    return probs[sources, targets].log() - share[sources]


@torch.no_grad()
def count_initialise(
    model: BriLLM, counts: BigramCounts, min_count: int, discount: float | None = None, code: float = 0.0, seed: int = 0
) -> None:
    """Set ``model`` (whose own rows are the bigrams seen >= ``min_count`` times) to the row-tied bigram.

    ``code`` > 0: the other bias channels hold a random code (U(-code, code), drawn from ``seed``).
    """
    relative = relative_logits(model.edges, counts, min_count, discount)
    lowest = float(relative.min()) if relative.numel() else 0.0
    level = (CODE_FLOOR if code > 0 else FLOOR) - min(lowest, 0.0)
    if not math.isfinite(level):
        raise ValueError("count initialisation produced a non-finite bias")
    model.weights.zero_()
    if code > 0:
        model.biases.uniform_(-code, code, generator=torch.Generator().manual_seed(seed))
    else:
        model.biases.fill_(OFF)
    model.biases[0, 0, 0] = level
    model.biases[1:, 0, 0] = (level + relative).to(model.biases.dtype)
    if code > 0:
        model.positions.copy_(RECENCY * torch.arange(model.config.max_positions, dtype=model.positions.dtype).reshape(model.positions.shape))
    else:
        model.positions.fill_(1.0)
