"""Corpus reading, tokenising, bigram counts, negatives and the resumable batch order."""

from __future__ import annotations

import pytest
import torch

from brillm_core.data import (
    BigramCounts,
    CorpusError,
    SequenceBatches,
    build_tokenizer,
    corpus_lines,
    drop_gold,
    hard_negative_table,
    random_negatives,
    read_corpus,
    reuse_tokenizer,
    step_generator,
    tokenize_lines,
)
from brillm_core.errors import TokenizerError
from tests.toy_grammar import toy_text, write_toy


def test_empty_and_blank_files_are_refused(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("  \n\n\t\n", encoding="utf-8")
    for name in ("empty.txt", "blank.txt"):
        with pytest.raises(CorpusError, match="empty"):
            read_corpus([tmp_path / name])


def test_non_utf8_file_is_refused_with_position(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"not UTF-8.*offset 3, line 1"):
        read_corpus([path])


def test_missing_file_and_no_files(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        read_corpus([tmp_path / "nope.txt"])
    with pytest.raises(CorpusError, match="no corpus files"):
        read_corpus([])


def test_corpus_smaller_than_one_sequence(tmp_path):
    files = read_corpus([write_toy(tmp_path / "t.txt", sentences=1)])
    lines = corpus_lines(files)
    stream, _ = tokenize_lines(build_tokenizer("word", lines, None), lines)
    assert stream.numel() == 6
    with pytest.raises(CorpusError, match="fewer than one training sequence of 8"):
        SequenceBatches(stream, seq_len=8, batch_size=2, seed=0)


def test_tokenizer_vocab_mismatch(tmp_path):
    lines = toy_text(20).splitlines()
    tok = build_tokenizer("word", lines, None)
    tok.save(tmp_path)
    assert reuse_tokenizer(tmp_path / "tokenizer.json", tok.vocab_size).vocab_size == tok.vocab_size
    with pytest.raises(TokenizerError, match="has 10 tokens but --vocab-size asks for 50"):
        reuse_tokenizer(tmp_path / "tokenizer.json", 50)


def test_word_and_char_tokenizers_round_trip():
    lines = toy_text(5).splitlines()
    word = build_tokenizer("word", lines, None)
    assert word.tokens()[0] == "[UNK]" and word.vocab_size == 10
    assert word.decode(word.encode(lines[0]).ids) == lines[0]
    char = build_tokenizer("char", lines, None)
    stream, unknown = tokenize_lines(char, lines[:1])
    assert char.decode(stream.tolist()) == lines[0] + "\n" and unknown == 0


def test_bigram_counts_and_min_count():
    stream = torch.tensor([1, 2, 1, 2, 3, 1])
    counts = BigramCounts.from_stream(stream, 4)
    assert counts.keys.tolist() == [1 * 4 + 2, 2 * 4 + 1, 2 * 4 + 3, 3 * 4 + 1]
    assert counts.counts.tolist() == [2, 1, 1, 1]
    assert counts.unigram.tolist() == [0, 3, 2, 1]
    assert counts.edges(1).num_own == 4
    assert counts.edges(2).own_pairs()[1].tolist() == [2]
    with pytest.raises(CorpusError, match="min-count"):
        counts.edges(0)


def test_counts_save_and_load(tmp_path):
    counts = BigramCounts.from_stream(torch.tensor([1, 2, 1, 2, 3, 1]), 4)
    counts.save(tmp_path / "c.safetensors")
    back = BigramCounts.load(tmp_path / "c.safetensors", 4)
    assert torch.equal(back.keys, counts.keys) and torch.equal(back.counts, counts.counts)
    with pytest.raises(CorpusError, match="do not fit"):
        BigramCounts.load(tmp_path / "c.safetensors", 5)


def test_hard_negatives_are_frequent_successors_then_frequent_tokens():
    # successors of 1: 2 (x3), 3 (x1); unigram order: 1, 2, 3, 4, 0
    stream = torch.tensor([1, 2, 1, 2, 1, 3, 1, 2, 4, 1])
    table = hard_negative_table(BigramCounts.from_stream(stream, 5), k=3)
    assert table[1].tolist() == [2, 3, 1, 4]
    gold = torch.tensor([3, 0])
    pick = drop_gold(table[torch.tensor([1, 1])], gold)
    assert table[1][pick[0]].tolist() == [2, 1, 4]  # gold 3 removed
    assert table[1][pick[1]].tolist() == [2, 3, 1]  # gold absent: the last one dropped


def test_random_negatives_never_gold_and_repeatable():
    gold = torch.randint(0, 7, (50, 9), generator=torch.Generator().manual_seed(1))
    a = random_negatives(gold, 7, 6, step_generator(0, 5, 0))
    b = random_negatives(gold, 7, 6, step_generator(0, 5, 0))
    assert torch.equal(a, b) and not (a == gold.unsqueeze(-1)).any()
    assert a.min() >= 0 and a.max() < 7
    assert not torch.equal(a, random_negatives(gold, 7, 6, step_generator(0, 6, 0)))


def test_batches_depend_only_on_seed_and_step():
    stream = torch.arange(200)
    one = SequenceBatches(stream, seq_len=5, batch_size=3, seed=7)
    two = SequenceBatches(stream, seq_len=5, batch_size=3, seed=7)
    assert one.num_sequences == 49
    later = [one.batch(s) for s in range(40)]  # crosses two epoch boundaries
    assert torch.equal(two.batch(37), later[37])
    for b in later:  # windows overlap by one token, so every bigram is trained
        assert b.shape == (3, 5) and torch.equal(b[:, 0] % 4, torch.zeros(3, dtype=torch.long))
    epoch0 = torch.cat([one.batch(s) for s in range(17)])[:49, 0]
    assert sorted(epoch0.tolist()) == list(range(0, 196, 4))
    assert not torch.equal(SequenceBatches(stream, 5, 3, seed=8).batch(0), later[0])


def test_ranks_take_disjoint_slices_of_the_global_batch():
    stream = torch.arange(500)
    whole = SequenceBatches(stream, 5, 4, seed=0)
    parts = [SequenceBatches(stream, 5, 2, seed=0, world=2, rank=r) for r in range(2)]
    for step in range(3):
        assert torch.equal(torch.cat([p.batch(step) for p in parts]), whole.batch(step))
