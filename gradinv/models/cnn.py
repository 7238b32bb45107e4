"""A small ConvNet in the LeNet tradition: two conv blocks, a hidden linear layer, a head.

Dropout after the hidden layer, and with ``dropout_placement=spatial`` after each conv block
too (``gradinv.models.placement``).
"""

from __future__ import annotations

from torch import nn

from gradinv.models.dropout import MaskedDropout
from gradinv.models.placement import check_placement


class CNN(nn.Module):
    """(Conv 5x5, GELU, MaxPool 2[, dropout]) x 2, Linear to ``hidden``, GELU, dropout, head."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        dropout: float = 0.0,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 256,
        dropout_placement: str = "classifier",
    ) -> None:
        super().__init__()
        spatial = check_placement(dropout_placement)
        in_channels, size, _ = input_shape
        c1, c2 = channels
        layers: list[nn.Module] = []
        for c_in, c_out in ((in_channels, c1), (c1, c2)):
            layers += [nn.Conv2d(c_in, c_out, 5, padding=2), nn.GELU(), nn.MaxPool2d(2)]
            layers += [MaskedDropout(dropout)] if spatial else []
        layers += [
            nn.Flatten(),
            nn.Linear(c2 * (size // 4) ** 2, hidden),
            nn.GELU(),
            MaskedDropout(dropout),
        ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.head(self.features(x))
