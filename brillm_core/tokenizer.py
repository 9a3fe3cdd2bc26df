"""Tokenisers that map text to node ids: byte-level BPE (tokenizers) and one node per character.

Both follow one small protocol (``NodeTokenizer``). Text a tokeniser cannot represent
maps to the unknown node, and ``encode`` reports each such piece so the caller can warn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tokenizers import Tokenizer, decoders

from . import jsonfile
from .errors import PromptError, TokenizerError
from .regular import open_regular

BPE_FILE = "tokenizer.json"
CHAR_FILE = "chars.json"
MAX_VOCAB_FILE_BYTES = 64 * 2**20  # a chars.json of a million nodes is a few MB
MAX_BPE_FILE_BYTES = 256 * 2**20  # a tokenizer.json of a million tokens and merges is tens of MB
# The BPE trainer holds each line whole, with its pieces and offsets: one 89 MB line took 9.8 GB and
# aborted inside the Rust library; a line of 1 Mi characters takes a few hundred MB.
MAX_BPE_LINE_CHARS = 2**20


@dataclass
class Encoding:
    """Node ids of a text, and the pieces that fell back to the unknown node."""

    ids: list[int]
    unknown: list[dict] = field(default_factory=list)  # {"position": token index, "text": piece}


class NodeTokenizer(Protocol):
    """What the engine needs of a tokeniser."""

    kind: str
    unk_id: int

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> Encoding: ...

    @property
    def most_chars_per_token(self) -> int: ...

    def decode(self, ids: list[int]) -> str: ...

    def token(self, node: int) -> str: ...

    def tokens(self) -> list[str]: ...

    def save(self, directory: Path) -> Path: ...


def _check_text(text: object) -> str:
    """Reject anything that is not a str (bytes must be decoded as UTF-8 by the caller)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PromptError(f"input is not valid UTF-8 (byte {exc.start}): decode it first or fix the file") from exc
    if not isinstance(text, str):
        raise PromptError(f"prompt must be text, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: undecodable bytes from argv or a file
        raise PromptError(f"input is not valid UTF-8 (character {exc.start}): fix its encoding") from exc
    return text


class BPETokenizer:
    """A Hugging Face ``tokenizers`` byte-level BPE whose vocabulary is the node list."""

    kind = "bpe"

    def __init__(self, tokenizer: Tokenizer, unk_token: str = "[UNK]") -> None:
        self._tok = tokenizer
        if self._tok.decoder is None:
            self._tok.decoder = decoders.ByteLevel()
        unk = self._tok.token_to_id(unk_token)
        self.unk_id = 0 if unk is None else int(unk)
        try:  # nodes are ids 0..V-1: a gap would be a node without text, a repeat two texts for one node
            self._vocab = vocab_to_list(self._tok.get_vocab(with_added_tokens=True))
        except TokenizerError as exc:
            raise TokenizerError(f"tokenizer vocabulary is not a node list: {exc}") from exc
        self._longest = max(map(len, self._vocab))

    @classmethod
    def from_file(cls, path: str | Path) -> "BPETokenizer":
        """Load a ``tokenizer.json`` (it holds data only; nothing is executed)."""
        path = Path(path)
        try:
            with open_regular(path, "tokenizer file", TokenizerError) as handle:
                blob = handle.read(MAX_BPE_FILE_BYTES + 1)
        except FileNotFoundError as exc:
            raise TokenizerError(f"tokenizer file not found: {path}") from exc
        except OSError as exc:
            raise TokenizerError(f"cannot read tokenizer file {path}: {exc.strerror or exc}") from exc
        if len(blob) > MAX_BPE_FILE_BYTES:
            raise TokenizerError(f"tokenizer file {path} is larger than {MAX_BPE_FILE_BYTES // 2**20} MiB")
        try:
            return cls(Tokenizer.from_str(blob.decode("utf-8")))
        except Exception as exc:  # tokenizers raises a bare Exception on malformed files
            raise TokenizerError(f"cannot read tokenizer file {path}: {exc}") from exc

    @property
    def vocab_size(self) -> int:
        """Number of tokens, which must equal the number of nodes."""
        return len(self._vocab)

    @property
    def most_chars_per_token(self) -> int:
        """The most bytes of (normalised) text one token covers: its longest byte-level token."""
        return self._longest

    def encode(self, text: str) -> Encoding:
        """Token ids; pieces of text no token covers, or [UNK] tokens, are reported."""
        text = _check_text(text)
        enc = self._tok.encode(text, add_special_tokens=False)
        ids = list(enc.ids)
        unknown = [{"position": i, "text": text[a:b]} for i, (n, (a, b)) in enumerate(zip(ids, enc.offsets)) if n == self.unk_id]
        covered = [False] * len(text)
        for a, b in enc.offsets:
            for k in range(a, min(b, len(text))):
                covered[k] = True
        dropped = [k for k, ch in enumerate(text) if not covered[k] and not ch.isspace()]
        if dropped:
            unknown.append({"position": None, "text": "".join(text[k] for k in dropped), "dropped": True})
        return Encoding(ids, unknown)

    def decode(self, ids: list[int]) -> str:
        """Text of a node sequence."""
        return self._tok.decode(list(ids), skip_special_tokens=False)

    def token(self, node: int) -> str:
        """Readable text of one node: the byte-level marker Ġ shown as a space."""
        return self._vocab[node].replace("Ġ", " ").replace("Ċ", "\\n")

    def tokens(self) -> list[str]:
        """Raw token strings, indexed by node id."""
        return list(self._vocab)

    def save(self, directory: Path) -> Path:
        """Write ``tokenizer.json`` into ``directory``."""
        path = Path(directory) / BPE_FILE
        self._tok.save(str(path))
        return path


class CharTokenizer:
    """One node per character, as the Chinese release; ``<unk>`` (or id 0) is unknown."""

    kind = "char"

    def __init__(self, chars: list[str], unk_token: str = "<unk>") -> None:
        if not chars:
            raise TokenizerError("a character vocabulary needs at least one entry")
        if len(set(chars)) != len(chars):
            raise TokenizerError("character vocabulary has repeated entries")
        self._chars = list(chars)
        self._index = {c: i for i, c in enumerate(self._chars)}
        self.unk_id = self._index.get(unk_token, 0)

    @classmethod
    def from_file(cls, path: str | Path) -> "CharTokenizer":
        """Load ``chars.json`` (a JSON list of node texts, index = node id)."""
        chars = jsonfile.read(path, "character vocabulary", MAX_VOCAB_FILE_BYTES, TokenizerError)
        if not isinstance(chars, list) or not all(isinstance(c, str) for c in chars):
            raise TokenizerError(f"{path} must hold a JSON list of strings")
        return cls(chars)

    @property
    def vocab_size(self) -> int:
        """Number of nodes."""
        return len(self._chars)

    @property
    def most_chars_per_token(self) -> int:
        """One: every character is a token."""
        return 1

    def encode(self, text: str) -> Encoding:
        """One id per character; characters outside the vocabulary become ``<unk>``."""
        text = _check_text(text)
        ids, unknown = [], []
        for i, ch in enumerate(text):
            node = self._index.get(ch)
            if node is None:
                unknown.append({"position": i, "text": ch})
                node = self.unk_id
            ids.append(node)
        return Encoding(ids, unknown)

    def decode(self, ids: list[int]) -> str:
        """Concatenated characters."""
        return "".join(self._chars[i] for i in ids)

    def token(self, node: int) -> str:
        """The node's character."""
        return self._chars[node]

    def tokens(self) -> list[str]:
        """Characters indexed by node id."""
        return list(self._chars)

    def save(self, directory: Path) -> Path:
        """Write ``chars.json`` into ``directory``."""
        path = Path(directory) / CHAR_FILE
        path.write_text(json.dumps(self._chars, ensure_ascii=False), encoding="utf-8")
        return path


def vocab_to_list(vocab: dict[str, int]) -> list[str]:
    """``{token: id}`` with ids exactly 0..V-1 -> list of tokens by id, else a clear error."""
    if not isinstance(vocab, dict) or not vocab:
        raise TokenizerError("vocabulary must be a non-empty JSON object {token: id}")
    ids = sorted(vocab.values()) if all(isinstance(v, int) for v in vocab.values()) else None
    if ids != list(range(len(vocab))):
        raise TokenizerError(f"vocabulary ids must be the integers 0..{len(vocab) - 1}, each once")
    tokens = [""] * len(vocab)
    for token, node in vocab.items():
        tokens[node] = token
    return tokens


def load_tokenizer(directory: str | Path) -> NodeTokenizer:
    """The tokeniser saved in a checkpoint directory (``tokenizer.json`` or ``chars.json``)."""
    directory = Path(directory)
    if (directory / BPE_FILE).is_file():
        return BPETokenizer.from_file(directory / BPE_FILE)
    if (directory / CHAR_FILE).is_file():
        return CharTokenizer.from_file(directory / CHAR_FILE)
    raise TokenizerError(f"{directory} holds neither {BPE_FILE} nor {CHAR_FILE}")


def train_bpe(texts: list[str], vocab_size: int, special_tokens: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")) -> BPETokenizer:
    """Train a byte-level BPE like the release's (NFKC, prefix space, specials first); TokenizerError for a
    line longer than ``MAX_BPE_LINE_CHARS`` (break such text into lines first)."""
    from tokenizers import models, normalizers, pre_tokenizers, trainers

    for number, text in enumerate(texts, start=1):
        if len(text) > MAX_BPE_LINE_CHARS:
            raise TokenizerError(f"non-blank line {number:,} of the corpus has {len(text):,} characters; the BPE trainer reads "
                                 f"lines of at most {MAX_BPE_LINE_CHARS:,}: break the text into lines (one paragraph "
                                 "or sentence each)")

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return BPETokenizer(tok)
