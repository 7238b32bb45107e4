"""Dropout Inversion Attack (Scheliga, Mäder, Seeland, AAAI 2023): learn the dropout masks too.

The client's gradient was computed under dropout masks the attacker does not know. DIA gives
every active dropout site a continuous mask shaped like its activation (batch included),
drawn from Bernoulli(1 - p), optimizes it jointly with the images by the same Adam, clips it
to [0, 1] after each step and pulls its drop rate towards p. Sites with p = 0 get no mask, so
with p = 0 DIA is IG.
"""

from __future__ import annotations

from typing import Any

import torch

from gradinv.attacks.base import ServerView
from gradinv.attacks.gradient_inversion import GradientInversion, Problem, Tensors
from gradinv.errors import ConfigError
from gradinv.models.dropout import active_sites, mask_key
from gradinv.models.stochastic import randomness_shapes


class DropoutInversion(GradientInversion):
    """IG plus one learnable mask per active dropout site, regularized towards the drop rate p."""

    def __init__(
        self,
        mask_weight: float = 1e-4,
        mask_lr: float | None = None,
        mask_init: str = "bernoulli",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mask_weight < 0:
            raise ConfigError(f"attack.mask_weight must be non-negative, got {mask_weight}.")
        if mask_lr is not None and not mask_lr > 0:
            raise ConfigError(f"attack.mask_lr must be positive or null (the images' lr), got {mask_lr}.")
        if mask_init not in ("bernoulli", "keep_rate"):
            raise ConfigError(f"attack.mask_init must be 'bernoulli' or 'keep_rate', got '{mask_init}'.")
        self.mask_weight = mask_weight
        self.mask_lr = mask_lr
        self.mask_init = mask_init
        self.rates: dict[str, float] = {}  # p per mask key, set with the masks (one server model)

    def knowledge(self) -> dict[str, Any]:
        return {**super().knowledge(), "masks_known": False}

    def init_variables(
        self, problem: Problem, server: ServerView, generator: torch.Generator
    ) -> Tensors:
        """A Bernoulli(1 - p) draw per active site, shaped like that site's activation."""
        sites = active_sites(server.model)
        if not sites:
            return {}
        shapes = randomness_shapes(server.model, (problem.update.batch_size, *server.spec.shape), sites)
        self.rates = {mask_key(name): site.p for name, site in sites.items()}
        if self.mask_init == "keep_rate":
            return {mask_key(n): torch.full(shapes[mask_key(n)], 1 - s.p) for n, s in sites.items()}
        empty = torch.empty(0)
        return {
            mask_key(name): site.draw(shapes[mask_key(name)], empty, generator)
            for name, site in sites.items()
        }

    def variable_lr(self) -> float:
        return self.lr if self.mask_lr is None else self.mask_lr

    def buffers(self, problem: Problem, variables: Tensors) -> Tensors:
        return variables

    def regularizer(self, images: torch.Tensor, variables: Tensors) -> torch.Tensor:
        """TV plus, per site, ``mask_weight * |(1 - mean(mask)) - p|``."""
        penalty = super().regularizer(images, variables)
        for key, mask in variables.items():
            penalty = penalty + self.mask_weight * (1 - mask.mean() - self.rates[key]).abs()
        return penalty

    def project(self, variables: Tensors) -> None:
        for mask in variables.values():
            mask.clamp_(0.0, 1.0)

