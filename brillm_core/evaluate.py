"""``brillm eval``: full-vocabulary perplexity, top-1/top-5 and mean rank beside unigram and Kneser-Ney bigram baselines.

Top-k accuracy and rank count ties fairly for every model alike (``scoring.expected_hits``).

The model and the baselines are scored on exactly the same predictions: the text is tokenised
with the model's tokeniser, cut into windows of the training sequence length, and in
each window every token but the first is predicted (the model from its path so far, the
bigram from the previous token). Both baselines are estimated from the bigram counts
of the model's own training split, stored in the checkpoint.

Model: ``scoring.score_ids`` on the same windows: every node competes at every step
(softmax of the energies at temperature 1, in float64 log space).
Unigram, two ways: maximum likelihood with nothing added (a held-out token never seen in
training has probability 0 and makes its perplexity infinite; such tokens are counted),
and absolutely discounted with the same D as the bigram, interpolated with the uniform
distribution: P(w) = max(c(w) - D, 0) / N + D |{w: c(w) > 0}| / N / V.
The bigram baseline is the interpolated Kneser-Ney bigram of ``bigram.py``.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .atomic import write_json_atomic
from .bigram import estimate_discount, kneser_ney_probs
from .checkpoint import METADATA_FILE, Checkpoint, load_checkpoint, resolve_checkpoint
from .data import COUNTS_FILE, BigramCounts, corpus_lines, read_corpus, tokenize_lines
from .errors import BriLLMError, SignalOverflowError
from .scoring import Score, score_ids, tie_ranks
from .trace import DecodeSettings

# Texts to score are tokenised whole, which holds them many times over in memory; 2 MiB
# (about half a million tokens) is far more than a held-out split needs.
MAX_TEXT_BYTES = 2 * 2**20


class EvaluationError(BriLLMError):
    """The held-out text or the checkpoint cannot be evaluated as asked."""


def require_finite_score(score: Score) -> Score:
    """The score, unless the model's energies overflowed float32 on the text (its perplexity would be NaN)."""
    if not math.isfinite(score.nll):
        raise SignalOverflowError(" on this text (its perplexity would not be a number)")
    return score


def check_text_size(path: str | Path) -> None:
    """Refuse a text over MAX_TEXT_BYTES before reading it (tokenising it whole would hold it many times over)."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        return  # reading it reports the problem with its own message
    if size > MAX_TEXT_BYTES:
        raise EvaluationError(f"{path} has {size:,} bytes; scoring reads at most {MAX_TEXT_BYTES:,} "
                              "(about half a million tokens): score a sample, or split the text and score each part")


def windows(ids: torch.Tensor, length: int) -> list[torch.Tensor]:
    """Consecutive windows of at most ``length`` tokens; a last window of one token is dropped."""
    if length < 2:
        raise EvaluationError(f"the evaluation window must hold at least 2 tokens, got {length}")
    chunks = [ids[i : i + length] for i in range(0, ids.numel(), length)]
    return [c for c in chunks if c.numel() >= 2]


def pairs(chunks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(previous token, predicted token) of every prediction in the windows."""
    return torch.cat([c[:-1] for c in chunks]), torch.cat([c[1:] for c in chunks])


def score_table(probs: torch.Tensor, targets: torch.Tensor) -> Score:
    """Score from each prediction's full distribution (rows) and its target; ties shared fairly (see scoring)."""
    greater, tied = tie_ranks(probs, targets)
    return Score.from_ranks(greater, tied, float(-torch.log(probs.gather(1, targets[:, None])).sum()))


def unigram_score(probs: torch.Tensor, targets: torch.Tensor) -> Score:
    """Score of one fixed distribution on every target (ranks computed once per node; ties shared fairly)."""
    greater = (probs[None, :] > probs[:, None]).sum(dim=1)[targets]
    tied = (probs[None, :] == probs[:, None]).sum(dim=1)[targets]
    return Score.from_ranks(greater, tied, float(-torch.log(probs[targets]).sum()))


def unigram_probs(counts: BigramCounts, discount: float = 0.0) -> torch.Tensor:
    """Unigram distribution of the training stream (float64): MLE, or absolutely discounted towards uniform."""
    uni = counts.unigram.double()
    total, seen = uni.sum(), float((uni > 0).sum())
    return (uni - discount).clamp(min=0) / total + discount * seen / total / counts.vocab_size


@dataclass
class Evaluation:
    """Scores of the model and both baselines on one held-out text."""

    model: Score
    unigram_mle: Score
    unigram: Score
    kneser_ney: Score
    discount: float
    tokens: int
    window: int
    memory_window: int | None
    unseen_unigram: int
    unknown_pieces: int

    @property
    def key(self) -> str:
        """Suffix of the metadata key of this evaluation: the memory ablation, if any."""
        return "" if self.memory_window is None else f" (memory window {self.memory_window})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (an infinite perplexity is written as null)."""
        def clean(score: Score) -> dict[str, Any]:
            return {k: (v if isinstance(v, int) or math.isfinite(v) else None) for k, v in score.to_dict().items()}

        return {
            "tokens": self.tokens,
            "window": self.window,
            "memory_window": self.memory_window,
            "unknown_pieces": self.unknown_pieces,
            "model": clean(self.model),
            "unigram_mle": {**clean(self.unigram_mle), "unseen_tokens": self.unseen_unigram},
            "unigram": {**clean(self.unigram), "discount": self.discount},
            "kneser_ney_bigram": {**clean(self.kneser_ney), "discount": self.discount},
        }

    def table(self) -> str:
        """Human-readable comparison."""
        lines = [f"{'':32s}{'perplexity':>12s}{'top-1':>9s}{'top-5':>9s}{'mean rank':>11s}"]
        for name, s in (
            ("BriLLM (this model)" if self.memory_window is None else f"BriLLM, memory window {self.memory_window}",
             self.model),
            (f"unigram (MLE, {self.unseen_unigram} unseen)", self.unigram_mle),
            (f"unigram (discounted, D={self.discount:.3f})", self.unigram),
            (f"Kneser-Ney bigram (D={self.discount:.3f})", self.kneser_ney),
        ):
            lines.append(f"{name:32s}{s.perplexity:12.2f}{s.top1_accuracy:9.1%}{s.top5_accuracy:9.1%}{s.mean_rank:11.1f}")
        lines.append("top-k: expected accuracy with ties broken at random (a tie of m nodes counts 1/m each)")
        return "\n".join(lines)


def training_window(checkpoint: Checkpoint) -> int:
    """The training sequence length recorded in the metadata, else the position table's length."""
    settings = checkpoint.metadata.get("training", {}).get("settings", {})
    return int(settings.get("seq_len") or checkpoint.config.max_positions)


def evaluate(
    checkpoint: Checkpoint,
    text_file: str | Path,
    window: int | None = None,
    discount: float | None = None,
    memory_window: int | None = None,
) -> Evaluation:
    """Score the model and both baselines on a held-out UTF-8 text file.

    ``memory_window`` scores the model with its memory limited to the last N outputs
    (an ablation that shows what the rest of the memory contributes); the baselines are
    unchanged.
    """
    if discount is not None and not 0 <= discount < 1:  # also refuses NaN
        raise EvaluationError(f"the Kneser-Ney discount D must be in [0, 1), got {discount} "
                              "(outside it the baselines' probabilities are negative or sum past 1)")
    check_text_size(text_file)
    if checkpoint.path is None or not (checkpoint.path / COUNTS_FILE).is_file():
        raise EvaluationError(
            f"{checkpoint.path} has no {COUNTS_FILE}: the baselines need the training split's bigram counts "
            "(checkpoints written by `brillm train` carry them)"
        )
    counts = BigramCounts.load(checkpoint.path / COUNTS_FILE, checkpoint.config.vocab_size)
    ids, unknown = tokenize_lines(checkpoint.tokenizer, corpus_lines(read_corpus([text_file])))
    length = min(window or training_window(checkpoint), checkpoint.config.max_positions)
    chunks = windows(ids, length)
    if not chunks:
        raise EvaluationError(f"{text_file} has {ids.numel()} tokens; evaluation needs at least 2")
    prev, target = pairs(chunks)
    d = estimate_discount(counts) if discount is None else float(discount)
    unigram_mle = unigram_score(unigram_probs(counts), target)
    unigram = unigram_score(unigram_probs(counts, d), target)
    hist, inverse = torch.unique(prev, return_inverse=True)
    kn_rows = kneser_ney_probs(counts, hist, d)
    kneser_ney = Score()
    for h in range(hist.numel()):  # one history at a time keeps memory at V floats per row
        sel = inverse == h
        kneser_ney = kneser_ney.add(score_table(kn_rows[h].expand(int(sel.sum()), -1), target[sel]))
    settings = DecodeSettings(memory_window=memory_window)
    scored = require_finite_score(score_ids(checkpoint.model, ids.tolist(), settings, window=length))
    return Evaluation(
        model=scored,
        unigram_mle=unigram_mle,
        unigram=unigram,
        kneser_ney=kneser_ney,
        discount=d,
        tokens=int(ids.numel()),
        window=length,
        memory_window=memory_window,
        unseen_unigram=int((counts.unigram[target] == 0).sum()),
        unknown_pieces=unknown,
    )


def store_evaluation(checkpoint: Checkpoint, text_file: str | Path, result: Evaluation) -> None:
    """Add the result to the checkpoint's metadata.json (atomically), keyed by the text's file name."""
    files = read_corpus([text_file])
    entry = {
        **result.to_dict(),
        "text_file": str(text_file),
        "text_sha256": files[0].sha256,
        "evaluated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    checkpoint.metadata.setdefault("evaluations", {})[Path(text_file).name + result.key] = entry
    write_json_atomic(checkpoint.path / METADATA_FILE, checkpoint.metadata)


def evaluate_path(
    model_dir: str | Path,
    text_file: str | Path,
    window: int | None = None,
    discount: float | None = None,
    save: bool = True,
    memory_window: int | None = None,
) -> Evaluation:
    """Load a checkpoint (or a run's newest), evaluate it, and store the figures in its metadata."""
    checkpoint = load_checkpoint(resolve_checkpoint(model_dir), device="cpu")
    result = evaluate(checkpoint, text_file, window, discount, memory_window)
    if save:
        store_evaluation(checkpoint, text_file, result)
    return result
