"""Priors an optimization attack adds to its gradient distance, composed from the attack's YAML.

Each regularizer is a small module with a non-negative ``weight``; ``attack.regularizers`` maps
names to them (``_target_`` entries, as breaching composes its regularizers), and the attack's
penalty is the sum of their weighted terms, in the order listed. Terms are computed for all
problems at once: images and variables come stacked along a leading problem axis, and each term
is one value per problem. A new prior is a subclass of ``Regularizer`` and one YAML entry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

import torch

from gradinv.attacks.variables import DropoutMask, Variable


class Regularizer(ABC):
    """A weighted penalty on a problem's candidate images and learned variables."""

    def __init__(self, weight: float) -> None:
        self.weight = weight

    @abstractmethod
    def terms(self, images: torch.Tensor, variables: dict[str, Variable]) -> Iterator[torch.Tensor]:
        """The weighted penalty terms, each of shape (problems,) (one per site for per-site priors)."""


class TotalVariation(Regularizer):
    """Total variation (Geiping et al. 2020): mean |dx| + mean |dy| of the candidate images."""

    def terms(self, images: torch.Tensor, variables: dict[str, Variable]) -> Iterator[torch.Tensor]:
        yield self.weight * total_variation(images)


class MaskRate(Regularizer):
    """DIA's mask prior (Scheliga et al. 2023): per site, ``|(1 - mean(mask)) - p|``."""

    def terms(self, images: torch.Tensor, variables: dict[str, Variable]) -> Iterator[torch.Tensor]:
        for variable in variables.values():
            if isinstance(variable, DropoutMask):
                yield self.weight * (1 - variable.value.flatten(1).mean(dim=1) - variable.rate).abs()


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Per problem (leading axis), the mean absolute difference between neighbouring pixels,
    horizontally plus vertically."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().flatten(1).mean(dim=1)
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().flatten(1).mean(dim=1)
    return dx + dy
