"""What the attacker may know about the data: shape, class count and normalization."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DataSpec:
    """Public facts about a dataset; images enter models normalized with ``mean``/``std``."""

    name: str
    channels: int
    size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.as_tensor(self.mean, dtype=like.dtype, device=like.device).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=like.dtype, device=like.device).view(-1, 1, 1)
        return mean, std

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Map images in [0, 1] to the model's input space."""
        mean, std = self._stats(images)
        return (images - mean) / std

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """Map model inputs back to pixel space, clamped to [0, 1]."""
        mean, std = self._stats(images)
        return (images * std + mean).clamp(0, 1)

    def pixel_bounds(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds of valid pixels in normalized space, shaped (C, 1, 1)."""
        mean, std = self._stats(like)
        return -mean / std, (1 - mean) / std
