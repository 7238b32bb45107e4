"""How every problem of an optimization attack is stepped: the ``optim`` block of an attack's YAML.

One set of values, ``conf/attack/ig.yaml``'s ``optim`` block (the DIA authors' setting, which
dia and wiig inherit); other attacks and the paper experiments override only what differs. The
code holds no defaults of its own, so the YAML is the only place a default is written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gradinv.errors import ConfigError
from gradinv.typecheck import positive_int

SCHEDULES = ("multistep", "plateau", "constant")
OPTIMIZERS = ("adam", "lbfgs")
#: ``torch.optim.lr_scheduler.ReduceLROnPlateau``'s defaults, which the attacks use.
PLATEAU_THRESHOLD = 1e-4  # relative improvement that counts as better (mode 'min', 'rel')
PLATEAU_EPS = 1e-8  # a decay smaller than this is not applied
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class Optimization:
    """Adam on signed image gradients (or L-BFGS), a step-size schedule, a box, early stopping.

    ``adam`` is torch's Adam with its defaults, one step size per tensor group (images; each
    distinct ``Variable.lr``); ``lbfgs`` is torch's L-BFGS with its defaults (up to 20
    evaluations per step, no line search), as DLG's authors run it: it steps each problem alone
    and takes one step size for all of a problem's tensors. ``schedule`` is torch's MultiStepLR
    (decay by ``decay_factor`` at the fractions ``decay_at`` of the iterations),
    ReduceLROnPlateau (decay after ``plateau_patience`` steps without improvement) or constant.
    ``keep_best`` returns the lowest-loss iterate; a problem stops after ``stop_patience`` steps
    without improvement or below ``stop_loss`` (null: never).
    """

    iterations: int
    optimizer: str
    lr: float
    schedule: str
    decay_at: Sequence[float]
    decay_factor: float
    plateau_patience: int
    signed: bool
    boxed: bool
    keep_best: bool
    stop_patience: int | None
    stop_loss: float | None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"attack.optim.optimizer must be 'adam' or 'lbfgs', got '{self.optimizer}'."
            )
        if self.optimizer == "lbfgs" and self.signed:
            raise ConfigError(
                "attack.optim.signed must be false with attack.optim.optimizer=lbfgs (L-BFGS needs the true gradient)."
            )
        if not positive_int(self.iterations):
            raise ConfigError(
                f"attack.optim.iterations must be a positive integer, got {self.iterations}."
            )
        if not self.lr > 0:
            raise ConfigError(f"attack.optim.lr must be positive, got {self.lr}.")
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"attack.optim.schedule must be 'multistep', 'plateau' or 'constant', got '{self.schedule}'."
            )
        if not all(0 < f < 1 for f in self.decay_at):
            raise ConfigError(
                "attack.optim.decay_at must list fractions of the iterations in (0, 1), "
                f"got {list(self.decay_at)}."
            )
        if not 0 < self.decay_factor < 1:
            raise ConfigError(
                f"attack.optim.decay_factor must lie in (0, 1), got {self.decay_factor}."
            )
        if not positive_int(self.plateau_patience) and self.plateau_patience != 0:
            raise ConfigError(
                f"attack.optim.plateau_patience must be a non-negative integer, got {self.plateau_patience}."
            )
        if self.stop_patience is not None and not positive_int(self.stop_patience):
            raise ConfigError(
                f"attack.optim.stop_patience must be a positive integer or null, got {self.stop_patience}."
            )

    @property
    def milestones(self) -> list[int]:
        """The steps after which a multistep schedule decays, as torch's MultiStepLR counts them."""
        return sorted({math.floor(f * self.iterations) for f in self.decay_at})

    def torch_scheduler(self, optimizer: torch.optim.Optimizer):
        """The schedule as a torch scheduler of ``optimizer`` (None for a constant step): what
        L-BFGS steps with, and the reference the stacked schedule is tested against."""
        if self.schedule == "multistep":
            return torch.optim.lr_scheduler.MultiStepLR(
                optimizer, self.milestones, self.decay_factor
            )
        if self.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                factor=self.decay_factor,
                patience=self.plateau_patience,
                threshold=PLATEAU_THRESHOLD,
                eps=PLATEAU_EPS,
            )
        return None
