"""Import the public release's files (state_dict, vocabulary, count table) into a native checkpoint.

The release numbers parameter rows by walking sources, then targets, in id order: an
edge whose count is exactly 0 reads the shared row 0, every other edge (including edges
absent from the count table) the next row. The count table is JSON
``{source_token: {target_token: count}}`` (266 MB for English): it is streamed one
source at a time, and only a V x V bit mask of zero-count edges is kept.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import ijson
import numpy as np
import torch

from . import jsonfile
from .checkpoint import Checkpoint, all_finite, save_checkpoint
from .config import ModelConfig
from .edges import EdgeTable
from .errors import BriLLMError, CheckpointError
from .model import BriLLM
from .tokenizer import BPETokenizer, CharTokenizer, NodeTokenizer, vocab_to_list

RELEASE_KEYS = ("weights", "biases", "node_bias", "positions")
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)  # converted to float32
MAX_VOCAB_BYTES = 64 * 2**20  # the release's vocabularies are about 100 KB


def _count_events(handle) -> Iterator[tuple[str, str, object]]:
    """(source, target, count) of a count table, read event by event so that no value is built whole.

    The table must be ``{source: {target: number}}``; anything else (an array, a deeper
    object, a string count) is refused at its first token, before memory can grow.
    """
    depth, source, target = 0, None, None  # depth 1: inside the table, 2: inside one source's counts
    for _, event, value in ijson.parse(handle, use_float=True):
        if depth == 0 and event == "start_map":
            depth = 1
        elif depth == 1 and event == "map_key":
            source = value
        elif depth == 1 and event == "start_map":
            depth = 2
        elif depth == 1 and event == "end_map":
            depth = 0
        elif depth == 2 and event == "map_key":
            target = value
        elif depth == 2 and event == "number":
            yield source, target, value
        elif depth == 2 and event == "end_map":
            depth = 1
            yield source, "", None  # the end of one source's counts
        elif depth == 0:
            raise CheckpointError("must be an object {source: {target: count}}")
        else:
            raise CheckpointError(f"counts of {source!r} must be an object {{target: count}} of numbers")


def read_vocab(path: str | Path) -> list[str]:
    """The release's node list from ``{token: id}`` JSON."""
    path = Path(path)
    data = jsonfile.read(path, "vocabulary", MAX_VOCAB_BYTES, CheckpointError)
    try:
        return vocab_to_list(data)
    except BriLLMError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc


def zero_count_mask(path: str | Path, tokens: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
    """V x V boolean mask of edges whose count is exactly 0, streamed from the count JSON."""
    index = {t: i for i, t in enumerate(tokens)}
    V = len(tokens)
    mask = np.zeros((V, V), dtype=bool)
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            sources = 0
            for source, target, count in _count_events(handle):
                s = index.get(source)
                if s is None:
                    raise CheckpointError(f"names source token {source!r}, which is not in the vocabulary")
                if count is None:
                    sources += 1
                    if progress:
                        progress(sources)
                elif count == 0:
                    t = index.get(target)
                    if t is None:
                        raise CheckpointError(f"names target token {target!r} (after {source!r}), which is not in the vocabulary")
                    mask[s, t] = True
    except CheckpointError as exc:
        raise CheckpointError(f"count table {path}: {exc}") from exc
    except OSError as exc:
        raise CheckpointError(f"cannot read count table {path}: {exc}") from exc
    except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"count table {path} is not valid JSON (truncated?): {exc}") from exc
    return mask


def load_release_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The release's state_dict, loaded with weights_only=True (no code runs), shape-checked."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} holds objects other than tensors (a pickle payload?); refusing to load it. Details: {exc}"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path} is not a readable torch state_dict (truncated or corrupt?): {exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state_dict (got {type(state).__name__})")
    missing = [k for k in RELEASE_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path} lacks the release's keys: {', '.join(missing)} (has: {', '.join(map(str, state))})")
    bad = [k for k in RELEASE_KEYS if not torch.is_tensor(state[k]) or state[k].dim() != 3]
    if bad:
        raise CheckpointError(f"{path}: {', '.join(bad)} must be 3-dimensional tensors")
    exotic = [f"{k} ({state[k].dtype})" for k in RELEASE_KEYS if state[k].dtype not in FLOAT_DTYPES]
    if exotic:
        raise CheckpointError(f"{path}: {', '.join(exotic)} must be float16, bfloat16, float32 or float64 tensors")
    return {k: state[k] for k in RELEASE_KEYS}


def check_release_shapes(state: dict[str, torch.Tensor], vocab_size: int, own_edges: int) -> tuple[int, int]:
    """(d, L) if the state_dict fits the vocabulary and count table, else a CheckpointError."""
    w, b, nb, pos = (state[k] for k in RELEASE_KEYS)
    P, d = w.shape[0], w.shape[1]
    problems = []
    if w.shape[2] != d:
        problems.append(f"weights have shape {tuple(w.shape)}, expected (P, d, d)")
    if tuple(b.shape) != (P, 1, d):
        problems.append(f"biases have shape {tuple(b.shape)}, expected ({P}, 1, {d})")
    if tuple(nb.shape) != (vocab_size, 1, d):
        problems.append(f"node_bias has shape {tuple(nb.shape)}, expected ({vocab_size}, 1, {d}) for {vocab_size} nodes")
    if pos.shape[0] != 1 or pos.shape[2] != 1:
        problems.append(f"positions have shape {tuple(pos.shape)}, expected (1, L, 1)")
    if P != own_edges + 1:
        problems.append(
            f"weights have {P} rows but the count table gives {own_edges} edges with a nonzero or missing count "
            f"plus the shared row = {own_edges + 1}"
        )
    if problems:
        raise CheckpointError("release files do not fit together: " + "; ".join(problems))
    return d, pos.shape[1]


def release_tokenizer(tokens: list[str], tokenizer_path: str | Path | None) -> NodeTokenizer:
    """BPE from the given tokenizer.json (its vocabulary must equal the node list) or characters."""
    if tokenizer_path is not None:
        tok = BPETokenizer.from_file(tokenizer_path)
        if tok.tokens() != tokens:
            raise CheckpointError(
                f"tokenizer {tokenizer_path} has {tok.vocab_size} tokens that differ from the vocabulary's {len(tokens)} nodes"
            )
        return tok
    long_tokens = [t for t in tokens if len(t) != 1 and t != "<unk>"]
    if long_tokens:
        raise CheckpointError(
            f"the vocabulary has multi-character tokens (e.g. {long_tokens[0]!r}): pass its tokenizer.json with --tokenizer"
        )
    return CharTokenizer(tokens)


def import_release(
    weights: str | Path,
    vocab: str | Path,
    counts: str | Path,
    output: str | Path,
    tokenizer: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> Checkpoint:
    """Convert the release's files once into a native checkpoint directory at ``output``."""
    output = Path(output)
    if output.exists():
        raise CheckpointError(f"output directory {output} already exists; choose a new path")
    tokens = read_vocab(vocab)
    tok = release_tokenizer(tokens, tokenizer)
    state = load_release_state(weights)
    zero = zero_count_mask(counts, tokens, progress)
    edges = EdgeTable.from_own_mask(~zero)
    d, L = check_release_shapes(state, len(tokens), edges.num_own)
    for key in RELEASE_KEYS:
        state[key] = state[key].to(torch.float32)  # checked after conversion: 1e300 in float64 is inf here
        if not all_finite(state[key]):
            raise CheckpointError(f"{key} in {weights} holds NaN or infinite values (in float32)")
    config = ModelConfig(
        vocab_size=len(tokens), hidden_size=d, max_positions=L, num_rows=edges.num_rows,
        tokenizer=tok.kind, unk_id=tok.unk_id, name=output.name,
    )
    model = BriLLM(config, edges, state)
    del state
    metadata = {
        "provenance": {
            "source": "BriLLM0.5 release",
            "weights_file": Path(weights).name,
            "vocab_file": Path(vocab).name,
            "counts_file": Path(counts).name,
            "tokenizer_file": Path(tokenizer).name if tokenizer else None,
        }
    }
    checkpoint = Checkpoint(model=model, tokenizer=tok, metadata=metadata)
    save_checkpoint(checkpoint, output)
    return checkpoint
