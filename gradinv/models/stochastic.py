"""Layers whose randomness the client records and an attacker may supply (dropout, PRECODE).

A stochastic layer keeps its randomness apart from its mode. Its randomness is a tensor (a
dropout mask, a bottleneck's Gaussian sample) that the layer draws itself, or that the caller
supplies as the buffer ``<layer>.<randomness>`` (e.g. through ``torch.func.functional_call``):
a supplied tensor is used in every mode, so a client's draws replay exactly and an attacker
can learn or sample them outside the model. Without one, ``samples_in_eval`` says whether the
layer still draws in eval mode (PRECODE's bottleneck, as its authors' always samples) or is
switched off there (dropout, as ``torch.nn.Dropout``).

Draws are device-independent: a layer's own draws come from torch's CPU generator and move to
the activation's device (a run with the same seed draws the same masks and samples on a CPU
and a GPU), and an attacker's per-step draws come from the counter-based stream
(``gradinv.models.random_stream``) through ``draw_counted``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import torch
from torch import nn

from gradinv.models.tracing import first_inputs


class StochasticLayer(nn.Module):
    """Base class: draws, records, or takes its randomness from the buffer ``randomness``."""

    #: Name of the buffer through which randomness is supplied ("mask", "noise").
    randomness: ClassVar[str]
    #: Whether the layer draws its randomness in eval mode when none is supplied.
    samples_in_eval: ClassVar[bool]

    def __init__(self) -> None:
        super().__init__()
        self.record = False
        self.last: torch.Tensor | None = None
        self.register_buffer(self.randomness, None, persistent=False)

    @property
    def active(self) -> bool:
        """Whether the layer has any randomness at all (dropout with p = 0 has none)."""
        return True

    def randomness_shape(self, x: torch.Tensor) -> torch.Size:
        """The shape of the randomness this layer needs for input ``x``."""
        raise NotImplementedError

    def draw(
        self, shape: torch.Size, like: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A fresh draw of the randomness from a CPU ``generator`` (torch's default one if None),
        with the dtype and device of ``like``."""
        return self.draw_cpu(shape, like.dtype, generator).to(like.device)

    def draw_cpu(
        self, shape: torch.Size, dtype: torch.dtype, generator: torch.Generator | None
    ) -> torch.Tensor:
        """A fresh draw on the CPU: the layer's distribution."""
        raise NotImplementedError

    def draw_counted(
        self,
        shape: torch.Size,
        seeds: torch.Tensor,
        counters: torch.Tensor,
        stream: int,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        """One draw per problem, shaped (problems, *shape), from the counter-based stream at
        ``seeds`` (int64 per problem), ``counters`` (the problems' steps) and ``stream``."""
        raise NotImplementedError

    def sample(self, x: torch.Tensor) -> torch.Tensor | None:
        """This forward pass's randomness: supplied, freshly drawn (and recorded), or None (off)."""
        given = getattr(self, self.randomness)
        if given is not None:
            return given
        if not self.active or not (self.training or self.samples_in_eval):
            return None
        drawn = self.draw(self.randomness_shape(x), x)
        if self.record:
            self.last = drawn
        return drawn


def stochastic_layers(model: nn.Module) -> dict[str, StochasticLayer]:
    """Every stochastic layer with randomness (p > 0 for dropout), by module name."""
    return {
        name: m for name, m in model.named_modules() if isinstance(m, StochasticLayer) and m.active
    }


def randomness_key(name: str, layer: StochasticLayer) -> str:
    """The buffer key under which ``layer``'s randomness is supplied to ``functional_call``."""
    return f"{name}.{layer.randomness}"


@contextmanager
def recording_randomness(model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Record every draw made during the enclosed forward pass, keyed by ``randomness_key``."""
    layers = stochastic_layers(model)
    drawn: dict[str, torch.Tensor] = {}
    for layer in layers.values():
        layer.record, layer.last = True, None
    try:
        yield drawn
    finally:
        for name, layer in layers.items():
            if layer.last is not None:
                drawn[randomness_key(name, layer)] = layer.last
            layer.record, layer.last = False, None


def randomness_shapes(
    model: nn.Module, input_shape: tuple[int, ...], layers: dict[str, StochasticLayer]
) -> dict[str, torch.Size]:
    """The randomness shape of each of ``layers`` for a batch of ``input_shape``, by key."""
    parameter = next(model.parameters())
    zeros = torch.zeros(input_shape, dtype=parameter.dtype, device=parameter.device)
    inputs = first_inputs(model, layers, lambda: model(zeros))
    return {
        randomness_key(name, layer): layer.randomness_shape(inputs[name])
        for name, layer in layers.items()
    }
