"""The one dropout module of gradinv: it samples and records masks, or applies a given mask.

A mask is a tensor shaped like the activation (batch included) with 1 = kept. Kept units are
scaled by 1 / (1 - p), as in ``torch.nn.Dropout``. A given mask is supplied as the buffer
``<site>.mask``, e.g. through ``torch.func.functional_call``; it may be binary (replay of a
recorded mask) or continuous and differentiable (a mask the attacker learns).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from gradinv.errors import ConfigError


class MaskedDropout(nn.Module):
    """Inverted dropout whose masks can be recorded, replayed, or learned."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = check_rate(p)
        self.record = False
        self.last_mask: torch.Tensor | None = None
        self.register_buffer("mask", None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask is not None:
            return x * self.mask / (1 - self.p)
        if not self.training or self.p == 0:
            return x
        mask = torch.empty_like(x).bernoulli_(1 - self.p)
        if self.record:
            self.last_mask = mask
        return x * mask / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def check_rate(p: float) -> float:
    """Dropout rates lie in [0, 1); anything else stops the run with the field's name."""
    if not isinstance(p, (int, float)) or not 0 <= p < 1:
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
    return f"{site}.mask"


@contextmanager
def recording_masks(model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Record the masks sampled during the enclosed forward pass, keyed by ``mask_key``."""
    sites = active_sites(model)
    masks: dict[str, torch.Tensor] = {}
    for site in sites.values():
        site.record, site.last_mask = True, None
    try:
        yield masks
    finally:
        for name, site in sites.items():
            if site.last_mask is not None:
                masks[mask_key(name)] = site.last_mask
            site.record, site.last_mask = False, None
