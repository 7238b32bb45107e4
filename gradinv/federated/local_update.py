"""FedAvg's local training, written once for the client and for every attacker that simulates it.

A FedAvg client takes ``steps`` SGD steps of step size ``lr`` on its private batch, each on the
next ``batch_size`` images of an epoch's order (the whole batch when ``batch_size`` is None),
and shares the weight difference ``theta_0 - theta_T`` (the sum of the steps, so one
full-batch step is ``lr`` times FedSGD's gradient). The attacker runs the same function on its
candidates with ``create_graph`` and the client's per-step randomness (learned, replayed or
drawn), so that at the client's true inputs and draws it reproduces the shared update exactly.
A defense that changes how the client computes each step (DP-SGD's clipped, noised gradients)
hands the client its own step; the attacker, who cannot know the noise, simulates plain steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import nn

from gradinv.errors import ConfigError
from gradinv.federated.gradients import StepGradients, step_gradients
from gradinv.models.stochastic import StochasticLayer, randomness_key, randomness_shapes
from gradinv.tensors import Tensors

if TYPE_CHECKING:
    from gradinv.federated.update import SharedUpdate

STEP = "step{}."  # the prefix of a local step's randomness keys: 'step0.features.3.mask'


@dataclass(frozen=True)
class LocalTraining:
    """The client's local procedure as the server knows it: steps, step size, batches, order.

    ``order`` lists, per epoch, the permutation of the batch the client walked through (None:
    the images' own order in every epoch).
    """

    steps: int
    lr: float
    batch_size: int
    order: tuple[tuple[int, ...], ...] | None = None

    def rows(self, step: int, total: int) -> list[int]:
        """The rows of the private batch that local step ``step`` trains on."""
        per_epoch = total // self.batch_size
        epoch, start = divmod(step, per_epoch)
        order = list(range(total)) if self.order is None else list(self.order[epoch])
        return order[start * self.batch_size : (start + 1) * self.batch_size]


def check_local_fields(steps: int, lr: float, batch_size: int | None) -> None:
    """Stop early on local-training fields that cannot work, whatever the batch."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"client.local_steps must be a positive integer, got {steps}.")
    if not lr > 0:
        raise ConfigError(f"client.local_lr must be positive, got {lr}.")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"client.local_batch_size must be a positive integer or null, got {batch_size}.")


def local_batch_size(batch_size: int | None, total: int) -> int:
    """The local batch size for a victim batch of ``total`` images, which it must divide."""
    size = total if batch_size is None else batch_size
    if total % size:
        raise ConfigError(
            f"client.local_batch_size={batch_size} must divide dataset.batch_size={total} "
            "(or be null: the whole batch at every step)."
        )
    return size


def steps_per_image(steps: int, batch_size: int, total: int) -> int:
    """The most of ``steps`` local steps of ``batch_size`` images that any one image of a batch
    of ``total`` enters: one per epoch begun."""
    return -(-steps // (total // batch_size))


def local_input_shape(update: SharedUpdate, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The input shape of one forward pass of the client's round: a local batch under FedAvg
    (``update.local``), the whole batch under FedSGD."""
    rows = update.batch_size if update.local is None else update.local.batch_size
    return (rows, *sample_shape)


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


def stepped(shapes: dict[str, torch.Size], training: LocalTraining | None) -> dict[str, torch.Size]:
    """Per-step copies of randomness ``shapes`` (taken at the local batch size) for FedAvg."""
    if training is None:
        return shapes
    return {step_key(t, k): s for t in range(training.steps) for k, s in shapes.items()}


def round_randomness(
    model: nn.Module, update: SharedUpdate, sample_shape: tuple[int, ...], layers: dict[str, StochasticLayer]
) -> dict[str, tuple[StochasticLayer, torch.Size]]:
    """The draws one round of the client makes in ``layers``: per buffer key (step-prefixed under
    FedAvg, one per local step) the layer that draws it and its shape."""
    if not layers:
        return {}
    shapes = randomness_shapes(model, local_input_shape(update, sample_shape), layers)
    by_key = {randomness_key(name, layer): layer for name, layer in layers.items()}
    return {key: (by_key[unstepped(key)], shape) for key, shape in stepped(shapes, update.local).items()}


def step_buffers(buffers: Tensors, step: int) -> Tensors:
    """The buffers of local step ``step``, with their step prefix removed."""
    prefix = STEP.format(step)
    return {k[len(prefix):]: v for k, v in buffers.items() if k.startswith(prefix)}


def local_update(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    training: LocalTraining,
    names: list[str] | None = None,
    buffers: Tensors | None = None,
    create_graph: bool = False,
    gradients: StepGradients | None = None,
) -> tuple[Tensors, Tensors]:
    """``theta_0 - theta_T`` for the named parameters, and the randomness drawn at each step.

    ``buffers`` supplies step-keyed randomness (``step_key``); layers given none draw their
    own, which is recorded under the same keys. ``gradients`` computes each step (None: the
    plain gradient of the mean loss, with ``create_graph``).
    """
    if gradients is None:
        gradients = partial(step_gradients, create_graph=create_graph)
    start = dict(model.named_parameters())
    params = dict(start)
    drawn: Tensors = {}
    for step in range(training.steps):
        rows = training.rows(step, len(labels))
        grads, recorded = gradients(model, params, images[rows], labels[rows], step_buffers(buffers or {}, step))
        params = {k: p - training.lr * grads[k] for k, p in params.items()}
        drawn.update({step_key(step, k): v for k, v in recorded.items()})
    wanted = list(start) if names is None else names
    return {k: start[k] - params[k] for k in wanted}, drawn
