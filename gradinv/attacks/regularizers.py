"""Priors an optimization attack adds to its gradient distance, composed from the attack's YAML.

Each regularizer is a small module with a non-negative ``weight``; ``attack.regularizers`` maps
names to them (``_target_`` entries, as breaching composes its regularizers), and the attack's
penalty is the sum of their weighted terms, in the order listed. Terms are computed for all
problems at once: images and variables come stacked along a leading problem axis, and each term
is one value per problem. A new prior is a subclass of ``Regularizer`` and one YAML entry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

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
    """DIA's mask prior (Scheliga et al. 2023): the sum over sites of ``|(1 - mean(mask)) - p|``.

    Every site's mean comes from one segment reduction over all masks, so the prior is a few
    kernels whatever the number of sites (the ViT has 17); the segments' lengths and rates are
    made once per layout and device, not at every step.
    """

    def __init__(self, weight: float) -> None:
        super().__init__(weight)
        self._segments: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def terms(self, images: torch.Tensor, variables: dict[str, Variable]) -> Iterator[torch.Tensor]:
        masks = [v for v in variables.values() if isinstance(v, DropoutMask)]
        if not masks:
            return
        flat = torch.cat([m.value.flatten(1) for m in masks], dim=1)
        lengths, rates = self._segments_of(masks, flat)
        means = torch.segment_reduce(flat, "mean", lengths=lengths, axis=1, unsafe=True)
        yield self.weight * (1 - means - rates).abs().sum(dim=1)

    def _segments_of(
        self, masks: list[DropoutMask], flat: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each site's length (per problem, as segment_reduce takes them) and drop rate."""
        key = (
            flat.device,
            flat.dtype,
            flat.shape[0],
            tuple((m.value.shape[1:], m.rate) for m in masks),
        )
        if key not in self._segments:
            sizes = [m.value[0].numel() for m in masks]
            lengths = torch.tensor(sizes, device=flat.device).expand(flat.shape[0], -1).contiguous()
            rates = torch.tensor([m.rate for m in masks], dtype=flat.dtype, device=flat.device)
            self._segments[key] = (lengths, rates)
        return self._segments[key]


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Per problem (leading axis), the mean absolute difference between neighbouring pixels,
    horizontally plus vertically."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().flatten(1).mean(dim=1)
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().flatten(1).mean(dim=1)
    return dx + dy
