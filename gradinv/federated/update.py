"""The line between what a client shares and what stays private (only evaluation reads that)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class SharedUpdate:
    """What leaves the client: named gradients, the batch size, and what the threat model grants.

    ``masks`` are the dropout masks and ``samples`` the other stochastic layers' draws (PRECODE's
    Gaussian sample), each keyed by the buffer that replays it; present only when granted.
    """

    gradients: dict[str, torch.Tensor]
    batch_size: int
    labels: torch.Tensor | None = None
    masks: dict[str, torch.Tensor] | None = None
    samples: dict[str, torch.Tensor] | None = None


@dataclass(frozen=True)
class PrivateRecord:
    """The client's ground truth for one round: images, labels, dropout masks and other draws."""

    images: torch.Tensor
    labels: torch.Tensor
    masks: dict[str, torch.Tensor]
    indices: tuple[int, ...]
    samples: dict[str, torch.Tensor] = field(default_factory=dict)
