"""Many gradient-matching problems as one batched computation: ``torch.func.vmap`` over problems.

Each problem's parameter gradient is ``torch.func.grad`` of the training loss at its own
candidate images, labels and buffers; ``vmap`` stacks the problems along a new leading
dimension, so one call does the work of a Python loop over problems with the same math. The
result stays differentiable with respect to the (stacked) candidates through ordinary autograd.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from gradinv.federated.gradients import training_loss
from gradinv.models.dropout import active_sites, mask_key

Tensors = dict[str, torch.Tensor]
Distance = Callable[[Tensors, Tensors], torch.Tensor]


def vectorization_blocker(model: nn.Module, model_mode: str, buffer_keys: set[str]) -> str | None:
    """Why ``vmap`` cannot step these problems exactly like a loop would, or None if it can.

    In train mode, batch norm updates running statistics in place and dropout samples fresh
    masks: neither has a per-problem form under ``vmap``, unless every mask is given as a buffer.
    """
    if model_mode != "train":
        return None
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return "attack.model_mode=train with batch norm"
    sampled = [name for name in active_sites(model) if mask_key(name) not in buffer_keys]
    if sampled:
        return f"attack.model_mode=train samples dropout masks at {sampled[0]}"
    return None


def batched_distances(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    buffers: Tensors,
    targets: Tensors,
    distance: Distance,
) -> torch.Tensor:
    """Gradient distance per problem; every argument is stacked along a leading problem dim.

    ``targets`` names the matched parameters; the others stay fixed at the model's values.
    """
    fixed = {k: v.detach() for k, v in model.named_parameters()}
    matched = {k: fixed[k] for k in targets}

    def loss(wanted: Tensors, image: torch.Tensor, label: torch.Tensor, buffer: Tensors):
        logits = functional_call(model, {**fixed, **wanted, **buffer}, (image,))
        return training_loss(model, logits, label)

    def one(image: torch.Tensor, label: torch.Tensor, buffer: Tensors, target: Tensors):
        return distance(grad(loss)(matched, image, label, buffer), target)

    return vmap(one)(images, labels, buffers, targets)
