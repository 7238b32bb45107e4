"""DLG's LeNet (Zhu, Liu & Han, NeurIPS 2019), as in the authors' ``models/vision.py``.

Three 5x5 convolutions of 12 channels with padding 2 and strides 2, 2, 1, a sigmoid after each,
and a linear head on the flattened maps (768 inputs at 32 px, 588 at 28 px). Weights and biases
are drawn from U(-0.5, 0.5), the authors' ``weights_init``. Their LeNet has no dropout; gradinv
puts a dropout site after each sigmoid (3), inactive at the default p = 0.
"""

from __future__ import annotations

from torch import nn

from gradinv.models.dropout import MaskedDropout

#: Strides of the three 5x5, padding-2 convolutions and their channels, as in the authors' code.
STRIDES = (2, 2, 1)
WIDTH = 12


class LeNet(nn.Module):
    """Three (conv 5x5, sigmoid, dropout) blocks, flatten, linear head; U(-0.5, 0.5) weights."""

    def __init__(
        self, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        channels, size, _ = input_shape
        layers: list[nn.Module] = []
        for stride in STRIDES:
            layers += [
                nn.Conv2d(channels, WIDTH, 5, stride, padding=2),
                nn.Sigmoid(),
                MaskedDropout(dropout),
            ]
            channels, size = WIDTH, (size - 1) // stride + 1
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(WIDTH * size * size, num_classes)
        self.apply(_uniform_init)

    def forward(self, x):
        return self.head(self.features(x))


def _uniform_init(module: nn.Module) -> None:
    """The authors' ``weights_init``: every weight and bias from U(-0.5, 0.5)."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.uniform_(module.weight, -0.5, 0.5)
        nn.init.uniform_(module.bias, -0.5, 0.5)
