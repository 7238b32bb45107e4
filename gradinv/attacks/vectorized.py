"""Many gradient-matching problems as one batched computation: ``torch.func.vmap`` over problems.

Each problem's parameter gradient is ``torch.func.grad`` of the training loss at its own
candidate images, labels and buffers; ``vmap`` stacks the problems along a new leading
dimension, so one call does the work of a Python loop over problems with the same math. The
result stays differentiable with respect to the (stacked) candidates through ordinary autograd.
Batch norm that normalizes with batch statistics (``ServerView.of`` for a client in train mode)
computes them per problem, as the loop does.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from gradinv.federated.gradients import training_loss

Tensors = dict[str, torch.Tensor]
Distance = Callable[[Tensors, Tensors], torch.Tensor]


def batched_distances(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    buffers: Tensors,
    targets: Tensors,
    distance: Distance,
    chunk: int | None = None,
) -> torch.Tensor:
    """Gradient distance per problem; every argument is stacked along a leading problem dim.

    ``targets`` names the matched parameters; the others stay fixed at the model's values.
    ``chunk`` problems at most share one ``vmap`` (its stacked activations and gradients then
    stay within memory and caches); the chunks' results are concatenated.
    """
    count = images.shape[0]
    if chunk is not None and chunk < count:
        rows = [slice(start, start + chunk) for start in range(0, count, chunk)]
        return torch.cat([
            batched_distances(
                model, images[r], labels[r], {k: v[r] for k, v in buffers.items()},
                {k: v[r] for k, v in targets.items()}, distance,
            )
            for r in rows
        ])
    fixed = {k: v.detach() for k, v in model.named_parameters()}
    matched = {k: fixed[k] for k in targets}

    def loss(wanted: Tensors, image: torch.Tensor, label: torch.Tensor, buffer: Tensors):
        logits = functional_call(model, {**fixed, **wanted, **buffer}, (image,))
        return training_loss(model, logits, label)

    def one(image: torch.Tensor, label: torch.Tensor, buffer: Tensors, target: Tensors):
        return distance(grad(loss)(matched, image, label, buffer), target)

    return vmap(one)(images, labels, buffers, targets)
