"""The line between what a client shares and what stays private (only evaluation reads that)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch


@dataclass(frozen=True)
class LocalTraining:
    """The client's local procedure as the server knows it: steps, step size, batches, order.

    ``order`` lists, per epoch, the permutation of the batch the client walked through (None:
    the images' own order in every epoch).
    """

    steps: int
    lr: float
    batch_size: int
    order: tuple[tuple[int, ...], ...] | None = None

    def rows(self, step: int, total: int, device: torch.device) -> slice | torch.Tensor:
        """The rows of the private batch that local step ``step`` trains on: a slice in the
        images' own order, else an index tensor made once per device, so that no step copies
        from the host (a step replays inside a CUDA graph)."""
        per_epoch = total // self.batch_size
        epoch, start = divmod(step, per_epoch)
        first = start * self.batch_size
        if self.order is None:
            return slice(first, first + self.batch_size)
        return _index(self.order[epoch][first : first + self.batch_size], device)


@lru_cache(maxsize=1024)
def _index(rows: tuple[int, ...], device: torch.device) -> torch.Tensor:
    return torch.tensor(rows, device=device)


@dataclass(frozen=True)
class SharedUpdate:
    """What leaves the client: named gradients, the batch size, and what the threat model grants.

    ``masks`` are the dropout masks and ``samples`` the other stochastic layers' draws (PRECODE's
    Gaussian sample), each keyed by the buffer that replays it (``stepN.`` first under FedAvg);
    present only when granted. ``local`` is the FedAvg procedure the server knows (None for
    FedSGD, whose ``gradients`` are the gradient itself; FedAvg's are ``theta_0 - theta_T``).
    """

    gradients: dict[str, torch.Tensor]
    batch_size: int
    labels: torch.Tensor | None = None
    masks: dict[str, torch.Tensor] | None = None
    samples: dict[str, torch.Tensor] | None = None
    local: LocalTraining | None = None


@dataclass(frozen=True)
class PrivateRecord:
    """The client's ground truth for one round: images, labels, dropout masks, other draws and,
    for a shuffling FedAvg client, the order of each epoch."""

    images: torch.Tensor
    labels: torch.Tensor
    masks: dict[str, torch.Tensor]
    indices: tuple[int, ...]
    samples: dict[str, torch.Tensor] = field(default_factory=dict)
    order: tuple[tuple[int, ...], ...] | None = None
