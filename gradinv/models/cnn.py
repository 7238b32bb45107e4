"""A small ConvNet in the LeNet tradition: two conv blocks, a hidden linear layer, a head."""

from __future__ import annotations

from torch import nn

from gradinv.models.dropout import MaskedDropout


class CNN(nn.Module):
    """(Conv 5x5, GELU, MaxPool 2, dropout) x 2, Linear to ``hidden``, GELU, dropout, head."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        dropout: float = 0.0,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 256,
    ) -> None:
        super().__init__()
        in_channels, size, _ = input_shape
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=2), nn.GELU(), nn.MaxPool2d(2),
            MaskedDropout(dropout),
            nn.Conv2d(c1, c2, 5, padding=2), nn.GELU(), nn.MaxPool2d(2),
            MaskedDropout(dropout),
            nn.Flatten(),
            nn.Linear(c2 * (size // 4) ** 2, hidden), nn.GELU(),
            MaskedDropout(dropout),
        )
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.head(self.features(x))
