"""Randomness for the layers that sample on the attacker's side too (PRECODE's bottleneck).

Such a layer draws in every mode, so the attacker's forward needs a draw per step: fresh from
the problem's own generator (the client's draw is unknown), or the client's recorded draw when
the threat model grants it (``attack.samples_known``). Under FedAvg every local step draws its
own. One ``LayerSamples`` belongs to one problem, so vectorized and one-by-one runs draw the
same values.
"""

from __future__ import annotations

import torch
from torch import nn

from gradinv.errors import ConfigError
from gradinv.federated.local_update import round_randomness
from gradinv.federated.update import SharedUpdate
from gradinv.models.stochastic import stochastic_layers

Tensors = dict[str, torch.Tensor]


class LayerSamples:
    """One problem's draws for the model's always-sampling layers, keyed by buffer name."""

    def __init__(
        self, model: nn.Module, update: SharedUpdate, sample_shape: tuple[int, ...], seed: int, known: bool
    ) -> None:
        layers = {n: m for n, m in stochastic_layers(model).items() if m.samples_in_eval}
        self.layers = round_randomness(model, update, sample_shape, layers)
        granted = update.samples
        if known and self.layers and granted is None:
            raise ConfigError(
                "threat.samples=true needs a client that shares its samples "
                "(client.share_samples=true)."
            )
        self.granted = granted if known else None
        self.seed = seed
        self.generator: torch.Generator | None = None

    @property
    def layout(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """The draws' keys and shapes (problems with equal layouts can be stacked)."""
        return tuple((key, tuple(shape)) for key, (_, shape) in self.layers.items())

    def start(self, device: torch.device) -> None:
        """Seed the problem's generator on the device the attack runs on."""
        self.generator = torch.Generator(device=device).manual_seed(self.seed)

    def draw(self, like: torch.Tensor) -> Tensors:
        """This step's draws, on ``like``'s device and dtype."""
        if self.granted is not None:
            return {key: self.granted[key].to(like.device) for key in self.layers}
        return {key: layer.draw(shape, like, self.generator) for key, (layer, shape) in self.layers.items()}
