"""Gradient distances of many problems at once without forming their weight gradients.

For a linear layer y = x W^T + b, a problem's weight gradient is G = D^T X (D: the loss
gradient at the layer's output rows, X: its input rows). A gradient distance needs only
<G, T> = sum((D T) * X) and ||G||^2 = sum((D D^T) * (X X^T)), so the problems' images run as
one batch through the shared model, autograd returns D (differentiably) instead of a
(problems x out x in) stack of gradients, and the distance follows from these products. This
is the per-sample-gradient-norm identity (Goodfellow 2015), and it is exact. It applies when
every matched parameter belongs to a linear layer used once per forward pass, samples do not
interact (no batch statistics), and no module adds a loss term of its own.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from gradinv.attacks.objectives import PRODUCT_FORMS
from gradinv.federated.gradients import training_loss
from gradinv.models.auxiliary import has_auxiliary_loss

Tensors = dict[str, torch.Tensor]


def linear_layers(model: nn.Module, names: list[str], objective: str):
    """The linear modules owning the matched parameters, or None when the identity does not apply."""
    if objective not in PRODUCT_FORMS:
        return None
    if has_auxiliary_loss(model):
        return None
    if any(_batch_statistics(m) for m in model.modules()):
        return None
    owners = {}
    modules = dict(model.named_modules())
    for name in names:
        owner, _, kind = name.rpartition(".")
        if not isinstance(modules.get(owner), nn.Linear) or kind not in ("weight", "bias"):
            return None
        owners[owner] = modules[owner]
    return owners


def linear_distances(
    model: nn.Module,
    layers: dict[str, nn.Linear],
    images: torch.Tensor,
    labels: torch.Tensor,
    buffers: Tensors,
    targets: Tensors,
    target_norms: torch.Tensor,
    objective: str,
) -> torch.Tensor:
    """Gradient distance per problem; arguments are stacked along a leading problem dimension.

    ``target_norms`` holds each problem's squared target norm, constant over an attack.
    """
    problems, batch = images.shape[:2]
    seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {name: [] for name in layers}
    hooks = [
        module.register_forward_hook(lambda m, args, out, name=name: seen[name].append((args[0], out)))
        for name, module in layers.items()
    ]
    try:
        flat = {k: v.flatten(0, 1) for k, v in buffers.items()}
        logits = functional_call(model, {**dict(model.named_parameters()), **flat}, (images.flatten(0, 1),))
    finally:
        for hook in hooks:
            hook.remove()
    if any(len(calls) != 1 for calls in seen.values()):
        raise RuntimeError("a matched linear layer ran more or less than once in one forward pass")
    # Each problem's loss is a mean over its own batch: the sum over problems is P x the mean.
    loss = problems * training_loss(model, logits, labels.flatten(0, 1))
    outputs = [seen[name][0][1] for name in layers]
    deltas = torch.autograd.grad(loss, outputs, create_graph=True)
    dot = norm = images.new_zeros(problems)
    for (name, module), delta in zip(layers.items(), deltas):
        x = seen[name][0][0].reshape(problems, -1, module.in_features)
        d = delta.reshape(problems, -1, module.out_features)
        weight, bias = targets.get(f"{name}.weight"), targets.get(f"{name}.bias")
        if weight is not None:
            dot = dot + ((d @ weight) * x).sum(dim=(1, 2))
            rows = x.shape[1]
            if rows * rows <= module.in_features * module.out_features:
                norm = norm + ((d @ d.transpose(1, 2)) * (x @ x.transpose(1, 2))).sum(dim=(1, 2))
            else:
                norm = norm + (d.transpose(1, 2) @ x).pow(2).sum(dim=(1, 2))
        if bias is not None:
            grad = d.sum(dim=1)
            dot = dot + (grad * bias).sum(dim=1)
            norm = norm + grad.pow(2).sum(dim=1)
    return PRODUCT_FORMS[objective](dot, norm, target_norms)


def squared_norms(targets: Tensors) -> torch.Tensor:
    """Each problem's squared norm over all its (stacked) target gradients."""
    return sum(t.flatten(1).pow(2).sum(dim=1) for t in targets.values())


def _batch_statistics(module: nn.Module) -> bool:
    """Whether ``module`` normalizes with its batch's statistics (samples then interact)."""
    return isinstance(module, nn.modules.batchnorm._BatchNorm) and (
        module.training or module.running_mean is None
    )
