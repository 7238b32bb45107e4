"""The two places a defense can act, on the client's model and on the update it shares, and what it
declares to an aware attacker: the parameters whose gradients it makes stochastic."""

from __future__ import annotations

import torch
from torch import nn


class Defense:
    """Identity on both sides; subclasses override one or both hooks."""

    #: Attacks that rely on exact gradients (R-GAP) refuse defenses that set this.
    perturbs_update = False

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Return the model the client trains (and the server distributes)."""
        return model

    def protect(self, gradients: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
        """Return the gradients the client actually shares."""
        return gradients

    def skippable_parameters(self, model: nn.Module) -> list[str]:
        """Parameters whose shared gradients this defense makes stochastic, so that an attacker
        aware of it may leave them out of its matching (``attack.ignore_layers=[defended]``)."""
        return []


class NoDefense(Defense):
    """The client shares its exact gradient."""
