"""The bad-input corpus, generated at test time: broken checkpoints and release files, prompts, links.

Every builder writes into a directory it is given and returns what it made with the
message fragment a user must see. Nothing here is shipped; ``build`` makes the lot.
"""

from __future__ import annotations

import json
import os
import pickle
import string
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from brillm_core import Checkpoint, CharTokenizer, random_model

CHARS = ["<unk>"] + list(string.ascii_lowercase + " .,")  # 30 nodes
HIDDEN = 6
MARKER = "pwned"  # a payload that ran would create this file


@dataclass(frozen=True)
class Broken:
    """A broken input on disk and the fragment of the message that must name its fault."""

    path: Path
    message: str


class Payload:
    """Unpickling this runs ``touch <marker>`` unless the loader refuses code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def good_checkpoint(directory: Path, seed: int = 0) -> Path:
    """A small valid character-level checkpoint."""
    model = random_model(len(CHARS), HIDDEN, 0.3, seed=seed, max_positions=64, name=directory.name)
    return Checkpoint(model, CharTokenizer(CHARS), {"note": "bad-input corpus"}).save(directory)


def _safetensors_header(header: dict, data: bytes = b"") -> bytes:
    """Raw safetensors bytes: 8-byte little-endian header length, JSON header, data."""
    blob = json.dumps(header).encode()
    return struct.pack("<Q", len(blob)) + blob + data


def _edit_tensors(path: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    """Load model.safetensors, change its tensors, save it back."""
    tensors = load_file(str(path / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(path / "model.safetensors"))


def _edit_config(path: Path, **changes: object) -> None:
    """Rewrite config.json with some keys changed."""
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, **changes}))


def _retype(path: Path, key: str, dtype: torch.dtype, value: float | None = None) -> None:
    """Store one tensor in another dtype, optionally with its first element set to ``value``."""
    def edit(tensors: dict[str, torch.Tensor]) -> None:
        tensors[key] = tensors[key].to(dtype)
        if value is not None:
            tensors[key].view(-1)[0] = value
    _edit_tensors(path, edit)


def _bad_bpe(path: Path, duplicate: bool) -> None:
    """A tokenizer.json (read before chars.json) whose ids have a gap or a repeat."""
    from tokenizers import Tokenizer, models

    vocab = {token: i for i, token in enumerate(CHARS)}
    vocab[CHARS[-1]] = 0 if duplicate else len(CHARS) + 5
    doc = json.loads(Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(CHARS)}, merges=[])).to_str())
    doc["model"]["vocab"] = vocab
    (path / "tokenizer.json").write_text(json.dumps(doc))


DEEP = "[" * 100_000  # nesting that overflows Python's recursive JSON parser


def _sparse(path: Path, size: int) -> None:
    """Extend a file to ``size`` bytes without using the disk (a hole)."""
    with open(path, "r+b") as handle:
        handle.truncate(size)


# Damage to a good checkpoint: name -> (change, message fragment).
CHECKPOINT_DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty-weights": (lambda p: (p / "model.safetensors").write_bytes(b""), "safetensors"),
    "huge-header-length": (lambda p: (p / "model.safetensors").write_bytes(struct.pack("<Q", 2**62) + b"{}"),
                           "safetensors"),
    "header-not-json": (lambda p: (p / "model.safetensors").write_bytes(struct.pack("<Q", 8) + b"\xff" * 8),
                        "safetensors"),
    "offsets-past-end": (lambda p: (p / "model.safetensors").write_bytes(_safetensors_header(
        {"weights": {"dtype": "F32", "shape": [10**6, 6, 6], "data_offsets": [0, 144 * 10**6]}}, b"\0" * 64)),
        "safetensors"),
    "oversized-sparse-file": (lambda p: _sparse(p / "model.safetensors", 4 * 2**30), "safetensors"),
    "pickle-payload": (lambda p: (p / "model.safetensors").write_bytes(pickle.dumps(Payload(p.parent / MARKER))),
                       "safetensors"),
    "torch-zip-payload": (lambda p: torch.save({"weights": Payload(p.parent / MARKER)}, p / "model.safetensors"),
                          "safetensors"),
    "weights-missing": (lambda p: (p / "model.safetensors").unlink(), "model.safetensors is missing"),
    "edge-keys-out-of-range": (lambda p: _edit_tensors(p, lambda t: t["edge_keys"].__setitem__(-1, 10**9)),
                               "outside the V x V"),
    "edge-keys-unsorted": (lambda p: _edit_tensors(p, lambda t: t.__setitem__("edge_keys", t["edge_keys"].flip(0))),
                           "strictly increasing"),
    "infinite-biases": (lambda p: _edit_tensors(p, lambda t: t["biases"].__setitem__((0, 0, 0), float("inf"))),
                        "NaN or infinite"),
    "config-is-a-list": (lambda p: (p / "config.json").write_text("[1, 2]"), "JSON object"),
    "config-is-binary": (lambda p: (p / "config.json").write_bytes(b"\x00\xff\xfe" * 50), "not valid JSON"),
    "config-is-a-directory": (lambda p: ((p / "config.json").unlink(), (p / "config.json").mkdir()), "config.json"),
    "config-string-size": (lambda p: _edit_config(p, vocab_size="30"), "mistyped"),
    "config-absurd-size": (lambda p: _edit_config(p, vocab_size=10**30, num_rows=10**30), "over the limit"),
    "config-deep-nesting": (lambda p: (p / "config.json").write_text('{"extra": ' + DEEP), "nests 100001 levels"),
    "config-5000-digit-size": (lambda p: (p / "config.json").write_text(
        (p / "config.json").read_text().replace('"vocab_size": 30', '"vocab_size": ' + "9" * 5000)), "5000 digits"),
    "config-float-size": (lambda p: _edit_config(p, hidden_size=6.0), "whole numbers"),
    "config-huge-positions": (lambda p: _edit_config(p, max_positions=200_000_000), "max_positions 200000000 is over"),
    "config-huge-width": (lambda p: _edit_config(p, hidden_size=40_000), "hidden_size 40000 is over"),
    "weights-float8": (lambda p: _retype(p, "weights", torch.float8_e4m3fn), "stored as F8"),
    "biases-overflow-float32": (lambda p: _retype(p, "biases", torch.float64, 1e300), "NaN or infinite"),
    "edge-keys-fractional": (lambda p: _retype(p, "edge_keys", torch.float32, 0.5), "edge_keys is stored as F32"),
    "metadata-deep-nesting": (lambda p: (p / "metadata.json").write_text(DEEP), "nests"),
    "metadata-too-large": (lambda p: _sparse(p / "metadata.json", 17 * 2**20), "larger than 16 MiB"),
    "tokenizer-gapped-ids": (lambda p: _bad_bpe(p, duplicate=False), "not a node list"),
    "tokenizer-duplicate-ids": (lambda p: _bad_bpe(p, duplicate=True), "not a node list"),
    "config-negative-width": (lambda p: _edit_config(p, hidden_size=-6), "hidden_size"),
    "config-unk-out-of-range": (lambda p: _edit_config(p, unk_id=999), "unk_id"),
    "config-other-format": (lambda p: _edit_config(p, format="pytorch"), "format"),
    "vocab-count-disagree": (lambda p: (p / "chars.json").write_text(json.dumps(CHARS[:-3])), "tokenizer has 27"),
    "vocab-repeats": (lambda p: (p / "chars.json").write_text(json.dumps(["a"] * len(CHARS))), "repeated"),
    "vocab-not-strings": (lambda p: (p / "chars.json").write_text(json.dumps(list(range(len(CHARS))))), "list of strings"),
    "vocab-truncated": (lambda p: (p / "chars.json").write_text(json.dumps(CHARS)[:20]), "chars.json"),
    "vocab-deep-nesting": (lambda p: (p / "chars.json").write_text(DEEP), "nests 100000 levels"),
    "metadata-truncated": (lambda p: (p / "metadata.json").write_text('{"note": '), "metadata.json"),
}


def overflowing_checkpoint(directory: Path) -> Path:
    """A loadable checkpoint whose weights (3e38, finite in float32) overflow every step's signal."""
    path = good_checkpoint(directory)
    _edit_tensors(path, lambda t: t["weights"].fill_(3e38))
    return path


def build_checkpoints(root: Path) -> dict[str, Broken]:
    """One damaged copy of a good checkpoint per entry of CHECKPOINT_DAMAGE, under ``root``."""
    out = {}
    for name, (damage, message) in CHECKPOINT_DAMAGE.items():
        path = good_checkpoint(root / name)
        damage(path)
        out[name] = Broken(path, message)
    return out


@dataclass(frozen=True)
class ReleaseFiles:
    """The release's three (or four) input files of one import, and the expected message."""

    weights: Path
    vocab: Path
    counts: Path
    message: str
    tokenizer: Path | None = None


def _release_state(rows: int, vocab: int = 6, d: int = 4) -> dict[str, torch.Tensor]:
    """A release-style state_dict."""
    return {"weights": torch.zeros(rows, d, d), "biases": torch.zeros(rows, 1, d),
            "node_bias": torch.zeros(vocab, 1, d), "positions": torch.ones(1, 32, 1)}


class Raw(str):
    """File text written as is (not JSON-encoded)."""


TOKENS = ["<unk>", "a", "b", "c", "d", "e"]
VOCAB = {t: i for i, t in enumerate(TOKENS)}
COUNTS = {s: {t: 0 for t in TOKENS[:2]} for s in TOKENS}  # 12 zero-count edges -> 36 - 12 + 1 = 25 rows
# name -> (state_dict, or None for a pickle payload, or raw bytes; vocabulary; counts; message fragment)
RELEASE_CASES: dict[str, tuple[object, object, object, str]] = {
    "rows-disagree-with-counts": (_release_state(30), VOCAB, COUNTS, "count table gives"),
    "node-bias-disagrees-with-vocab": (_release_state(25, vocab=9), VOCAB, COUNTS, "node_bias has shape"),
    "vocab-is-a-list": (_release_state(25), TOKENS, COUNTS, "vocabulary"),
    "vocab-ids-repeat": (_release_state(25), {t: 0 for t in TOKENS}, COUNTS, "0..5"),
    "counts-are-a-list": (_release_state(25), VOCAB, [1, 2, 3], "count"),
    "counts-name-unknown-target": (_release_state(25), VOCAB, {"a": {"zz": 0}}, "not in the vocabulary"),
    "counts-not-numbers": (_release_state(25), VOCAB, {"a": "many"}, "must be an object"),
    "weights-pickle-payload": (None, VOCAB, COUNTS, "refusing"),
    "weights-not-a-state-dict": ([1, 2, 3], VOCAB, COUNTS, "state_dict"),
    "weights-binary-garbage": (b"\x00\x01garbage" * 100, VOCAB, COUNTS, "refusing"),
    "vocab-deep-nesting": (_release_state(25), Raw(DEEP), COUNTS, "nests 100000 levels"),
    "weights-float8": ({**_release_state(25), "weights": torch.zeros(25, 4, 4).to(torch.float8_e4m3fn)}, VOCAB, COUNTS,
                       "must be float16"),
    "biases-overflow-float32": ({**_release_state(25), "biases": torch.full((25, 1, 4), 1e300, dtype=torch.float64)},
                                VOCAB, COUNTS, "NaN or infinite"),
    "counts-deep-nesting": (_release_state(25), VOCAB, Raw('{"a": ' + "[" * 200_000), "must be an object"),
}
RELEASE_NAMES = (*RELEASE_CASES, "tokenizer-garbage")


def build_release(root: Path) -> dict[str, ReleaseFiles]:
    """Release file sets whose vocabulary, counts and weights are malformed or disagree."""
    out = {}
    for name, (state, vocab_doc, counts_doc, message) in RELEASE_CASES.items():
        folder = root / name
        folder.mkdir(parents=True)
        weights = folder / "model.bin"
        if state is None:
            torch.save({"weights": Payload(root / MARKER)}, weights)
        elif isinstance(state, bytes):
            weights.write_bytes(state)
        else:
            torch.save(state, weights)
        (folder / "vocab.json").write_text(vocab_doc if isinstance(vocab_doc, Raw) else json.dumps(vocab_doc))
        (folder / "counts.json").write_text(counts_doc if isinstance(counts_doc, Raw) else json.dumps(counts_doc))
        out[name] = ReleaseFiles(weights, folder / "vocab.json", folder / "counts.json", message)
    garbage = root / "tokenizer-garbage"
    garbage.mkdir()
    (garbage / "tokenizer.json").write_bytes(b"\x89PNG\r\n" + os.urandom(64))
    base = out["rows-disagree-with-counts"]
    out["tokenizer-garbage"] = ReleaseFiles(base.weights, base.vocab, base.counts, "tokenizer", garbage / "tokenizer.json")
    return out


# Prompts: name -> (text or ids, expected outcome). "error:<fragment>" must fail with that
# message; "warn:<fragment>" must succeed with that warning; "ok" must just succeed.
PROMPTS: dict[str, tuple[str | list[int], str]] = {
    "empty": ("", "error:empty"),
    "whitespace-only": ("   ", "ok"),
    "huge": ("ab" * 300_000, "error:position table"),
    "binary-controls": ("\x00\x01\x02\x7f\x1b[31m", "warn:unknown node"),
    "all-unknown": ("~~~~ ### @@@", "warn:unknown node"),
    "lone-surrogates": ("a\udcff\ud800b", "error:UTF-8"),
    "emoji-and-rtl": ("a\U0001F600\u202eb", "warn:unknown node"),
    "ids-negative": ([1, -1, 2], "error:not a node id"),
    "ids-too-large": ([1, 10**30], "error:not a node id"),
    "ids-past-vocab": ([len(CHARS)], "error:not a node id"),
}

# Exported view files for "Open view file": name -> (file text, fragment of the message shown).
VIEW_FILES: dict[str, tuple[str, str]] = {
    "deep-nesting": ('{"schema": "brillm-explorer/view", "state": ' + DEEP, "nests"),
    "400-digit-number": ('{"schema": "brillm-explorer/view", "version": 1, "view": "signal_path", '
                         '"state": {"seed": ' + "9" * 400 + "}}", "400 digits"),
    "infinite-number": ('{"schema": "brillm-explorer/view", "version": 1, "view": "signal_path", '
                        '"state": {"temperature": 1e999}}', "outside the float range"),
    "not-json": ("\x00 not json", "not valid JSON"),
}

# URL hashes of the explorer: name -> (hash, fragment of the message the page shows).
LINKS: dict[str, tuple[str, str]] = {
    "traversal-relative": ("#m=..%2F..%2F..%2Fetc%2Fpasswd&p=ab", "not in the configured model folders"),
    "traversal-outside-checkpoint": ("#m=..%2Foutside%2Fsecret&p=ab", "not in the configured model folders"),
    "absolute-path": ("#m=%2Fetc&p=ab", "not in the configured model folders"),
    "null-byte-name": ("#m=good%00..%2F&p=ab", "not in the configured model folders"),
    "absurd-numbers": ("#m=good&p=ab&n=1e308&t=1e999&k=-5&seed=99999999999999999999&s=-7",
                       "is outside"),
    "not-numbers": ("#m=good&p=ab&n=abc&t=hot&g=maybe&ss=a,b&r=x:y", "is not a number"),
    "nan-temperature": ("#m=good&p=ab&t=nan&g=0", "not a finite number"),
    "start-signal-wrong-width": ("#m=good&p=ab&ss=1,2,3", "start signal must have 6 values"),
    "reroute-to-missing-node": ("#m=good&p=ab&r=0:99999", "no such node"),
    "huge-prompt": ("#m=good&p=" + "a" * 5000, "longer than 2000"),
    "overlong-link": ("#m=good&p=" + "ab" * 6000, "too long"),
    "binary-prompt": ("#m=good&p=%00%FF%FE%01", "unknown node"),
    "all-unknown-prompt": ("#m=good&p=~~~~~~", "unknown node"),
}


def build(root: Path) -> tuple[dict[str, Broken], dict[str, ReleaseFiles]]:
    """Write the whole file corpus under ``root``: checkpoints/ and release/."""
    return build_checkpoints(root / "checkpoints"), build_release(root / "release")
