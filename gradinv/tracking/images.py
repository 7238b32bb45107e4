"""The picture of what leaked: originals in the top row, reconstructions below."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image


def reconstruction_grid(originals: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """A 2-row grid (originals above reconstructions) of images in [0, 1]."""
    pairs = torch.cat([originals.cpu(), reconstructions.cpu()])
    return make_grid(pairs, nrow=len(originals), padding=2, pad_value=1.0)


def save_reconstruction(originals: torch.Tensor, reconstructions: torch.Tensor, path: Path) -> None:
    save_image(reconstruction_grid(originals, reconstructions), path)
