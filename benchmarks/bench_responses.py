"""Time response extraction for a 2,000-word stimulus on the English sample model (or a random 1,500-node model)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from brillm_core import Checkpoint, Encoding, load_checkpoint, random_model
from brillm_core.organization.checkpoints import untrained_model
from brillm_core.organization.stimulus import check_fits, stimulus_from_text, stimulus_responses, tokenize_stimulus

SAMPLE = Path(__file__).resolve().parents[1] / "sample_models" / "kjv-final"
WORDS = ("and the lord said unto moses in that day of his people which were come out land egypt they went "
         "into wilderness upon earth heaven light darkness water spirit god made all things good evening "
         "morning first second third beast field fowl air man woman garden tree fruit eat").split()


class WordHashTokenizer:
    """A stand-in tokeniser for the random model: one node per word (by hash), spaces dropped as byte-level BPE does."""

    kind, unk_id = "word-hash", 0

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def encode(self, text: str) -> Encoding:
        """A hashed node per word."""
        return Encoding([1 + sum(map(ord, w)) * 7919 % (self.vocab_size - 1) for w in text.split()])

    def token(self, node: int) -> str:
        """A placeholder text."""
        return f"w{node}"


def main() -> None:
    """Load the model, build the stimulus, and time tokenising, node-gated, landscape and untrained extraction."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--words", type=int, default=2000)
    ap.add_argument("--word-rate", type=float, default=2.5)
    ap.add_argument("--tr", type=float, default=1.5)
    args = ap.parse_args()
    if (SAMPLE / "config.json").is_file():
        ckpt, what = load_checkpoint(SAMPLE, device="cpu"), f"sample model {SAMPLE.name}"
    else:
        ckpt = Checkpoint(random_model(1500, 8, 0.01, seed=0), WordHashTokenizer(1500))
        what = f"random 1,500-node model (d = 8, 1 % own edges; {SAMPLE} is absent)"
    cfg = ckpt.config
    rng = np.random.default_rng(0)
    stimulus = stimulus_from_text(" ".join(rng.choice(WORDS, args.words)), args.word_rate)
    n_tr = int(np.ceil((stimulus.duration + 12) / args.tr))
    check_fits(stimulus, args.tr, n_tr)
    print(f"{what}: V = {cfg.vocab_size}, d = {cfg.hidden_size}, {cfg.max_positions} positions; "
          f"{args.words} words at {args.word_rate} words/s -> {n_tr} volumes of {args.tr} s")
    t0 = time.perf_counter()
    timeline = tokenize_stimulus(ckpt.tokenizer, stimulus)
    print(f"  tokenise: {timeline.ids.size} tokens in {time.perf_counter() - t0:.3f} s")
    for label, model in (("trained", ckpt.model), ("untrained control", untrained_model(ckpt.model, 0))):
        for kind in ("node_gated", "landscape"):
            t0 = time.perf_counter()
            r = stimulus_responses(model, timeline, args.tr, n_tr, kind, "sum")
            dt = time.perf_counter() - t0
            print(f"  {label:17s} {kind:10s}: {r.matrix.shape[1]:6d} ANs x {n_tr} volumes from {r.n_steps} steps "
                  f"in {r.n_windows} windows: {dt:.2f} s ({1e3 * dt / r.n_steps:.2f} ms/step)")


if __name__ == "__main__":
    main()
