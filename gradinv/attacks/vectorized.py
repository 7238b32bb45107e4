"""Many gradient-matching problems as one batched computation: ``torch.func.vmap`` over problems.

Each problem's parameter gradient is ``torch.func.grad`` of the training loss at its own
candidate images, labels and buffers; ``vmap`` stacks the problems along a new leading
dimension, so one call does the work of a Python loop over problems with the same math. The
result stays differentiable with respect to the (stacked) candidates through ordinary autograd.

Not for models that normalize by statistics of their input (layer, group or instance norm,
batch norm on batch statistics): under ``torch.func`` the second derivative through such a
layer takes its saved mean and variance as constants (pytorch/pytorch#175754), so the gradient
the attack follows would be wrong (measured: 0.3-6% off on the ViT and a train-mode
ResNet-18, against the loop and finite differences). ``input_statistics`` names them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from gradinv.federated.gradients import training_loss
from gradinv.tensors import Tensors

Distance = Callable[[Tensors, Tensors], torch.Tensor]
#: Every normalization layer (batch and instance norm derive from ``_NormBase``).
NORMALIZATIONS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def input_statistics(model: nn.Module) -> str | None:
    """The first module of ``model`` that normalizes by statistics of its input (any
    normalization but a batch norm on running statistics), if any."""
    for name, module in model.named_modules():
        running = isinstance(module, nn.modules.batchnorm._BatchNorm) and not batch_statistics(
            module
        )
        if isinstance(module, NORMALIZATIONS) and not running:
            return f"{name} ({type(module).__name__})"
    return None


def batch_statistics(module: nn.Module) -> bool:
    """Whether ``module`` is a batch norm normalizing with its batch's statistics."""
    return isinstance(module, nn.modules.batchnorm._BatchNorm) and (
        module.training or module.running_mean is None
    )


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
