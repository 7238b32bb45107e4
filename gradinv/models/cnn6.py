"""R-GAP's CNN6 (Zhu & Blaschko, ICLR 2021): six bias-free convolutions, LeakyReLU, a linear head.

No pooling: the resolution drops by strided convolutions only, so every layer is a linear map
that R-GAP can write as a matrix. ``channels`` picks the full-rank cnn6 or the rank-deficient
cnn6d. Dropout sites: one after each of the six activations.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gradinv.errors import ConfigError
from gradinv.models.dropout import MaskedDropout
from gradinv.models.heads import head_outputs

#: (kernel, stride, padding) of the six convolutions, as in the paper.
GEOMETRY = ((4, 2, 2), (3, 2, 1), (3, 1, 1), (3, 1, 1), (3, 2, 1), (3, 1, 1))


class CNN6(nn.Module):
    """Six (bias-free conv, LeakyReLU(slope), dropout) blocks, flatten, bias-free linear head."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        dropout: float = 0.0,
        channels: Sequence[int] = (12, 36, 36, 36, 64, 128),
        head: str = "binary",
        slope: float = 0.2,
    ) -> None:
        super().__init__()
        if len(channels) != len(GEOMETRY):
            raise ConfigError(
                f"model.channels must list {len(GEOMETRY)} widths, got {list(channels)}."
            )
        layers: list[nn.Module] = []
        previous = input_shape[0]
        for width, (kernel, stride, padding) in zip(channels, GEOMETRY):
            layers += [
                nn.Conv2d(previous, width, kernel, stride, padding, bias=False),
                nn.LeakyReLU(slope),
                MaskedDropout(dropout),
            ]
            previous = width
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            features = self.features(torch.zeros(1, *input_shape)).shape[1]
        self.head = nn.Linear(features, head_outputs(head, num_classes), bias=False)

    def forward(self, x):
        return self.head(self.features(x))
