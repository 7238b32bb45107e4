"""The places a defense can act: on the client's model, on how the client computes its
gradients, and on the update it shares; and what it declares: to an aware attacker, the
parameters whose gradients it makes stochastic, and to the record, its privacy accounting."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from gradinv.federated.gradients import StepGradients


class Defense:
    """Identity on every side; subclasses override what they change."""

    #: Attacks that rely on exact gradients (R-GAP) refuse defenses that set this.
    perturbs_update = False
    #: Set when the client's gradients come from ``client_gradients`` (DP-SGD clips each
    #: example's), which gradinv's training does not apply: it refuses such a defense.
    acts_per_example = False

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Return the model the client trains (and the server distributes)."""
        return model

    def client_gradients(self, batch_size: int, steps: int) -> StepGradients | None:
        """How the client computes each gradient step of a round on ``batch_size`` images in
        which one image enters at most ``steps`` steps; None: the plain gradient of the mean loss."""
        return None

    def protect(
        self, gradients: dict[str, torch.Tensor], model: nn.Module
    ) -> dict[str, torch.Tensor]:
        """Return the gradients the client actually shares."""
        return gradients

    def skippable_parameters(self, model: nn.Module) -> list[str]:
        """Parameters whose shared gradients this defense makes stochastic, so that an attacker
        aware of it may leave them out of its matching (``attack.ignore_layers=[defended]``)."""
        return []

    def privacy(self, batch_size: int, steps: int) -> dict[str, Any] | None:
        """The privacy guarantee of one round as ``client_gradients`` describes it (epsilon at
        delta, and what it was computed from); None for a defense that claims none."""
        return None


class NoDefense(Defense):
    """The client shares its exact gradient."""
