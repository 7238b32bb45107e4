"""How the optimization loop steps every problem: optimizer, schedule, box, best iterate, stopping.

These are the loop's own settings; an attack passes them through unchanged (the YAML's flat
optimization fields) and shapes only what is optimized and penalized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from gradinv.attacks.variables import Variable
from gradinv.errors import ConfigError

SCHEDULES = ("multistep", "plateau", "constant")
OPTIMIZERS = ("adam", "lbfgs")


@dataclass(frozen=True)
class Optimization:
    """Adam (signed image gradients) or L-BFGS on the candidates, a step schedule, a box, early stopping.

    ``lbfgs`` is torch's L-BFGS with its defaults (up to 20 evaluations per step, no line
    search), as DLG's authors run it; it steps each problem alone (its curvature memory and
    step lengths are per problem) and takes one step size for all of a problem's tensors.
    """

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
    optimizer: str = "adam"
    per_call: int | None = None  # problems per batched call; None: ``per_call``'s choice

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"attack.optimizer must be 'adam' or 'lbfgs', got '{self.optimizer}'.")
        if self.optimizer == "lbfgs" and self.signed:
            raise ConfigError("attack.signed must be false with attack.optimizer=lbfgs (L-BFGS needs the true gradient).")
        if not isinstance(self.iterations, int) or self.iterations < 1:
            raise ConfigError(f"attack.iterations must be a positive integer, got {self.iterations}.")
        if not self.lr > 0:
            raise ConfigError(f"attack.lr must be positive, got {self.lr}.")
        if self.per_call is not None and (
            isinstance(self.per_call, bool) or not isinstance(self.per_call, int) or self.per_call < 1
        ):
            raise ConfigError(f"attack.per_call must be a positive integer or null (automatic), got {self.per_call}.")
        if self.lr_schedule not in SCHEDULES:
            raise ConfigError(
                f"attack.lr_schedule must be 'multistep', 'plateau' or 'constant', got '{self.lr_schedule}'."
            )
        if not all(0 < f < 1 for f in self.lr_decay_at):
            raise ConfigError(
                "attack.lr_decay_at must list fractions of the iterations in (0, 1), "
                f"got {list(self.lr_decay_at)}."
            )

    def optimizer_for(self, images: torch.nn.Parameter, variables: list[Variable]) -> torch.optim.Optimizer:
        """One problem's optimizer over its images and learned variables (``Variable`` objects).

        Adam takes a parameter group per distinct variable step size; L-BFGS has one step size.
        """
        if self.optimizer == "lbfgs":
            if any(v.lr is not None for v in variables):
                raise ConfigError("attack.optimizer=lbfgs takes one step size (attack.lr) for every tensor.")
            return torch.optim.LBFGS([images, *(v.value for v in variables)], lr=self.lr)
        by_lr: dict[float, list[torch.nn.Parameter]] = {}
        for v in variables:
            by_lr.setdefault(v.lr or self.lr, []).append(v.value)
        groups = [{"params": [images], "lr": self.lr}]
        groups += [{"params": values, "lr": lr} for lr, values in by_lr.items()]
        return torch.optim.Adam(groups)

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
