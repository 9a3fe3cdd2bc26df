"""Exceptions the engine raises for input a user can fix (as opposed to bugs)."""


class BriLLMError(Exception):
    """Base class: the message alone tells the user what is wrong and what to do."""


class CheckpointError(BriLLMError):
    """A checkpoint or release file is missing, malformed, unsafe or inconsistent."""


class PromptError(BriLLMError):
    """A prompt cannot be propagated (empty, too long, not text)."""


class TokenizerError(BriLLMError):
    """A tokeniser file is unusable or does not match the model's vocabulary."""


class SignalOverflowError(BriLLMError):
    """float32 overflowed on a path (absurd parameters or start signal): no energies to show."""

    def __init__(self, where: str = "") -> None:
        super().__init__(f"the signal overflowed float32{where}: the checkpoint's parameters or the start signal "
                         "are too large for this model's arithmetic, so no energies can be shown")


class TrainingError(BriLLMError):
    """Training cannot start, resume or save; the message says what to change."""
