"""How well an attack recovered a batch's labels, regardless of which image carries which."""

from __future__ import annotations

from collections import Counter

import torch


def label_multiset_accuracy(truth: torch.Tensor, guess: torch.Tensor) -> float:
    """The share of the batch's labels recovered as a multiset: sum over classes of
    min(true count, recovered count) / batch size. Batch label inference (LLG) recovers counts,
    not which image has which label, so the score must not depend on the images' order."""
    true_counts = Counter(truth.flatten().tolist())
    guess_counts = Counter(guess.flatten().tolist())
    return sum((true_counts & guess_counts).values()) / len(truth)
