"""How the optimization loop steps every problem: Adam, its schedule, box, best iterate, stopping.

These are the loop's own settings; an attack passes them through unchanged (the YAML's flat
optimization fields) and shapes only what is optimized and penalized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from gradinv.errors import ConfigError

SCHEDULES = ("multistep", "plateau", "constant")


@dataclass(frozen=True)
class Optimization:
    """Adam on the candidates (signed image gradients), a step schedule, a box, early stopping."""

    iterations: int = 300
    lr: float = 0.1
    lr_schedule: str = "multistep"
    lr_decay_at: Sequence[float] = (0.375, 0.625, 0.875)
    lr_decay_factor: float = 0.1
    plateau_patience: int = 800
    signed: bool = True
    boxed: bool = True
    keep_best: bool = False
    stop_patience: int | None = None
    stop_loss: float | None = None
    vectorize: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.iterations, int) or self.iterations < 1:
            raise ConfigError(f"attack.iterations must be a positive integer, got {self.iterations}.")
        if not self.lr > 0:
            raise ConfigError(f"attack.lr must be positive, got {self.lr}.")
        if self.lr_schedule not in SCHEDULES:
            raise ConfigError(
                f"attack.lr_schedule must be 'multistep', 'plateau' or 'constant', got '{self.lr_schedule}'."
            )
        if not all(0 < f < 1 for f in self.lr_decay_at):
            raise ConfigError(
                "attack.lr_decay_at must list fractions of the iterations in (0, 1), "
                f"got {list(self.lr_decay_at)}."
            )

    def scheduler(self, optimizer: torch.optim.Optimizer):
        """The step-size schedule of one problem's optimizer (None for a constant step)."""
        if self.lr_schedule == "multistep":
            milestones = sorted({math.floor(f * self.iterations) for f in self.lr_decay_at})
            return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, self.lr_decay_factor)
        if self.lr_schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=self.lr_decay_factor, patience=self.plateau_patience
            )
        return None

    def should_stop(self, since_best: int, loss: float) -> bool:
        """Whether a problem is done: no improvement for ``stop_patience`` steps, or converged."""
        return (self.stop_patience is not None and since_best >= self.stop_patience) or (
            self.stop_loss is not None and loss < self.stop_loss
        )
