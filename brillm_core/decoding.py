"""The decoding settings, each declared once: its name, kind, range, default and help.

``DecodeSettings`` (``trace.py``) checks its values against these declarations; the ``brillm``
command builds its options from them (``cli/engine.py``), and the explorer its form, the keys
of its links and its clamping. A new setting is a field of ``DecodeSettings`` plus one entry in
``DECODING``; every interface then offers it.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

from .errors import BriLLMError

FLOAT32_MAX = 3.4028234663852886e38  # a start-signal value beyond this is infinite in float32
NUMBERS = tuple  # the kind of a setting written as numbers separated by commas


@dataclass(frozen=True)
class Setting:
    """One decoding setting, as every interface shows and checks it."""

    name: str  # the field of DecodeSettings: the one name of the setting in code
    kind: type  # int, float, bool or NUMBERS
    default: Any  # where the command line and the explorer start (None: unset)
    label: str  # a form's name for it
    help: str  # what it does, in one sentence
    key: str  # its key in an explorer link
    low: float | None = None  # the least value accepted (None: no bound)
    high: float | None = None  # the largest value accepted (None: no bound)
    unset: str = ""  # what leaving it unset (None) means; empty: it cannot be unset
    why: str = ""  # why the range is what it is, said when a value is refused
    samples: bool = False  # giving it on the command line asks for sampling
    choices: tuple[str, str] | None = None  # a flag shown as two named choices (true, false)

    @property
    def option(self) -> str:
        """The command line's option: ``--max-new-tokens``."""
        return "--" + self.name.replace("_", "-")

    def range_text(self, low: float | None = None, high: float | None = None) -> str:
        """The accepted range in words ("0.001 or more", "0..256"); bounds default to the declared ones."""
        low = self.low if low is None or low == -math.inf else low
        high = self.high if high is None or high == math.inf else high
        if low is not None and high is not None:
            return f"{low:g}..{high:g}" if self.kind is float else f"{int(low)}..{int(high)}"
        if low is not None:
            return f"{low:g} or more"
        return f"{high:g} or less" if high is not None else "any number"

    def check(self, value: Any) -> Any:
        """``value`` as this setting holds it (numbers as a tuple of floats), or BriLLMError saying what is
        accepted."""
        if value is None:
            if self.unset or self.kind is bool:
                return value
            raise BriLLMError(f"{self.name} must be set")
        if self.kind is bool:
            return value
        if self.kind is NUMBERS:
            try:
                if isinstance(value, (str, bytes)):
                    raise TypeError
                values = tuple(float(v) for v in value)
            except (TypeError, ValueError):
                raise BriLLMError(f"{self.name} must be numbers, got {str(value)[:40]!r}") from None
            if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in values):
                raise BriLLMError(f"{self.name} must hold finite numbers within the float32 range")
            return values
        if self.kind is int:
            if isinstance(value, bool) or not hasattr(value, "__index__"):
                raise BriLLMError(f"{self.name} must be a whole number, got {value!r}")
            number: float = operator.index(value)
        else:
            number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
        if not (self.kind is int or math.isfinite(number)):
            raise BriLLMError(f"{self.name} must be a finite number, got {value!r}")
        if not ((self.low is None or number >= self.low) and (self.high is None or number <= self.high)):
            unset = f", or unset ({self.unset})" if self.unset else ""
            why = f" ({self.why})" if self.why else ""
            raise BriLLMError(f"{self.name} must be {self._bounds_words()}{unset}{why}, got {value!r}")
        return number

    def _bounds_words(self) -> str:
        """'at least 0.001', 'in 0..2**64-1': the range as an error message says it."""
        if self.low is not None and self.high is not None:
            return f"in {self.range_text()}"
        if self.low is not None:
            return f"at least {self.low:g}"
        return f"at most {self.high:g}" if self.high is not None else "a finite number"


# Energies are divided by the temperature in float32: below this, ordinary energies overflow to infinity and
# sampling has no distribution left.
MIN_TEMPERATURE = 1e-3
MAX_SEED = 2**64 - 1  # torch generators take seeds in 0..2**64-1

DECODING: tuple[Setting, ...] = (
    Setting("max_new_tokens", int, 16, "New tokens", "tokens to generate after the prompt", "n", low=0),
    Setting("greedy", bool, True, "Choice", "take the highest-energy node at each step; otherwise sample from "
            "the softmax of the energies divided by the temperature", "g", choices=("greedy", "sampled")),
    Setting("temperature", float, 1.0, "Temperature", "divides the energies before the softmax when sampling",
            "t", low=MIN_TEMPERATURE, why="lower overflows float32 energies; use greedy decoding for the "
            "highest-energy node", samples=True),
    Setting("top_k", int, None, "Top-k", "sample only among the k most probable nodes", "k", low=1,
            unset="every node", samples=True),
    Setting("seed", int, 0, "Seed", "the random seed of sampling: the same seed gives the same path", "seed",
            low=0, high=MAX_SEED, unset="a fresh random seed", samples=True),
    Setting("release_decoder", bool, False, "Release decoder", "reproduce the release's decoder (PE[i] instead "
            "of PE[i+1], no self-loops, the temperature has no effect)", "rd"),
    Setting("start_signal", NUMBERS, None, "Start signal r", "d numbers, comma-separated, in place of ones(d)/d "
            "in the start signal", "ss", unset="ones(d)/d"),
    Setting("memory_window", int, None, "Memory window", "an ablation: the memory holds only the last N "
            "outputs (1: the previous output only)", "mw", low=1, unset="the whole memory"),
)
SETTINGS: dict[str, Setting] = {s.name: s for s in DECODING}
