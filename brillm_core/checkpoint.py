"""Native checkpoints: a directory in the Hugging Face style, saved atomically, loaded safely.

Layout of a checkpoint directory:
  config.json        ModelConfig (sizes, tokeniser kind)
  model.safetensors  weights, biases, node_bias, positions (release keys) + edge_keys
  tokenizer.json     byte-level BPE (or chars.json: the character list)
  metadata.json      training history, evaluation, provenance (free-form JSON object)
  model_id.json      the content hash of the files above except metadata, with their sizes
                     and times: computed once at save, trusted while they are unchanged
Loading reads safetensors and JSON only, so it never executes code from the files.

A training run directory holds its checkpoints as ``RUN/checkpoints/step-NNNNNNNN``;
every command that takes a checkpoint also takes a run directory and opens its newest
(``resolve_checkpoint``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from . import jsonfile
from .atomic import fsync_dir, output_directory, write_json_atomic
from .config import ModelConfig
from .edges import EdgeTable
from .errors import BriLLMError, CheckpointError, PromptError, SignalOverflowError
from .model import BriLLM, default_device
from .propagate import propagate
from .regular import open_regular, regular_path
from .tokenizer import BPE_FILE, CHAR_FILE, Encoding, NodeTokenizer, load_tokenizer
from .trace import DecodeSettings, Trace

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
MODEL_ID_FILE = "model_id.json"
ID_FILES = (CONFIG_FILE, WEIGHTS_FILE, BPE_FILE, CHAR_FILE)  # what the numbers and the token mapping depend on
MAX_MODEL_ID_BYTES = 4096
PARAMETER_KEYS = ("weights", "biases", "node_bias", "positions")
# Stored dtypes a checkpoint may use: parameters are converted to float32 on load (F8 and
# other exotic types have no arithmetic on every device); edge keys must be integers.
PARAMETER_DTYPES = ("F16", "BF16", "F32", "F64")
EDGE_KEY_DTYPES = ("I32", "I64", "U32")
MAX_CONFIG_BYTES = 1 * 2**20  # a config is a few hundred bytes
MAX_METADATA_BYTES = 16 * 2**20  # training history and evaluations; the app holds it in memory
PROMPT_SLACK = 4  # characters that normalisation (NFKC) may fold into one, at most, in any real text
CHECKPOINTS = "checkpoints"  # a training run directory's folder of checkpoints
STEP_DIR = re.compile(r"^step-(\d{8})$")


@dataclass
class Checkpoint:
    """A model with its tokeniser and metadata: the engine's public entry point."""

    model: BriLLM
    tokenizer: NodeTokenizer
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def config(self) -> ModelConfig:
        """The model's configuration."""
        return self.model.config

    @cached_property
    def model_id(self) -> str:
        """A content hash of the model: of its identity files when saved (read back from
        ``model_id.json`` while their sizes and times match), else of the parameters."""
        if self.path is not None:
            return stored_model_id(self.path) or compute_model_id(self.path)
        digest = hashlib.sha256()
        for name in PARAMETER_KEYS:
            digest.update(getattr(self.model, name).detach().cpu().numpy().tobytes())
        digest.update(self.model.edge_keys.cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    def encode(self, text: str) -> Encoding:
        """Node ids of ``text`` with the pieces that map to the unknown node."""
        return self.tokenizer.encode(text)

    def encode_prompt(self, prompt: str | bytes) -> Encoding:
        """``encode`` a prompt after checking that its length could fit the position table at all: tokenising
        megabytes first cost seconds and gigabytes, only to be refused."""
        positions = self.config.max_positions
        limit = positions * self.tokenizer.most_chars_per_token * PROMPT_SLACK
        if len(prompt) > limit:
            raise PromptError(f"the prompt has {len(prompt):,} characters, more than the position table of {positions} "
                              f"tokens can cover (at most about {limit:,} characters); shorten it")
        return self.encode(prompt)

    def token(self, node: int) -> str:
        """Readable text of a node."""
        return self.tokenizer.token(node)

    def trace(
        self, prompt: str | Sequence[int], settings: DecodeSettings | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Trace:
        """Propagate a text prompt (tokenised) or explicit node ids; see ``propagate``."""
        unknown: list = []
        if isinstance(prompt, (str, bytes)):
            encoding = self.encode_prompt(prompt)
            ids, unknown = encoding.ids, encoding.unknown
        else:
            ids = list(prompt)
        trace = propagate(self.model, ids, settings, token_text=self.token, unknown=unknown, model_id=self.model_id,
                          progress=progress)
        return require_finite(trace)

    def save(self, directory: str | Path, *, overwrite: bool = False, dtype: torch.dtype | None = None) -> Path:
        """Save atomically (see ``save_checkpoint``)."""
        return save_checkpoint(self, directory, overwrite=overwrite, dtype=dtype)


def _identity_stats(directory: Path) -> dict[str, list[int]]:
    """Size and modification time (ns) of each identity file present as a regular file; anything
    else under those names (a FIFO, a device, a directory) is left out and never opened."""
    stats = {}
    for name in ID_FILES:
        try:
            info = os.stat(directory / name)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            stats[name] = [info.st_size, info.st_mtime_ns]
    return stats


def require_finite(trace: Trace) -> Trace:
    """The trace, unless float32 overflowed on its path: NaN or infinite numbers are never a result.

    An energy is NaN only where a node is no candidate (one per step under the release's
    decoder, which drops self-loops); any other NaN or infinity means the parameters or the
    start signal overflowed float32.
    """
    excluded = 1 if trace.settings.release_decoder else 0
    bad_energies = torch.isinf(trace.energies).any(dim=1) | (torch.isnan(trace.energies).sum(dim=1) > excluded)
    bad_signals = ~torch.isfinite(trace.signals_in).all(dim=1) | ~torch.isfinite(trace.outputs).all(dim=1)
    bad = (bad_energies | bad_signals).nonzero()
    if bad.numel():
        raise SignalOverflowError(f" at step {int(bad[0])}")
    return trace


def compute_model_id(directory: Path) -> str:
    """SHA-256 (16 hex digits) over the names and contents of the checkpoint's identity files:
    the files that fix its numbers and its token mapping. Metadata, model cards and stray
    entries are never read."""
    digest = hashlib.sha256()
    for name in sorted(_identity_stats(directory)):
        with open_regular(directory / name, "checkpoint file", CheckpointError) as handle:
            digest.update(name.encode())
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:16]


def stored_model_id(directory: Path) -> str | None:
    """The id saved in ``model_id.json`` if the identity files still have the sizes and times
    recorded with it; None when there is none or a file changed (then recompute)."""
    try:
        with open_regular(directory / MODEL_ID_FILE, MODEL_ID_FILE) as handle:
            blob = handle.read(MAX_MODEL_ID_BYTES + 1)
        record = json.loads(blob.decode("utf-8")) if len(blob) <= MAX_MODEL_ID_BYTES else None
    except (BriLLMError, OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(record, dict) or record.get("files") != _identity_stats(directory):
        return None
    model_id = record.get("model_id")
    return model_id if isinstance(model_id, str) and len(model_id) == 16 else None


def write_model_id(directory: Path) -> str:
    """Compute the id of the checkpoint in ``directory`` and store it with its files' sizes and times."""
    model_id = compute_model_id(directory)
    write_json_atomic(directory / MODEL_ID_FILE, {"model_id": model_id, "files": _identity_stats(directory)})
    return model_id


def save_checkpoint(
    checkpoint: Checkpoint, directory: str | Path, *, overwrite: bool = False, dtype: torch.dtype | None = None
) -> Path:
    """Write every file into a temporary sibling directory, then rename it into place.

    An existing ``directory`` is an error unless ``overwrite``; then the old one is
    replaced only after the new one is complete. ``dtype`` (e.g. float16) shrinks the
    stored parameters; loading converts back to float32.
    """
    try:
        target = output_directory(directory)
    except NotADirectoryError as exc:
        raise CheckpointError(f"cannot save a checkpoint at {directory}: {exc}") from exc
    if target.exists() and not overwrite:
        raise CheckpointError(f"output directory {target} already exists; choose a new path or pass overwrite")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(tmp, 0o755)
    try:
        model = checkpoint.model
        tensors = {k: getattr(model, k).detach().to("cpu", dtype or torch.float32).contiguous() for k in PARAMETER_KEYS}
        tensors["edge_keys"] = model.edge_keys.detach().cpu().contiguous()
        save_file(tensors, str(tmp / WEIGHTS_FILE))
        (tmp / CONFIG_FILE).write_text(model.config.to_json(), encoding="utf-8")
        checkpoint.tokenizer.save(tmp)
        write_json_atomic(tmp / METADATA_FILE, checkpoint.metadata)
        model_id = write_model_id(tmp)
        for name in os.listdir(tmp):
            with open(tmp / name, "rb") as handle:
                os.fsync(handle.fileno())
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "previous")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    checkpoint.path = target
    checkpoint.__dict__["model_id"] = model_id
    return target


def _read_json(path: Path, what: str, max_bytes: int) -> Any:
    """JSON from a file within the limits of ``jsonfile``, with a clear error naming the file."""
    return jsonfile.read(path, what, max_bytes, CheckpointError)


def _expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Shapes each stored tensor must have for ``cfg``."""
    d = cfg.hidden_size
    return {
        "weights": (cfg.num_rows, d, d),
        "biases": (cfg.num_rows, 1, d),
        "node_bias": (cfg.vocab_size, 1, d),
        "positions": (1, cfg.max_positions, 1),
        "edge_keys": (cfg.num_rows - 1,),
    }


def all_finite(tensor: torch.Tensor, chunk: int = 1 << 22) -> bool:
    """True if no NaN or infinity: a finite sum proves it without a full-size temporary;
    otherwise (NaN, inf, or a sum that overflowed) check chunk by chunk."""
    if torch.isfinite(tensor.sum()):
        return True
    flat = tensor.reshape(-1)
    return all(bool(torch.isfinite(flat[i : i + chunk]).all()) for i in range(0, flat.numel(), chunk))


def _read_tensors(weights_path: Path, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """The safetensors file's tensors, after its header's names, shapes and dtypes fit ``cfg``."""
    try:
        with regular_path(weights_path, WEIGHTS_FILE, CheckpointError) as named, safe_open(named, "pt") as handle:
            header = {key: handle.get_slice(key) for key in handle.keys()}
            problems = []
            for key, shape in _expected_shapes(cfg).items():
                allowed = EDGE_KEY_DTYPES if key == "edge_keys" else PARAMETER_DTYPES
                if key not in header:
                    problems.append(f"missing tensor {key!r}")
                elif tuple(header[key].get_shape()) != shape:
                    problems.append(f"{key} has shape {tuple(header[key].get_shape())}, config says {shape}")
                elif header[key].get_dtype() not in allowed:
                    problems.append(f"{key} is stored as {header[key].get_dtype()}; accepted: {', '.join(allowed)}")
            if problems:
                raise CheckpointError(f"{weights_path} does not fit config.json: " + "; ".join(problems))
            return {key: handle.get_tensor(key) for key in _expected_shapes(cfg)}
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{weights_path} is not a readable safetensors file (truncated or corrupt?): {exc}") from exc


def load_checkpoint(directory: str | Path, device: torch.device | str | None = None) -> Checkpoint:
    """Load a native checkpoint directory; every inconsistency is a CheckpointError."""
    path = Path(directory)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {path}")
    cfg = ModelConfig.from_dict(_read_json(path / CONFIG_FILE, "config.json", MAX_CONFIG_BYTES))
    weights_path = path / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"{WEIGHTS_FILE} is missing in {path}")
    tensors = _read_tensors(weights_path, cfg)
    try:
        tokenizer = load_tokenizer(path)
    except BriLLMError as exc:
        raise CheckpointError(str(exc)) from exc
    if tokenizer.vocab_size != cfg.vocab_size:
        raise CheckpointError(
            f"tokenizer has {tokenizer.vocab_size} tokens but the model has {cfg.vocab_size} nodes"
        )
    metadata = (_read_json(path / METADATA_FILE, "metadata.json", MAX_METADATA_BYTES)
                if (path / METADATA_FILE).exists() else {})
    for key in PARAMETER_KEYS:
        tensors[key] = tensors[key].to(torch.float32)  # checked after conversion: 1e300 in F64 is inf here
        if not all_finite(tensors[key]):
            raise CheckpointError(f"{key} in {weights_path} holds NaN or infinite values (in float32)")
    edges = EdgeTable(cfg.vocab_size, tensors.pop("edge_keys").to(torch.int64))
    model = BriLLM(cfg, edges, tensors)
    del tensors
    model.to(device or default_device())
    model.eval()
    return Checkpoint(model=model, tokenizer=tokenizer, metadata=metadata if isinstance(metadata, dict) else {}, path=path)


def checkpoint_dirs(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a training run directory as (step, path), oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), root / name) for name in os.listdir(root) if (m := STEP_DIR.match(name))]
    return sorted(found)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory itself, or the newest checkpoint of a training run directory."""
    path = Path(path)
    if not path.is_dir() or (path / CONFIG_FILE).exists():
        return path  # loading it says what is wrong with it, if anything
    found = checkpoint_dirs(path)
    if found:
        return found[-1][1]
    raise CheckpointError(f"{path} is neither a checkpoint directory (no {CONFIG_FILE}) nor a training run (no {CHECKPOINTS}/step-*)")
