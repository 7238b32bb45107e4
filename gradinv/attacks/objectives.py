"""Gradient-matching distances used by optimization attacks (their priors: ``regularizers``)."""

from __future__ import annotations

from typing import Callable

import torch

Gradients = dict[str, torch.Tensor]


def cosine_distance(candidate: Gradients, target: Gradients) -> torch.Tensor:
    """1 - cosine similarity of all layers' gradients taken as one vector (Geiping et al. 2020)."""
    dot = sum((candidate[k] * target[k]).sum() for k in target)
    cand_norm = sum(candidate[k].pow(2).sum() for k in target).sqrt()
    target_norm = sum(target[k].pow(2).sum() for k in target).sqrt()
    return 1 - dot / (cand_norm * target_norm).clamp_min(1e-12)


def squared_distance(candidate: Gradients, target: Gradients) -> torch.Tensor:
    """Sum of squared differences over all layers (Zhu et al. 2019, DLG)."""
    return sum((candidate[k] - target[k]).pow(2).sum() for k in target)


OBJECTIVES: dict[str, Callable[[Gradients, Gradients], torch.Tensor]] = {
    "cosine": cosine_distance,
    "l2": squared_distance,
}


# The same distances from <candidate, target>, ||candidate||^2 and ||target||^2 per problem,
# for computations that never form the candidate gradient itself.
PRODUCT_FORMS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cosine": lambda dot, norm, target_norm: 1
    - dot / (norm.sqrt() * target_norm.sqrt()).clamp_min(1e-12),
    "l2": lambda dot, norm, target_norm: norm - 2 * dot + target_norm,
}

