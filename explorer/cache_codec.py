"""Results as data for the disk cache: one safetensors blob, never a pickle.

A cached value (a trace, graph data, a recall result, a comparison, a data frame, an
organisation report, an upload) is a tree of the project's dataclasses, lists, tuples,
dicts, strings, numbers, bytes, numpy arrays, torch tensors and data frames. ``encode``
writes the tree's shape as JSON and every numeric array as a tensor of one safetensors
file; ``decode`` reads them back exactly (float32 stays float32, NaN stays NaN).
Decoding builds only dataclasses defined in ``brillm_core`` or ``explorer``, from their
fields, so a planted cache entry can at worst be wrong data: it can never run code.
Anything else raises ``TypeError`` on encode and ``ValueError`` on decode.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

FORMAT = "brillm-cache-value"
VERSION = 1
TREE = "__tree__"
PROJECT_PACKAGES = ("brillm_core", "explorer")
PRIMITIVES = (type(None), bool, int, float, str)
NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats: what safetensors stores


class _Encoder:
    """Turns a value into a JSON tree whose arrays are collected as tensors."""

    def __init__(self) -> None:
        self.tensors: dict[str, np.ndarray] = {}

    def array(self, values: np.ndarray) -> str:
        """Keep a numeric array as a tensor; its name."""
        name = f"t{len(self.tensors)}"
        self.tensors[name] = np.ascontiguousarray(values)
        return name

    def tree(self, value: Any) -> Any:
        """The JSON form of ``value``."""
        if type(value) in PRIMITIVES:
            return value
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        if isinstance(value, tuple):
            return {"$": "tuple", "items": [self.tree(v) for v in value]}
        if isinstance(value, dict):
            return {"$": "dict", "items": [[self.tree(k), self.tree(v)] for k, v in value.items()]}
        if isinstance(value, bytes):
            return {"$": "bytes", "tensor": self.array(np.frombuffer(value, dtype=np.uint8))}
        if isinstance(value, torch.Tensor):
            return {"$": "torch", "array": self.tree(value.detach().cpu().numpy())}
        if isinstance(value, np.generic):
            return {"$": "scalar", "array": self.tree(np.asarray(value))}
        if isinstance(value, np.ndarray):
            if value.dtype.kind in NUMERIC_KINDS:
                return {"$": "ndarray", "tensor": self.array(value), "shape": list(value.shape)}
            return {"$": "pyarray", "dtype": value.dtype.str, "shape": list(value.shape),
                    "items": [self.tree(v) for v in value.reshape(-1).tolist()]}
        if isinstance(value, pd.DataFrame):
            return {"$": "frame", "columns": self.tree(list(value.columns)),
                    "index": self.tree(value.index.to_numpy()), "index_name": self.tree(value.index.name),
                    "data": [self.tree(value.iloc[:, i].to_numpy()) for i in range(value.shape[1])]}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            cls = type(value)
            return {"$": "dataclass", "class": f"{cls.__module__}:{cls.__qualname__}",
                    "fields": {f.name: self.tree(getattr(value, f.name)) for f in dataclasses.fields(value)}}
        raise TypeError(f"the result cache cannot store a {type(value).__module__}.{type(value).__qualname__}")


def encode(value: Any) -> bytes:
    """``value`` as one safetensors blob (its tree as JSON in a uint8 tensor, arrays beside it)."""
    encoder = _Encoder()
    tree = json.dumps({"format": FORMAT, "version": VERSION, "value": encoder.tree(value)}, separators=(",", ":"))
    encoder.tensors[TREE] = np.frombuffer(tree.encode("utf-8"), dtype=np.uint8)
    return save_tensors(encoder.tensors)


def project_dataclass(name: str) -> type:
    """The dataclass ``module:qualname`` defined in an already imported module of this project;
    ValueError for anything else (nothing is imported, no private attribute is followed)."""
    module_name, _, qualname = name.partition(":")
    module = sys.modules.get(module_name)
    parts = qualname.split(".")
    if module_name.split(".")[0] not in PROJECT_PACKAGES or module is None or any(p.startswith("_") for p in parts):
        raise ValueError(f"cache entry names a class this app does not store: {name}")
    found: Any = module
    for part in parts:
        found = getattr(found, part, None)
    if not (isinstance(found, type) and dataclasses.is_dataclass(found) and found.__module__ == module_name):
        raise ValueError(f"cache entry names something that is not one of the project's dataclasses: {name}")
    return found


class _Decoder:
    """Rebuilds a value from its JSON tree and tensors."""

    def __init__(self, tensors: dict[str, np.ndarray]) -> None:
        self.tensors = tensors

    def value(self, tree: Any) -> Any:
        """The value a JSON tree describes."""
        if isinstance(tree, list):
            return [self.value(v) for v in tree]
        if not isinstance(tree, dict):
            return tree
        tag = tree["$"]
        if tag == "tuple":
            return tuple(self.value(v) for v in tree["items"])
        if tag == "dict":
            return {self._key(k): self.value(v) for k, v in tree["items"]}
        if tag == "bytes":
            return self.tensors[tree["tensor"]].tobytes()
        if tag == "ndarray":
            return self.tensors[tree["tensor"]].reshape(tree["shape"]).copy()  # writable, like the array stored
        if tag == "torch":
            return torch.from_numpy(self.value(tree["array"]))
        if tag == "scalar":
            return self.value(tree["array"])[()]
        if tag == "pyarray":
            items = [self.value(v) for v in tree["items"]]
            array = np.empty(len(items), dtype=np.dtype(tree["dtype"]))
            for i, item in enumerate(items):
                array[i] = item
            return array.reshape(tree["shape"])
        if tag == "frame":
            columns = self.value(tree["columns"])
            frame = pd.DataFrame({i: self.value(col) for i, col in enumerate(tree["data"])},
                                 index=pd.Index(self.value(tree["index"]), name=self.value(tree["index_name"])))
            frame.columns = columns
            return frame
        if tag == "dataclass":
            cls = project_dataclass(tree["class"])
            fields = {f.name: f for f in dataclasses.fields(cls)}
            values = {name: self.value(v) for name, v in tree["fields"].items()}
            if set(values) != set(fields):
                raise ValueError(f"cache entry for {tree['class']} has other fields than the class")
            instance = cls(**{k: v for k, v in values.items() if fields[k].init})
            for name, v in values.items():
                if not fields[name].init:
                    object.__setattr__(instance, name, v)
            return instance
        raise ValueError(f"unknown tag in a cache entry: {tag!r}")

    def _key(self, tree: Any) -> Any:
        """A dict key (lists become tuples, so that they hash)."""
        key = self.value(tree)
        return tuple(key) if isinstance(key, list) else key


def decode(blob: bytes) -> Any:
    """The value ``encode`` stored; ValueError when the blob is not such a value."""
    try:
        tensors = load_tensors(blob)
        tree = json.loads(tensors.pop(TREE).tobytes().decode("utf-8"))
    except (SafetensorError, KeyError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not a cached value: {exc}") from exc
    if not isinstance(tree, dict) or tree.get("format") != FORMAT or tree.get("version") != VERSION:
        raise ValueError("not a cached value of this version")
    try:
        return _Decoder(tensors).value(tree["value"])
    except (KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise ValueError(f"malformed cache entry: {exc}") from exc
