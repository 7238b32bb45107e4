"""Gradient-matching distances used by optimization attacks (their priors: ``regularizers``)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from gradinv.tensors import Tensors

# Each distance from <candidate, target>, ||candidate||^2 and ||target||^2 (per problem), for
# computations that never form the candidate gradient itself; the cosine distance below is
# this form. The l2 form expands the square, so where the candidate gradient is formed
# squared_distance sums the squared differences instead: exact near a perfect match.
PRODUCT_FORMS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cosine": lambda dot, norm, target_norm: (
        1 - dot / (norm.sqrt() * target_norm.sqrt()).clamp_min(1e-12)
    ),
    "l2": lambda dot, norm, target_norm: norm - 2 * dot + target_norm,
}


def cosine_distance(
    candidate: Tensors, target: Tensors, target_norm: torch.Tensor | None = None
) -> torch.Tensor:
    """1 - cosine similarity of all layers' gradients taken as one vector (Geiping et al. 2020);
    ``target_norm`` (its squared norm), constant over an attack, can be given once."""
    dot = sum((candidate[k] * target[k]).sum() for k in target)
    norm = sum(candidate[k].pow(2).sum() for k in target)
    if target_norm is None:
        target_norm = sum(target[k].pow(2).sum() for k in target)
    return PRODUCT_FORMS["cosine"](dot, norm, target_norm)


def squared_distance(
    candidate: Tensors, target: Tensors, target_norm: torch.Tensor | None = None
) -> torch.Tensor:
    """Sum of squared differences over all layers (Zhu et al. 2019, DLG); ``target_norm`` unused."""
    return sum((candidate[k] - target[k]).pow(2).sum() for k in target)


OBJECTIVES: dict[str, Callable[..., torch.Tensor]] = {
    "cosine": cosine_distance,
    "l2": squared_distance,
}
