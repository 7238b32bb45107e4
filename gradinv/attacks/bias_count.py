"""Batch label counts from the head's bias gradient (Geng et al. 2021, "Towards general deep
leakage in federated learning"; the linear system of iLRG, Ma et al. 2023, at a near-uniform
softmax).

For the mean cross-entropy, the bias gradient of class c is exactly mean_k p_kc - n_c / B, with
no assumption on the features: n_c = B (p_c - grad b_c), where the attacker estimates the batch's
mean softmax p_c on dummy inputs through its copy of the model. Exact for an untrained model
(near-uniform softmax); the error grows with how much the softmax depends on the input.
"""

from __future__ import annotations

import torch
from torch import nn

from gradinv.attacks.head_probe import dummy_head_io


def bias_count_labels(
    model: nn.Module, input_shape: tuple[int, ...], bias_gradient: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """The batch's labels, sorted: B (mean softmax - bias gradient) rounded to B labels by taking,
    one at a time, the class with the largest count not yet taken."""
    _, probs = dummy_head_io(model, input_shape)
    remaining = batch_size * (probs.mean(dim=0) - bias_gradient.detach().double().cpu())
    labels = []
    for _ in range(batch_size):
        c = int(remaining.argmax())
        labels.append(c)
        remaining[c] -= 1
    return torch.tensor(sorted(labels), dtype=torch.long)
