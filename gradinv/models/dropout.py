"""The one dropout module of gradinv: it samples and records masks, or applies a given mask.

A mask is a tensor shaped like the activation (batch included) with 1 = kept. Kept units are
scaled by 1 / (1 - p), as in ``torch.nn.Dropout``. A given mask is supplied as the buffer
``<site>.mask``, e.g. through ``torch.func.functional_call``; it may be binary (replay of a
recorded mask) or continuous and differentiable (a mask the attacker learns). Without a given
mask, dropout is active in train mode only: an attacker that models no masks (IG) runs the
model in eval mode, as the DIA authors' ``attacker_train_mode: false``.
"""

from __future__ import annotations

import torch
from torch import nn

from gradinv.errors import ConfigError
from gradinv.models.random_stream import uniforms
from gradinv.models.stochastic import StochasticLayer
from gradinv.typecheck import matches


class MaskedDropout(StochasticLayer):
    """Inverted dropout whose masks can be recorded, replayed, or learned."""

    randomness = "mask"
    samples_in_eval = False

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = check_rate(p)

    @property
    def active(self) -> bool:
        return self.p > 0

    def randomness_shape(self, x: torch.Tensor) -> torch.Size:
        return x.shape

    def draw_cpu(
        self, shape: torch.Size, dtype: torch.dtype, generator: torch.Generator | None
    ) -> torch.Tensor:
        return torch.empty(shape, dtype=dtype).bernoulli_(1 - self.p, generator=generator)

    def draw_counted(
        self,
        shape: torch.Size,
        seeds: torch.Tensor,
        counters: torch.Tensor,
        stream: int,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        kept = uniforms(seeds, counters, stream, shape.numel()) < 1 - self.p
        return kept.to(dtype).view(len(seeds), *shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.sample(x)
        return x if mask is None else x * mask / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def check_rate(p: float) -> float:
    """Dropout rates lie in [0, 1); anything else stops the run with the field's name."""
    if not (matches(p, float) and 0 <= p < 1):
        raise ConfigError(f"model.dropout must be a number in [0, 1), got {p}.")
    return float(p)


def dropout_sites(model: nn.Module) -> dict[str, MaskedDropout]:
    """Every dropout site of a model by its module name, in forward-definition order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, MaskedDropout)}


def active_sites(model: nn.Module) -> dict[str, MaskedDropout]:
    """The dropout sites that drop anything (p > 0)."""
    return {name: m for name, m in dropout_sites(model).items() if m.p > 0}


def mask_key(site: str) -> str:
    """The buffer name under which a site's mask is supplied to ``functional_call``."""
    return f"{site}.{MaskedDropout.randomness}"
