"""BriLLM core: a faithful PyTorch BriLLM that records everything a propagation does.

Public API (the explorer uses these names, plus ``jsonfile`` for its own JSON files, the
``organization`` package, ``decoding`` (the decoding settings' declaration), and to find a
checkpoint's cached results without its weights ``tokenizer.load_tokenizer`` and
``checkpoint``'s ``stored_model_id`` / ``compute_model_id``):
    load_checkpoint, save_checkpoint, Checkpoint   native checkpoints
    import_release                                 convert the release's files
    BriLLM, ModelConfig, EdgeTable, random_model   the model
    propagate, reroute, DecodeSettings, Trace      paths and their traces
    edge_strengths, source_energies                the decode rule, batched over every source
    recall_activation, incoming_energy             recall activation and its reverse
    reverse_energies, incoming_from                (the reverse view of many targets of one context)
    score_ids, Score                               full-vocabulary scoring
    explain_step                                   every number of one step (teaching)
    compare_paths, edge_changes, loss_history      two checkpoints side by side
    path_energy_changes, edge_effects,             what B changed on A's path, and why
    largest_shift, parameter_groups,
    training_record
    memory_profile                                 what the memory weights learned: weight by distance, entropy
    ENGINE_VERSION                                 bump when numbers can change (cache keys carry it)
"""

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .compare import (PathComparison, ProbabilityShift, TrainingRecord, check_same_vocabulary, compare_paths,
                      edge_changes, edge_effects, js_divergence, largest_shift, loss_history, parameter_groups,
                      path_energy_changes, training_record)
from .config import ModelConfig
from .decode import SourceEnergies, edge_strengths, source_energies
from .edges import EdgeTable
from .explain import StepExplanation, explain_step
from .errors import BriLLMError, CheckpointError, PromptError, TokenizerError
from .memory_profile import MemoryProfile, memory_profile
from .model import BriLLM, positional_encoding, random_model
from .propagate import propagate, reroute
from .recall import RECALL_LIMITS, RecallResult, incoming_energy, incoming_from, recall_activation, reverse_energies
from .release import import_release
from .scoring import Score, score_ids
from .tokenizer import BPETokenizer, CharTokenizer, Encoding, train_bpe
from .trace import DecodeSettings, Step, Trace
from .version import ENGINE_VERSION

__all__ = [
    "BPETokenizer", "BriLLM", "BriLLMError", "CharTokenizer", "Checkpoint", "CheckpointError", "DecodeSettings", "ENGINE_VERSION",
    "EdgeTable", "Encoding", "SourceEnergies", "edge_strengths", "source_energies", "ModelConfig", "PathComparison",
    "StepExplanation", "check_same_vocabulary", "ProbabilityShift", "TrainingRecord", "edge_effects", "largest_shift",
    "parameter_groups", "path_energy_changes", "training_record",
    "compare_paths", "edge_changes", "explain_step", "js_divergence", "loss_history", "PromptError", "RecallResult", "Score", "Step", "TokenizerError", "Trace",
    "import_release", "incoming_energy", "incoming_from", "reverse_energies", "load_checkpoint", "MemoryProfile",
    "memory_profile", "positional_encoding", "propagate", "random_model",
    "RECALL_LIMITS", "recall_activation", "reroute", "save_checkpoint", "score_ids", "train_bpe",
]
