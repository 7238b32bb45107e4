"""The training loss and its parameter gradients, shared by the client and every attacker."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from gradinv.models.auxiliary import auxiliary_losses
from gradinv.models.stochastic import recording_randomness
from gradinv.tensors import Tensors

#: How a client computes the gradients of one step: from (model, parameters, images, labels,
#: supplied randomness buffers) to the gradients by parameter name and the randomness drawn.
StepGradients = Callable[
    [nn.Module, Tensors, torch.Tensor, torch.Tensor, Tensors], tuple[Tensors, Tensors]
]


def binary_targets(labels: torch.Tensor) -> torch.Tensor:
    """The one place class labels become binary targets for a 1-logit head: the class's parity."""
    return (labels % 2).to(torch.get_default_dtype())


def output_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy, or the logistic loss on ``binary_targets`` when there is one logit."""
    if logits.shape[-1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], binary_targets(labels).to(logits))
    return F.cross_entropy(logits, labels)


def training_loss(model: nn.Module, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``output_loss`` plus any auxiliary loss a module set in the last forward pass.

    Model-side defenses (e.g. PRECODE's KL term) add theirs through ``AuxiliaryLoss`` layers.
    """
    loss = output_loss(logits, labels)
    for extra in auxiliary_losses(model):
        loss = loss + extra
    return loss


def parameter_gradients(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    names: Iterable[str] | None = None,
    buffers: dict[str, torch.Tensor] | None = None,
    create_graph: bool = False,
) -> dict[str, torch.Tensor]:
    """Gradients of the training loss on (images, labels) for the named parameters.

    ``buffers`` replaces module buffers for this call only (e.g. dropout masks); with
    ``create_graph`` the result stays differentiable with respect to images and buffers.
    """
    params = dict(model.named_parameters())
    wanted = list(params) if names is None else list(names)
    logits = functional_call(model, {**params, **(buffers or {})}, (images,))
    loss = training_loss(model, logits, labels)
    grads = torch.autograd.grad(loss, [params[n] for n in wanted], create_graph=create_graph)
    return dict(zip(wanted, grads))


def step_gradients(
    model: nn.Module,
    params: Tensors,
    images: torch.Tensor,
    labels: torch.Tensor,
    buffers: Tensors | None = None,
    create_graph: bool = False,
) -> tuple[Tensors, Tensors]:
    """The gradients of the training loss at ``params`` (the mean over the batch) and the
    randomness the stochastic layers drew for it: one plain step of a client, or of an attacker
    simulating it (``create_graph``)."""
    with recording_randomness(model) as drawn:
        logits = functional_call(model, {**params, **(buffers or {})}, (images,))
        loss = training_loss(model, logits, labels)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
    return dict(zip(params, grads)), drawn
