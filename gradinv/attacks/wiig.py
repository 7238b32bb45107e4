"""The well-informed IG baseline (WIIG) of Scheliga et al. (AAAI 2023): IG told the true masks.

WIIG runs in DIA's setting, but instead of learning the dropout masks it replays the ones the
client sampled. The threat model grants them only with ``threat.masks=true`` (``threat=masks``,
which ``attack=wiig`` selects; the client then shares them). It is the upper bound of what DIA
can reach.
"""

from __future__ import annotations

from typing import Any

from gradinv.attacks.gradient_inversion import GradientInversion, Problem
from gradinv.errors import ConfigError
from gradinv.tensors import Tensors


class WellInformedIG(GradientInversion):
    """DIA's optimization over the images only, the forward pass using the client's true masks."""

    def __init__(self, masks_known: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if masks_known is not True:
            raise ConfigError(
                "threat.masks must be true for attack=wiig (its threat=masks grants it): "
                "WIIG is IG told the masks."
            )

    def knowledge(self) -> dict[str, Any]:
        return {**super().knowledge(), "masks_known": True}

    def buffers(self, problem: Problem) -> Tensors:
        """The client's recorded masks, replayed in every forward pass."""
        if problem.update.masks is None:
            raise ConfigError(
                "attack=wiig needs a client that shares its masks (client.share_masks=true)."
            )
        return problem.update.masks
