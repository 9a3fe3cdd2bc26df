"""What a result depends on: one request type for every page's job, and one way to its cache key.

A page asks for a kind of result (a path, a recall run, the reverse view, a comparison) for a view
state; ``ask`` keeps exactly the fields that kind reads (``READS``) and the checkpoints it reads
(``MODELS``), so two pages that need the same result ask for it alike and share it in the cache.
``result_key`` is the one place a result's cache key is made. A request travels to a page's job as
JSON (``Request.to_json``), which ``state.from_dict`` reads back into a view state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from brillm_core.decoding import DECODING

from .cache import cache_key
from .state import ViewState, to_dict

DECODING_NAMES = tuple(s.name for s in DECODING)
CONTINUING = tuple(n for n in DECODING_NAMES if n != "max_new_tokens")  # what a result beyond the prompt reads
READS: dict[str, tuple[str, ...]] = {
    "path": ("prompt", *DECODING_NAMES, "reroutes"),
    "recall": ("prompt", *CONTINUING, "hops", "branch", "beam"),
    "reverse": ("prompt", *CONTINUING),  # the energy of every edge under the prompt's next signal, for any node
    "compare": ("prompt", *DECODING_NAMES),
}
MODELS: dict[str, tuple[str, ...]] = {"compare": ("model", "model_b")}  # the others read the view's checkpoint


@dataclass(frozen=True)
class Request:
    """A kind of result, the checkpoints it is computed from (by name) and the view fields that fix it."""

    kind: str
    models: tuple[str, ...]
    fields: dict[str, Any]  # JSON-ready values, by ViewState field name

    def key(self, *model_ids: str) -> str:
        """The result's cache key, given the content ids of ``models`` (a name can come to hold other files)."""
        return result_key(self.kind, model_ids, self.fields)

    def to_json(self) -> dict[str, Any]:
        """The request as a page's job receives it: its kind, its checkpoints' fields and its fields."""
        return {"kind": self.kind, **dict(zip(MODELS.get(self.kind, ("model",)), self.models)), **self.fields}


def ask(kind: str, state: ViewState) -> Request:
    """The request for a result of ``kind`` shown in ``state``."""
    data = to_dict(state)
    return Request(kind, tuple(data[m] for m in MODELS.get(kind, ("model",))), {f: data[f] for f in READS[kind]})


def result_key(kind: str, model_ids: Sequence[str], fields: dict[str, Any]) -> str:
    """The cache key of a result of ``kind`` computed from checkpoints ``model_ids`` with ``fields``."""
    return cache_key(kind, "+".join(model_ids), fields)
