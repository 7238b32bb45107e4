"""Mask accuracy: learned masks binarized at one half, compared after the image matching."""

from __future__ import annotations

import torch

from gradinv.metrics.masks import mask_agreement, mask_metrics


def test_mask_accuracy_binarizes_at_half_and_follows_the_image_matching():
    truth = {"s.mask": torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])}
    learned = {"s.mask": torch.tensor([[0.1, 0.2, 0.9], [0.6, 0.4, 0.5]])}
    # Learned row 1 belongs to original 0 and row 0 to original 1: all 6 agree; unmatched, 4.
    assert mask_agreement(truth, learned, [1, 0]) == {"s.mask": (6, 6)}
    assert mask_agreement(truth, learned, [0, 1]) == {"s.mask": (4, 6)}
    metrics, reason = mask_metrics([truth, truth], [learned, learned], [[1, 0], [0, 1]])
    assert reason is None
    assert metrics == {"mask_accuracy": 10 / 12, "mask_accuracy/s": 10 / 12}
    assert mask_metrics([truth], [None], [[0, 1]]) == (
        {"mask_accuracy": None},
        "the attack learns no dropout masks",
    )
