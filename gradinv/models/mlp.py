"""Fully connected network: three bias-free hidden layers of 512 with GELU and dropout."""

from __future__ import annotations

import math

from torch import nn

from gradinv.models.dropout import MaskedDropout


class MLP(nn.Module):
    """Flatten, then ``depth`` x (Linear, GELU, dropout), then a linear head; no biases."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        dropout: float = 0.0,
        width: int = 512,
        depth: int = 3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        features = math.prod(input_shape)
        for _ in range(depth):
            layers += [nn.Linear(features, width, bias=False), nn.GELU(), MaskedDropout(dropout)]
            features = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(features, num_classes, bias=False)

    def forward(self, x):
        return self.head(self.features(x))
