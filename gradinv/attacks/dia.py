"""Dropout Inversion Attack (Scheliga, Mäder, Seeland, AAAI 2023): learn the dropout masks too.

The client's gradient was computed under dropout masks the attacker does not know. DIA gives
every active dropout site a continuous mask shaped like its activation (batch included; one
per local step against a FedAvg client, whose masks are drawn anew at every step),
drawn from Bernoulli(1 - p), optimizes it jointly with the images by the same Adam, clips it
to [0, 1] after each step and pulls its drop rate towards p (the ``mask_rate`` regularizer
of conf/attack/dia.yaml). Sites with p = 0 get no mask, so with p = 0 DIA is IG.
"""

from __future__ import annotations

from typing import Any

import torch

from gradinv.attacks.base import ServerView
from gradinv.attacks.gradient_inversion import GradientInversion, Problem, Variables
from gradinv.attacks.variables import DropoutMask
from gradinv.errors import ConfigError
from gradinv.federated.randomness import round_randomness
from gradinv.models.dropout import active_sites


class DropoutInversion(GradientInversion):
    """IG plus one learnable mask per active dropout site."""

    def __init__(self, mask_lr: float | None, mask_init: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mask_lr is not None and not mask_lr > 0:
            raise ConfigError(
                f"attack.mask_lr must be positive or null (the images' lr), got {mask_lr}."
            )
        if mask_init not in ("bernoulli", "keep_rate"):
            raise ConfigError(
                f"attack.mask_init must be 'bernoulli' or 'keep_rate', got '{mask_init}'."
            )
        self.mask_lr = mask_lr
        self.mask_init = mask_init

    def knowledge(self) -> dict[str, Any]:
        return {**super().knowledge(), "masks_known": False}

    def init_variables(
        self, problem: Problem, server: ServerView, generator: torch.Generator
    ) -> Variables:
        """A Bernoulli(1 - p) draw (or 1 - p everywhere) per active site, shaped like its activation."""
        draws = round_randomness(
            server.model, problem.update, server.spec.shape, active_sites(server.model)
        )
        variables = {}
        for key, (site, shape) in draws.items():
            if self.mask_init == "keep_rate":
                start = torch.full(shape, 1 - site.p)
            else:
                start = site.draw(shape, torch.empty(0), generator)
            variables[key] = DropoutMask(start, self.mask_lr, (0.0, 1.0), key, site.p)
        return variables
