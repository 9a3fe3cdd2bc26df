"""The allow-list of checkpoints: names found in the configured folders, loaded on demand.

A URL names a checkpoint only by the name shown in the picker. Names come from listing
the configured folders; a requested name is looked up in that listing and never joined
to a path, so no URL can make the app read outside the model folders. A checkpoint
whose directory or files are symbolic links leading out of every configured folder is
refused before anything in it is opened.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from brillm_core import BriLLMError, Checkpoint, Encoding, load_checkpoint
from brillm_core.checkpoint import compute_model_id, stored_model_id
from brillm_core.tokenizer import NodeTokenizer, load_tokenizer

CONFIG_NAME = "config.json"
MAX_LOADED = 4
MAX_IDENTITIES = 64  # a tokeniser and an id each: small


class UnknownModel(BriLLMError):
    """A requested checkpoint name is not in the configured folders."""


@dataclass(frozen=True)
class Entry:
    """One allow-listed checkpoint directory."""

    name: str
    path: Path


@dataclass(frozen=True)
class Identity:
    """What a checkpoint's cached results are found and drawn with, read without its weights: its content id
    (the results' cache keys hold it) and its tokeniser (the token texts)."""

    model_id: str
    tokenizer: NodeTokenizer

    def token(self, node: int) -> str:
        """Readable text of a node."""
        return self.tokenizer.token(node)

    def encode(self, text: str) -> Encoding:
        """Node ids of ``text`` with the pieces that map to the unknown node."""
        return self.tokenizer.encode(text)


class Registry:
    """Checkpoint names -> directories, rescanned on each listing; loaded models kept (LRU)."""

    def __init__(self, model_dirs: list[Path]) -> None:
        self.model_dirs = [Path(p).resolve() for p in model_dirs]
        self._loaded: OrderedDict[tuple[Path, float], Checkpoint] = OrderedDict()
        self._identities: OrderedDict[tuple[Path, float], Identity] = OrderedDict()
        self._lock = threading.Lock()

    def entries(self) -> dict[str, Entry]:
        """Every checkpoint directory in the configured folders, by unique name."""
        found: dict[str, Entry] = {}
        for root in self.model_dirs:
            candidates = [root] if (root / CONFIG_NAME).is_file() else sorted(_children(root))
            for path in candidates:
                name, n = path.name, 2
                while name in found:
                    name, n = f"{path.name}-{n}", n + 1
                found[name] = Entry(name, path)
        return found

    def names(self) -> list[str]:
        """Checkpoint names for the picker."""
        return list(self.entries())

    def load(self, name: str) -> Checkpoint:
        """The checkpoint called ``name``; UnknownModel or CheckpointError with a clear message."""
        entry = self.entries().get(name)
        if entry is None:
            known = ", ".join(self.names()) or "none configured"
            shown = name if len(name) <= 60 else name[:60] + "..."
            raise UnknownModel(f"no checkpoint called {shown!r} in the configured model folders (available: {known})")
        key = self._key(entry)
        checkpoint = self._kept(key)
        if checkpoint is not None:
            return checkpoint
        checkpoint = load_checkpoint(entry.path, device="cpu")
        _ = checkpoint.model_id  # hash once, now, rather than on the first request that needs it
        with self._lock:
            self._loaded[key] = checkpoint
            while len(self._loaded) > MAX_LOADED:
                self._loaded.popitem(last=False)
        return checkpoint

    def loaded(self, name: str) -> Checkpoint | None:
        """The checkpoint called ``name`` if this process has it loaded and its files are unchanged; never
        loads (None otherwise), so that a caller can take a shortcut that must not wait for a load."""
        entry = self.entries().get(name)
        if entry is None:
            return None
        try:
            return self._kept(self._key(entry))
        except (UnknownModel, OSError):  # refused or changing: the caller's slow path says why
            return None

    def identity(self, name: str) -> Identity:
        """The id and the tokeniser of the checkpoint called ``name``, without loading its weights (a worker
        that never loaded it answers a reopened link from the cache with them); UnknownModel or a
        BriLLMError of the tokeniser's file otherwise."""
        entry = self.entries().get(name)
        if entry is None:
            raise UnknownModel(f"no checkpoint called {name[:60]!r} in the configured model folders")
        key = self._key(entry)
        with self._lock:
            if key in self._identities:
                self._identities.move_to_end(key)
                return self._identities[key]
        loaded = self._kept(key)
        found = (Identity(loaded.model_id, loaded.tokenizer) if loaded is not None else
                 Identity(stored_model_id(entry.path) or compute_model_id(entry.path), load_tokenizer(entry.path)))
        with self._lock:
            self._identities[key] = found
            while len(self._identities) > MAX_IDENTITIES:
                self._identities.popitem(last=False)
        return found

    def _key(self, entry: Entry) -> tuple[Path, float]:
        """What a loaded checkpoint is kept under: its directory and the newest time of its (checked) files."""
        files = self._files_inside(entry)
        return entry.path, max((p.stat().st_mtime for p in files), default=0.0)

    def _kept(self, key: tuple[Path, float]) -> Checkpoint | None:
        """A loaded checkpoint (now the most recently used), or None."""
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        return None

    def usable_name(self, preferred: str = "") -> str:
        """``preferred`` if it loads, else the first listed checkpoint that loads ('' if none does).

        The stand-in for a link that names no listed checkpoint: a broken checkpoint listed
        first must not become every such link's model.
        """
        names = self.names()
        for name in ([preferred] if preferred in names else []) + names:
            try:
                self.load(name)
            except BriLLMError:
                continue
            return name
        return ""

    def _files_inside(self, entry: Entry) -> list[Path]:
        """The checkpoint's files; refused if the directory or a file resolves (through links) outside every configured folder."""
        try:
            files = list(entry.path.iterdir())
            targets = [entry.path.resolve(), *(p.resolve() for p in files)]
        except (OSError, RuntimeError) as exc:  # RuntimeError: a link loop
            raise UnknownModel(f"checkpoint {entry.name!r} cannot be listed: {exc}") from exc
        outside = [t for t in targets if not any(t.is_relative_to(root) for root in self.model_dirs)]
        if outside:
            raise UnknownModel(f"checkpoint {entry.name!r} links to files outside the configured model folders "
                               f"({len(outside)} path(s)); copy them in, or add their folder to the model folders")
        return files


def _children(root: Path) -> list[Path]:
    """Sub-directories of ``root`` that hold a config.json; none if ``root`` is unreadable."""
    try:
        return [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / CONFIG_NAME).is_file()]
    except OSError:
        return []
