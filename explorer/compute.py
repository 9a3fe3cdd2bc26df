"""What the pages compute, through the cache: traces (with re-routes), graph data, recall.

Every function takes a loaded checkpoint and a ViewState and returns plain results;
user-fixable problems surface as ``BriLLMError`` with the engine's message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from brillm_core import Checkpoint, DecodeSettings, PromptError, RecallResult, Trace, recall_activation, reroute
from brillm_core import SourceEnergies, incoming_from, reverse_energies
from brillm_core.decoding import DECODING, SETTINGS

from .cache import ResultCache
from .graphdata import LAYOUT_VERSION, GraphData, compute_graph_data
from .registry import Identity
from .request import ask, result_key
from .state import UNSET, ViewState


@dataclass
class PathResult:
    """The trace shown, and the trace before any re-route (None when there is none)."""

    trace: Trace
    original: Trace | None


def settings_of(state: ViewState) -> DecodeSettings:
    """Decode settings of a state: each declared setting, unset where the view writes it so (the engine
    validates them again)."""
    values = {s.name: getattr(state, s.name) for s in DECODING}
    return DecodeSettings(**{name: None if SETTINGS[name].default is None and value in (UNSET, ()) else value
                             for name, value in values.items()})


def path_key(checkpoint: Checkpoint | Identity, state: ViewState) -> str:
    """Cache key of the path a state asks for."""
    return ask("path", state).key(checkpoint.model_id)


StepProgress = Callable[[int, int], None]


def compute_path(checkpoint: Checkpoint, state: ViewState, progress: StepProgress | None = None) -> PathResult:
    """Trace the prompt, then apply each re-route in order; ``progress(done, total)`` per step of the first trace."""
    if not state.prompt:
        raise PromptError("the prompt is empty: type some text and press Generate")
    trace = checkpoint.trace(state.prompt, settings_of(state), progress)
    original = trace if state.reroutes else None
    for step, node in state.reroutes:
        if node >= checkpoint.config.vocab_size:
            raise PromptError(f"re-route to node {node}: no such node (0..{checkpoint.config.vocab_size - 1})")
        trace = reroute(checkpoint.model, trace, step, node, token_text=checkpoint.token, unknown=trace.unknown)
    return PathResult(trace, original)


def path_for(cache: ResultCache, checkpoint: Checkpoint, state: ViewState,
             progress: StepProgress | None = None) -> PathResult:
    """Cached ``compute_path``."""
    return cache.get_or_compute(path_key(checkpoint, state), lambda: compute_path(checkpoint, state, progress))


def graph_key(checkpoint: Checkpoint | Identity, settings: DecodeSettings | None = None) -> str:
    """Cache key of a checkpoint's graph data under the decode settings its edge strengths follow."""
    s = settings or DecodeSettings()
    return result_key("graph", [checkpoint.model_id], {"version": 2, "layout": LAYOUT_VERSION,
                                                        "release_decoder": s.release_decoder,
                                                        "start_signal": s.start_signal})


def graph_for(cache: ResultCache, checkpoint: Checkpoint, settings: DecodeSettings | None = None) -> GraphData:
    """Cached graph data (layout and edge strengths) of a checkpoint; the strengths are the step-0
    energies under ``settings`` (decoder and start signal; default the training semantics)."""
    return cache.get_or_compute(graph_key(checkpoint, settings), lambda: compute_graph_data(checkpoint.model, settings))


def recall_key(checkpoint: Checkpoint | Identity, state: ViewState) -> str:
    """Cache key of a recall run."""
    return ask("recall", state).key(checkpoint.model_id)


def compute_recall(checkpoint: Checkpoint, state: ViewState, progress: StepProgress | None = None) -> RecallResult:
    """Recall activation from the prompt's nodes; ``progress(hop, hops)`` after every hop."""
    if not state.prompt:
        raise PromptError("the prompt is empty: type some text and press Run")
    ids = checkpoint.encode(state.prompt).ids
    if not ids:
        raise PromptError("the prompt maps to no tokens: type some text")
    return recall_activation(checkpoint.model, ids, state.hops, state.branch, state.beam, settings_of(state), progress)


def recall_for(cache: ResultCache, checkpoint: Checkpoint, state: ViewState,
               progress: StepProgress | None = None) -> RecallResult:
    """Cached ``compute_recall``."""
    return cache.get_or_compute(recall_key(checkpoint, state), lambda: compute_recall(checkpoint, state, progress))


def reverse_energies_for(cache: ResultCache, checkpoint: Checkpoint, state: ViewState) -> SourceEnergies:
    """Cached energies of every edge under the reverse view's signal for the state's prompt: the same for every
    node chosen, so that a choice costs one read of them."""
    def compute() -> SourceEnergies:
        ids = checkpoint.encode(state.prompt).ids if state.prompt else []
        return reverse_energies(checkpoint.model, ids or None, settings_of(state))

    return cache.get_or_compute(ask("reverse", state).key(checkpoint.model_id), compute)


def reverse_for(cache: ResultCache, checkpoint: Checkpoint, state: ViewState) -> pd.DataFrame:
    """The reverse view of the state's node (energy into it, given the prompt as context)."""
    return incoming_from(checkpoint.model, reverse_energies_for(cache, checkpoint, state), state.node)
