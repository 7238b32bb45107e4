"""The keys of a round's randomness: one set per local step under FedAvg.

Every draw of a stochastic layer (a dropout mask, PRECODE's sample) is keyed by the buffer that
replays it, e.g. ``features.3.mask``; a FedAvg client draws anew at every local step, so its
keys carry the step first (``step0.features.3.mask``). The client records its draws under these
keys, and every attacker that learns, replays or draws them uses the same ones.
"""

from __future__ import annotations

import torch
from torch import nn

from gradinv.federated.update import LocalTraining, SharedUpdate
from gradinv.models.stochastic import StochasticLayer, randomness_key, randomness_shapes
from gradinv.tensors import Tensors

STEP = "step{}."  # the prefix of a local step's randomness keys: 'step0.features.3.mask'


def step_key(step: int, key: str) -> str:
    """The key of a randomness buffer ``key`` at local step ``step``."""
    return STEP.format(step) + key


def unstepped(key: str) -> str:
    """A randomness key without its local-step prefix (FedSGD keys have none)."""
    if key.startswith("step"):
        head, _, rest = key.partition(".")
        if head[4:].isdigit():
            return rest
    return key


def step_buffers(buffers: Tensors, step: int) -> Tensors:
    """The buffers of local step ``step``, with their step prefix removed."""
    prefix = STEP.format(step)
    return {k[len(prefix) :]: v for k, v in buffers.items() if k.startswith(prefix)}


def stepped(shapes: dict[str, torch.Size], training: LocalTraining | None) -> dict[str, torch.Size]:
    """Per-step copies of randomness ``shapes`` (taken at the local batch size) for FedAvg."""
    if training is None:
        return shapes
    return {step_key(t, k): s for t in range(training.steps) for k, s in shapes.items()}


def local_input_shape(update: SharedUpdate, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The input shape of one forward pass of the client's round: a local batch under FedAvg
    (``update.local``), the whole batch under FedSGD."""
    rows = update.batch_size if update.local is None else update.local.batch_size
    return (rows, *sample_shape)


def round_randomness(
    model: nn.Module,
    update: SharedUpdate,
    sample_shape: tuple[int, ...],
    layers: dict[str, StochasticLayer],
) -> dict[str, tuple[StochasticLayer, torch.Size]]:
    """The draws one round of the client makes in ``layers``: per buffer key (step-prefixed under
    FedAvg, one per local step) the layer that draws it and its shape."""
    if not layers:
        return {}
    shapes = randomness_shapes(model, local_input_shape(update, sample_shape), layers)
    by_key = {randomness_key(name, layer): layer for name, layer in layers.items()}
    return {
        key: (by_key[unstepped(key)], shape) for key, shape in stepped(shapes, update.local).items()
    }
