"""Training data: corpus files -> token stream -> bigram counts, own-row edges, negatives, batches.

Everything that decides *what* a training step sees lives here and is a pure function
of (corpus, tokenizer, settings, seed, step): the order of sequences is a seeded
permutation per epoch and the random negatives come from a generator seeded with
(seed, step, rank), so a resumed run needs only the step number to continue exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .edges import EdgeTable
from .errors import BriLLMError
from .regular import regular_path
from .tokenizer import CHAR_FILE, BPETokenizer, CharTokenizer, NodeTokenizer, TokenizerError, load_tokenizer, train_bpe

COUNTS_FILE = "bigram_counts.safetensors"
UNK_WORD = "[UNK]"
CHAR_UNK = "<unk>"


class CorpusError(BriLLMError):
    """A corpus file is missing, empty, not UTF-8, or too small to train on."""


@dataclass(frozen=True)
class CorpusFile:
    """One corpus file's text and fingerprint."""

    path: Path
    text: str
    sha256: str

    def describe(self) -> dict[str, str | int]:
        """Provenance for checkpoint metadata."""
        return {"path": str(self.path), "sha256": self.sha256, "bytes": len(self.text.encode("utf-8"))}


def read_corpus(paths: Sequence[str | Path]) -> list[CorpusFile]:
    """Read UTF-8 text files, refusing missing, empty or undecodable ones with a precise message."""
    if not paths:
        raise CorpusError("no corpus files given: pass one or more UTF-8 text files")
    files = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise CorpusError(f"corpus file not found: {path}")
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise CorpusError(
                f"{path} is not UTF-8 text (bad byte 0x{data[exc.start]:02x} at offset {exc.start}, line {line}); "
                "convert it, e.g. `iconv -f latin1 -t utf-8`"
            ) from exc
        if not text.strip():
            raise CorpusError(f"corpus file {path} is empty (no non-blank text)")
        files.append(CorpusFile(path, text, hashlib.sha256(data).hexdigest()))
    return files


def corpus_lines(files: Sequence[CorpusFile]) -> list[str]:
    """Non-blank lines of all files, in order, without trailing whitespace."""
    return [line.rstrip() for f in files for line in f.text.splitlines() if line.strip()]


def word_tokenizer(lines: Sequence[str], vocab_size: int | None = None) -> BPETokenizer:
    """A whitespace word-level tokenizer.json ([UNK] is id 0; words by frequency, then text).

    Saved as an ordinary ``tokenizer.json`` so the engine loads it as its "bpe" kind.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    counts: dict[str, int] = {}
    for line in lines:
        for word in line.split():
            counts[word] = counts.get(word, 0) + 1
    words = sorted(counts, key=lambda w: (-counts[w], w))
    if vocab_size is not None:
        words = words[: max(vocab_size - 1, 0)]
    vocab = {UNK_WORD: 0, **{w: i + 1 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_WORD))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return BPETokenizer(tok)


def char_tokenizer(lines: Sequence[str]) -> CharTokenizer:
    """One node per character seen (plus newline), ``<unk>`` first."""
    chars = sorted(set("".join(lines)) | {"\n"})
    return CharTokenizer([CHAR_UNK, *chars])


def build_tokenizer(kind: str, lines: Sequence[str], vocab_size: int | None) -> NodeTokenizer:
    """Train a tokeniser of ``kind`` ("bpe", "char" or "word") on the corpus lines."""
    if kind == "bpe":
        if vocab_size is None or vocab_size < 300:
            raise CorpusError("a byte-level BPE needs --vocab-size of at least 300 (256 bytes + specials + merges)")
        return train_bpe(list(lines), vocab_size)
    if kind == "char":
        return char_tokenizer(lines)
    if kind == "word":
        return word_tokenizer(lines, vocab_size)
    raise CorpusError(f"unknown tokenizer kind {kind!r}: use bpe, char or word")


def reuse_tokenizer(path: str | Path, vocab_size: int | None) -> NodeTokenizer:
    """Load a tokenizer.json / chars.json (or a checkpoint directory's) and check its size."""
    path = Path(path)
    if path.is_dir():
        tokenizer = load_tokenizer(path)
    elif path.name == CHAR_FILE:
        tokenizer = CharTokenizer.from_file(path)
    else:
        tokenizer = BPETokenizer.from_file(path)
    if vocab_size is not None and tokenizer.vocab_size != vocab_size:
        raise TokenizerError(
            f"tokenizer {path} has {tokenizer.vocab_size} tokens but --vocab-size asks for {vocab_size}; "
            "drop --vocab-size or use a matching tokenizer"
        )
    return tokenizer


def tokenize_lines(tokenizer: NodeTokenizer, lines: Sequence[str]) -> tuple[torch.Tensor, int]:
    """Token stream of all lines concatenated (char tokenisers keep the newline); unknown count."""
    ids: list[int] = []
    unknown = 0
    suffix = "\n" if tokenizer.kind == "char" else ""
    for line in lines:
        enc = tokenizer.encode(line + suffix)
        ids.extend(enc.ids)
        unknown += len(enc.unknown)
    return torch.tensor(ids, dtype=torch.int64), unknown


@dataclass(frozen=True)
class BigramCounts:
    """Sparse bigram counts (sorted keys s*V+t) and unigram counts of one token stream."""

    vocab_size: int
    keys: torch.Tensor
    counts: torch.Tensor
    unigram: torch.Tensor

    @classmethod
    def from_stream(cls, stream: torch.Tensor, vocab_size: int) -> "BigramCounts":
        """Count adjacent pairs and single tokens."""
        keys, counts = torch.unique(stream[:-1] * vocab_size + stream[1:], return_counts=True)
        return cls(vocab_size, keys, counts, torch.bincount(stream, minlength=vocab_size))

    def edges(self, min_count: int = 1) -> EdgeTable:
        """Edge table giving an own row to every bigram seen at least ``min_count`` times."""
        if min_count < 1:
            raise CorpusError(f"--min-count must be >= 1 (the release used 1: count > 0), got {min_count}")
        return EdgeTable(self.vocab_size, self.keys[self.counts >= min_count])

    def save(self, path: Path) -> None:
        """Write keys, counts and unigram counts as safetensors."""
        save_file({"keys": self.keys.contiguous(), "counts": self.counts.contiguous(), "unigram": self.unigram.contiguous()}, str(path))

    @classmethod
    def load(cls, path: Path, vocab_size: int) -> "BigramCounts":
        """Read counts written by ``save``; a clear error if missing or unreadable."""
        try:
            with regular_path(path, "bigram counts", CorpusError) as named:
                t = load_file(named)
        except (FileNotFoundError, SafetensorError, OSError) as exc:
            raise CorpusError(f"bigram counts {path} are missing or unreadable: {exc}") from exc
        if set(t) != {"keys", "counts", "unigram"} or t["unigram"].numel() != vocab_size:
            raise CorpusError(f"bigram counts {path} do not fit a {vocab_size}-node model")
        return cls(vocab_size, t["keys"], t["counts"], t["unigram"])


def hard_negative_table(counts: BigramCounts, k: int) -> torch.Tensor:
    """Per source, k + 1 candidates: successors by count (desc), then frequent tokens (the release's).

    The release's hard negatives are the most frequent successors of the source; when a
    source has fewer than k + 1 successors the rest are filled with the corpus's most
    frequent tokens, so every position has exactly k negatives once the gold is removed.
    """
    V = counts.vocab_size
    if not 1 <= k <= V - 1:
        raise CorpusError(f"--negatives must be between 1 and V - 1 = {V - 1}, got {k}")
    sources = (counts.keys // V).numpy()
    targets = (counts.keys % V).numpy()
    freq = counts.counts.numpy()
    order = np.lexsort((targets, -freq, sources))  # by source, then count desc, then id
    sources, targets = sources[order], targets[order]
    starts = np.searchsorted(sources, np.arange(V + 1))
    global_order = np.lexsort((np.arange(V), -counts.unigram.numpy()))
    table = np.empty((V, k + 1), dtype=np.int64)
    for s in range(V):
        succ = targets[starts[s] : starts[s + 1]][: k + 1]
        need = k + 1 - succ.size
        if need:
            pool = global_order[: k + 1 + succ.size]
            fill = pool[~np.isin(pool, succ)][:need]
            succ = np.concatenate([succ, fill])
        table[s] = succ
    return torch.from_numpy(table)


def drop_gold(candidates: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """Indices of k of the (..., k + 1) candidates: all but the gold target if present, else all but the last."""
    k = candidates.shape[-1] - 1
    hit = candidates == gold.unsqueeze(-1)
    first = torch.where(hit.any(-1), hit.int().argmax(-1), torch.full_like(gold, k))
    idx = torch.arange(k, device=gold.device)
    return idx + (idx >= first.unsqueeze(-1)).long()


def random_negatives(gold: torch.Tensor, vocab_size: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """k uniform draws (with replacement) from the V - 1 nodes other than the gold target."""
    if not 1 <= k <= vocab_size - 1:
        raise CorpusError(f"--negatives must be between 1 and V - 1 = {vocab_size - 1}, got {k}")
    draw = torch.randint(0, vocab_size - 1, (*gold.shape, k), generator=generator)
    return draw + (draw >= gold.unsqueeze(-1)).long()


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """Generator for one step's random choices, derived from (seed, step, rank) alone."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class SequenceBatches:
    """Fixed-length windows of a token stream, served in a seeded order that depends only on the step.

    Window j is ``stream[j*(T-1) : j*(T-1) + T]`` (consecutive windows share one token,
    so every bigram of the stream is trained). Epoch e visits the windows in the order
    ``randperm(n, seed, e)``; global batch ``step`` takes items ``step * B * world`` ..
    and rank r its own slice of B, so resuming at ``step`` is exact.
    """

    def __init__(self, stream: torch.Tensor, seq_len: int, batch_size: int, seed: int, world: int = 1, rank: int = 0) -> None:
        if seq_len < 2:
            raise CorpusError(f"--seq-len must be at least 2 (one predicted token), got {seq_len}")
        if batch_size < 1:
            raise CorpusError(f"--batch-size must be >= 1, got {batch_size}")
        if stream.numel() < seq_len:
            raise CorpusError(
                f"the corpus has {stream.numel()} tokens, fewer than one training sequence of {seq_len}; "
                "add text or lower --seq-len"
            )
        self.stream, self.seq_len, self.batch_size = stream, seq_len, batch_size
        self.seed, self.world, self.rank = seed, world, rank
        self.num_sequences = (stream.numel() - 1) // (seq_len - 1)
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.int64)

    def _permutation(self, epoch: int) -> torch.Tensor:
        """The window order of one epoch (cached for the current epoch)."""
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0]))
            self._epoch, self._perm = epoch, torch.randperm(self.num_sequences, generator=gen)
        return self._perm

    def position(self, step: int) -> dict[str, int]:
        """Epoch and offset inside it where global batch ``step`` starts."""
        first = step * self.batch_size * self.world
        return {"step": step, "epoch": first // self.num_sequences, "offset": first % self.num_sequences}

    def batch(self, step: int) -> torch.Tensor:
        """This rank's (B, T) token ids for global batch ``step``."""
        first = (step * self.world + self.rank) * self.batch_size
        items = []
        for g in range(first, first + self.batch_size):
            window = int(self._permutation(g // self.num_sequences)[g % self.num_sequences])
            start = window * (self.seq_len - 1)
            items.append(self.stream[start : start + self.seq_len])
        return torch.stack(items)
