"""What a run prints: the cell, its progress and its metrics; library chatter only on request.

Lightning announces GPU/TPU availability and a logger tip on every fit, W&B warns about its
anonymous setting, and torch warns about a deprecated pytree helper inside Lightning: with
``verbose=false`` (the default) these are silenced, with ``verbose=true`` they are all shown.
"""

from __future__ import annotations

import logging
import os
import warnings

CHATTY_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning")
CHATTY_WARNINGS = (
    ".*LeafSpec.*",
    ".*does not have many workers.*",
    ".*module\\(s\\) in eval mode at the start of training.*",
)


def set_verbosity(verbose: bool) -> None:
    """Show (``verbose``) or silence the libraries' informational output for this process."""
    level = logging.INFO if verbose else logging.WARNING
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if verbose:
        os.environ.pop("WANDB_SILENT", None)
        return
    os.environ.setdefault("WANDB_SILENT", "true")
    for message in CHATTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
