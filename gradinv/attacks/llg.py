"""Batch label counts from the head's weight gradient: LLG (Wainakh et al., PETS 2022).

Summed over its input features, row c of the mean cross-entropy gradient of a linear head is
g_c = 1/B sum_k (p_kc - y_kc) O_k, with O_k the sum of sample k's head inputs. With
non-negative head inputs (ReLU-like activations) a class that occurs gives a negative g_c and one
that does not a non-negative one; each occurrence adds about the same *impact* m = -E[O]/B, on
top of an *offset* s_c = E[p_c O] that every sample adds. LLG reads the classes with g_c < 0,
subtracts one impact for each, then adds, one at a time, the class whose remaining g_c - s_c is
the most negative until the batch is full: repeated labels are counted. Plain LLG estimates the
impact from the gradient itself and takes no offset (an untrained model's softmax is near
uniform); LLG+ estimates both from dummy inputs through the attacker's copy of the model.
"""

from __future__ import annotations

import torch
from torch import nn

from gradinv.attacks.head_probe import dummy_head_io


def llg_labels(head_gradient: torch.Tensor, batch_size: int) -> torch.Tensor:
    """LLG: the impact from the gradient (sum of the negative g_c x (1 + 1/C) / B), no offset."""
    g = _row_sums(head_gradient)
    impact = g.clamp(max=0).sum() * (1 + 1 / len(g)) / batch_size
    return count_labels(g, batch_size, impact, torch.zeros_like(g))


def llg_plus_labels(
    model: nn.Module, input_shape: tuple[int, ...], head_gradient: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """LLG+: impact and offset estimated on dummy inputs through ``model`` (the expectations the
    paper measures with dummy batches, read off the head's inputs and softmax directly)."""
    g = _row_sums(head_gradient)
    features, probs = dummy_head_io(model, input_shape)
    sums = features.sum(dim=1, keepdim=True)
    impact = -sums.mean() / batch_size
    offset = (probs * sums).mean(dim=0)
    return count_labels(g, batch_size, impact, offset)


def count_labels(
    g: torch.Tensor, batch_size: int, impact: torch.Tensor, offset: torch.Tensor
) -> torch.Tensor:
    """LLG's two stages: every class with g_c < 0 once (the B most negative if more), then the
    most negative remaining g_c - s_c, one impact subtracted per label taken; sorted labels."""
    remaining = (g - offset).clone()
    present = (g < 0).nonzero().flatten()
    present = present[g[present].argsort()][:batch_size]
    labels = present.tolist()
    remaining[present] -= impact
    while len(labels) < batch_size:
        c = int(remaining.argmin())
        labels.append(c)
        remaining[c] -= impact
    return torch.tensor(sorted(labels), dtype=torch.long)


def _row_sums(head_gradient: torch.Tensor) -> torch.Tensor:
    return head_gradient.detach().flatten(1).sum(dim=1).double().cpu()
