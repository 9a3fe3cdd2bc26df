"""Training a BriLLM: ``train`` runs (or resumes) a run in a directory; each module owns one job.

- ``settings``: every training setting declared once (type, default, range, help); ``brillm train``'s arguments derive from it.
- ``objective``: the losses, the exact full-vocabulary energy cross-entropy and the release's sampled one.
- ``trainer``: optimisers, the learning-rate schedule, one step, the optimiser state (``optim``: RowAdamW).
- ``distributed``: torchrun's process group, gradient averaging, the check that ranks agree.
- ``rundir``: the run directory, checkpoint writing and pruning, resume and the run's fingerprint.
- ``init``: the starts (random, counts, context).
- ``loop``: ``train`` itself, from the corpus to the last checkpoint.
"""

from ..errors import TrainingError
from .loop import train
from .settings import TrainSettings

__all__ = ["TrainSettings", "TrainingError", "train"]
