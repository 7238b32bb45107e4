"""The training loss and its parameter gradients, shared by the client and every attacker."""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


def training_loss(model: nn.Module, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy plus any auxiliary loss a module set in the last forward pass.

    Model-side defenses (e.g. PRECODE's KL term) expose ``auxiliary_loss`` on their module.
    """
    loss = F.cross_entropy(logits, labels)
    for module in model.modules():
        extra = getattr(module, "auxiliary_loss", None)
        if extra is not None:
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
