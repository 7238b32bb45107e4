"""R-GAP's FCN3 (Zhu & Blaschko, ICLR 2021): input -> 1000 -> 100 -> head, bias-free, LeakyReLU.

The paper's 784 inputs are MNIST's; the first layer takes whatever the input shape flattens to.
Dropout sites: one after each of the two activations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from gradinv.models.dropout import MaskedDropout
from gradinv.models.heads import head_outputs


class FCN3(nn.Module):
    """Flatten, (bias-free Linear, LeakyReLU(slope), dropout) per hidden width, bias-free head."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        dropout: float = 0.0,
        widths: Sequence[int] = (1000, 100),
        head: str = "binary",
        slope: float = 0.2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        features = math.prod(input_shape)
        for width in widths:
            layers += [
                nn.Linear(features, width, bias=False),
                nn.LeakyReLU(slope),
                MaskedDropout(dropout),
            ]
            features = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(features, head_outputs(head, num_classes), bias=False)

    def forward(self, x):
        return self.head(self.features(x))
