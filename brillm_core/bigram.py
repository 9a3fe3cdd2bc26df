"""The interpolated Kneser-Ney bigram of a training text's bigram counts (Chen & Goodman).

With c(v, w) the training bigram counts and discount D = n1 / (n1 + 2 n2) (n_r = bigram
types seen r times),
  P(w | v) = max(c(v,w) - D, 0) / c(v) + D N1+(v .) / c(v) * Pc(w)     (Pc(w) if c(v) = 0)
  Pc(w)    = max(N1+(. w) - D, 0) / N1+(. .) + D |{w: N1+(. w) > 0}| / N1+(. .) / V,
so the continuation unigram is itself interpolated with the uniform distribution and
every token has a probability above zero. ``brillm eval`` scores it as the baseline; the
counts start of training sets a model to it.
"""

from __future__ import annotations

import torch

from .data import BigramCounts


def estimate_discount(counts: BigramCounts) -> float:
    """D = n1 / (n1 + 2 n2) over bigram types; 0.75 when there are no singletons or doubletons."""
    n1 = int((counts.counts == 1).sum())
    n2 = int((counts.counts == 2).sum())
    return n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.75


def kneser_ney_probs(counts: BigramCounts, histories: torch.Tensor, discount: float) -> torch.Tensor:
    """Interpolated Kneser-Ney P(. | v) for each history v: (len(histories), V), float64."""
    V = counts.vocab_size
    sources, targets = counts.keys // V, counts.keys % V
    types = float(counts.keys.numel())
    cont = torch.bincount(targets, minlength=V).double()  # N1+(. w)
    seen = float((cont > 0).sum())
    p_cont = (cont - discount).clamp(min=0) / types + discount * seen / types / V
    follow = torch.bincount(sources, minlength=V).double()  # N1+(v .)
    total = torch.bincount(sources, weights=counts.counts.double(), minlength=V)  # c(v)
    row_of = torch.full((V,), -1, dtype=torch.int64)
    row_of[histories] = torch.arange(histories.numel())
    mask = row_of[sources] >= 0
    rows, cols = row_of[sources[mask]], targets[mask]
    c = total[histories]
    has = c > 0
    lam = torch.where(has, discount * follow[histories] / c.clamp(min=1), torch.ones_like(c))
    out = lam[:, None] * p_cont[None, :]
    direct = (counts.counts[mask].double() - discount).clamp(min=0) / c[rows]
    out[rows, cols] += direct
    return out
