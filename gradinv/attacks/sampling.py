"""Randomness for the layers that sample on the attacker's side too (PRECODE's bottleneck).

Such a layer draws in every mode, so the attacker's forward needs a draw per step: fresh (the
client's draw is unknown), or the client's recorded draw when the threat model grants it
(``attack.samples_known``). Under FedAvg every local step draws its own. A fresh draw is a
function of the problem's seed, its step and the draw's stream (``draw_counted``, the
counter-based stream of ``gradinv.models.random_stream``): the same on every device and for any
grouping of problems, and replayable inside a CUDA graph.
"""

from __future__ import annotations

import torch
from torch import nn

from gradinv.errors import ConfigError
from gradinv.federated.randomness import round_randomness
from gradinv.federated.update import SharedUpdate
from gradinv.models.stochastic import stochastic_layers
from gradinv.tensors import Tensors


class LayerSamples:
    """One problem's draws for the model's always-sampling layers, keyed by buffer name."""

    def __init__(
        self,
        model: nn.Module,
        update: SharedUpdate,
        sample_shape: tuple[int, ...],
        seed: int,
        known: bool,
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

    @property
    def layout(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """The draws' keys and shapes (problems with equal layouts can be stacked)."""
        return tuple((key, tuple(shape)) for key, (_, shape) in self.layers.items())


class StackedSamples:
    """The draws of a group of problems with one layout, stacked along a leading problem axis."""

    def __init__(
        self, samples: list[LayerSamples], device: torch.device, dtype: torch.dtype
    ) -> None:
        if len({s.layout for s in samples}) != 1:
            raise ValueError("stacked problems must draw the same layers and shapes")
        self.layers = samples[0].layers
        self.streams = {key: stream for stream, key in enumerate(sorted(self.layers))}
        self.seeds = torch.tensor([s.seed for s in samples], dtype=torch.int64, device=device)
        self.dtype = dtype
        self.granted = None
        if self.layers and samples[0].granted is not None:
            self.granted = {
                key: torch.stack([s.granted[key] for s in samples]).to(device, dtype)
                for key in self.layers
            }

    def draw(self, counters: torch.Tensor, rows: slice = slice(None)) -> Tensors:
        """The draws of problems ``rows`` at their step ``counters`` (one per problem in ``rows``)."""
        if self.granted is not None:
            return {key: value[rows] for key, value in self.granted.items()}
        seeds = self.seeds[rows]
        return {
            key: layer.draw_counted(
                torch.Size(shape), seeds, counters, self.streams[key], self.dtype
            )
            for key, (layer, shape) in self.layers.items()
        }
