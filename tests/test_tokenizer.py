"""Tokenisers: unknown pieces are reported, non-UTF-8 input is refused, files round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from brillm_core import BPETokenizer, CharTokenizer, PromptError, TokenizerError, train_bpe
from brillm_core.tokenizer import load_tokenizer, vocab_to_list


def test_char_tokenizer_maps_unknown_characters_to_unk_and_reports_them() -> None:
    tok = CharTokenizer(["<unk>", "a", "b", " "])
    enc = tok.encode("ab xa!")
    assert enc.ids == [1, 2, 3, 0, 1, 0]
    assert enc.unknown == [{"position": 3, "text": "x"}, {"position": 5, "text": "!"}]
    assert tok.decode([1, 2, 3]) == "ab "


def test_bpe_tokenizer_round_trips_and_reports_unk(tmp_path: Path) -> None:
    tok = train_bpe(["in the beginning was the word " * 30], 270)
    enc = tok.encode("in the word")
    assert enc.unknown == [] and tok.decode(enc.ids).strip() == "in the word"
    assert tok.tokens()[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and tok.unk_id == 1
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert isinstance(again, BPETokenizer) and again.encode("in the word").ids == enc.ids
    # A byte-level BPE covers every byte, so a new character is encoded, not dropped.
    assert train_bpe(["abc"] * 3, 300).encode("zéta").unknown == []


def test_non_utf8_input_is_refused() -> None:
    tok = CharTokenizer(["<unk>", "a"])
    with pytest.raises(PromptError, match="UTF-8"):
        tok.encode(b"a\xff")
    with pytest.raises(PromptError, match="UTF-8"):
        tok.encode("a\udcff")  # what Python makes of undecodable bytes in argv
    with pytest.raises(PromptError, match="text"):
        tok.encode(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("vocab", [{}, {"a": 1}, {"a": 0, "b": 0}, {"a": "0"}])
def test_bad_vocabularies(vocab) -> None:
    with pytest.raises(TokenizerError):
        vocab_to_list(vocab)


def test_bad_tokenizer_files(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="cannot read"):
        BPETokenizer.from_file(tmp_path / "tokenizer.json")
    with pytest.raises(TokenizerError, match="not found"):
        BPETokenizer.from_file(tmp_path / "missing.json")
    with pytest.raises(TokenizerError, match="repeated"):
        CharTokenizer(["a", "a"])
