"""The classifier head's width: ``multiclass`` has one logit per class, ``binary`` a single logit."""

from __future__ import annotations

from gradinv.errors import ConfigError

HEADS = ("binary", "multiclass")


def head_outputs(head: str, num_classes: int) -> int:
    """Number of logits for ``head``; a binary head is trained with the logistic loss."""
    if head not in HEADS:
        raise ConfigError(f"model.head must be one of {HEADS}, got '{head}'.")
    return 1 if head == "binary" else num_classes
