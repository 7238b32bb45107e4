"""Update-side defenses: Gaussian noise (with optional clipping) and magnitude pruning."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from gradinv.defenses.base import Defense
from gradinv.errors import ConfigError

Gradients = dict[str, torch.Tensor]


def check_sigma(sigma: float) -> float:
    """Noise scales are non-negative numbers."""
    if not isinstance(sigma, (int, float)) or sigma < 0:
        raise ConfigError(f"defense.sigma must be a non-negative number, got {sigma}.")
    return float(sigma)


def add_noise(gradients: Gradients, names: Iterable[str], sigma: float) -> Gradients:
    """Add N(0, sigma^2) to the named gradients; the rest pass unchanged. The noise comes from
    torch's global CPU generator, so a seed gives the same update on every device."""
    noisy = set(names)
    return {
        k: g + sigma * torch.randn(g.shape, dtype=g.dtype).to(g.device) if k in noisy else g
        for k, g in gradients.items()
    }


def clip_update(gradients: Gradients, clip: float) -> Gradients:
    """Scale the whole update down to L2 norm ``clip`` if it is longer (DP-SGD style)."""
    norm = torch.sqrt(sum(g.pow(2).sum() for g in gradients.values()))
    factor = torch.clamp(clip / (norm + 1e-12), max=1.0)
    return {k: g * factor for k, g in gradients.items()}


class GaussianNoise(Defense):
    """Clip the whole update to ``clip`` (if set), then add Gaussian noise of std ``sigma``.

    ``sigma`` is the absolute std of the noise per entry (not DP-SGD's multiple of ``clip``).
    """

    perturbs_update = True

    def __init__(self, sigma: float = 1e-2, clip: float | None = None) -> None:
        if clip is not None and not clip > 0:
            raise ConfigError(f"defense.clip must be positive or null, got {clip}.")
        self.sigma = check_sigma(sigma)
        self.clip = clip

    def protect(self, gradients: Gradients, model: nn.Module) -> Gradients:
        if self.clip is not None:
            gradients = clip_update(gradients, self.clip)
        return add_noise(gradients, gradients, self.sigma)


class Prune(Defense):
    """Zero the fraction ``ratio`` of smallest-magnitude entries of each gradient tensor."""

    perturbs_update = True

    def __init__(self, ratio: float = 0.9) -> None:
        if not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
            raise ConfigError(f"defense.ratio must be a number in [0, 1], got {ratio}.")
        self.ratio = float(ratio)

    def protect(self, gradients: Gradients, model: nn.Module) -> Gradients:
        return {k: _prune(g, self.ratio) for k, g in gradients.items()}


def _prune(gradient: torch.Tensor, ratio: float) -> torch.Tensor:
    """Exactly floor(ratio * numel) entries, the smallest in magnitude, set to zero."""
    count = int(ratio * gradient.numel())
    flat = gradient.flatten().clone()
    flat[flat.abs().argsort()[:count]] = 0
    return flat.view_as(gradient)
