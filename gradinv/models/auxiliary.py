"""The contract for a layer that adds its own term to the training loss (PRECODE's KL term).

Such a layer subclasses ``AuxiliaryLoss`` and sets ``auxiliary_loss`` in every forward pass;
``training_loss`` adds it for the client and every attacker alike, and computations that assume
the plain output loss (the linear-layer shortcut) refuse models that have one.
"""

from __future__ import annotations

import torch
from torch import nn


class AuxiliaryLoss(nn.Module):
    """A module whose last forward pass left a term for the training loss in ``auxiliary_loss``."""

    def __init__(self) -> None:
        super().__init__()
        self.auxiliary_loss: torch.Tensor | None = None


def auxiliary_losses(model: nn.Module) -> list[torch.Tensor]:
    """The terms the model's auxiliary-loss layers left in their last forward pass."""
    return [
        m.auxiliary_loss
        for m in model.modules()
        if isinstance(m, AuxiliaryLoss) and m.auxiliary_loss is not None
    ]


def has_auxiliary_loss(model: nn.Module) -> bool:
    """Whether any layer of ``model`` adds a term to its training loss."""
    return any(isinstance(m, AuxiliaryLoss) for m in model.modules())
