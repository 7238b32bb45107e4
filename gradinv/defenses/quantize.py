"""Low-precision updates, a defense DLG (Zhu et al. 2019, Sec. 6) tested and found not to help.

The client rounds each shared gradient tensor to a coarser number format: IEEE half precision
(``float16``), bfloat16, or 8-bit integers with one symmetric scale per tensor (``int8``: the
largest magnitude maps to 127), and shares the values the receiver decodes.
"""

from __future__ import annotations

import torch
from torch import nn

from gradinv.defenses.base import Defense
from gradinv.errors import ConfigError

PRECISIONS = ("float16", "bfloat16", "int8")


class Quantize(Defense):
    """Round every shared gradient tensor to ``precision``."""

    perturbs_update = True

    def __init__(self, precision: str = "float16") -> None:
        if precision not in PRECISIONS:
            raise ConfigError(
                f"defense.precision must be 'float16', 'bfloat16' or 'int8', got '{precision}'."
            )
        self.precision = precision

    def protect(
        self, gradients: dict[str, torch.Tensor], model: nn.Module
    ) -> dict[str, torch.Tensor]:
        return {k: self._round(g) for k, g in gradients.items()}

    def _round(self, gradient: torch.Tensor) -> torch.Tensor:
        if self.precision != "int8":
            return gradient.to(getattr(torch, self.precision)).to(gradient.dtype)
        scale = gradient.abs().max().clamp_min(torch.finfo(gradient.dtype).tiny) / 127
        return torch.round(gradient / scale).clamp(-127, 127) * scale
