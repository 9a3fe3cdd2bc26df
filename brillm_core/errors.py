"""Exceptions the engine raises for input a user can fix (as opposed to bugs)."""


class BriLLMError(Exception):
    """Base class: the message alone tells the user what is wrong and what to do."""


class CheckpointError(BriLLMError):
    """A checkpoint or release file is missing, malformed, unsafe or inconsistent."""


class PromptError(BriLLMError):
    """A prompt cannot be propagated (empty, too long, not text)."""


class TokenizerError(BriLLMError):
    """A tokeniser file is unusable or does not match the model's vocabulary."""
