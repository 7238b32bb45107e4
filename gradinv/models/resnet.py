"""ResNet-18 from torchvision with a stem fitted to the input size and dropout before the head.

With ``dropout_placement=spatial`` dropout also follows stages 1, 2 and 3
(``gradinv.models.placement``).
"""

from __future__ import annotations

from torch import nn
from torchvision.models import resnet18

from gradinv.models.dropout import MaskedDropout
from gradinv.models.placement import check_placement


class ResNet18(nn.Module):
    """torchvision's ResNet-18; CIFAR-style stem (3x3 conv, no max-pool) below ``small_input``."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        dropout: float = 0.0,
        small_input: int = 64,
        dropout_placement: str = "classifier",
    ) -> None:
        super().__init__()
        spatial = check_placement(dropout_placement)
        in_channels, size, _ = input_shape
        net = resnet18(weights=None, num_classes=num_classes)
        if size < small_input:
            net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        stages: list[nn.Module] = []
        for stage in (net.layer1, net.layer2, net.layer3):
            stages += [stage, MaskedDropout(dropout)] if spatial else [stage]
        self.features = nn.Sequential(
            net.conv1,
            net.bn1,
            net.relu,
            net.maxpool,
            *stages,
            net.layer4,
            net.avgpool,
            nn.Flatten(),
            MaskedDropout(dropout),
        )
        self.head = net.fc

    def forward(self, x):
        return self.head(self.features(x))
