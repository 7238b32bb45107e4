"""Gradient distances of many problems from one forward pass: problems folded into the batch.

The problems' images run as one batch through the shared model, and one backward pass returns
the loss gradient ``D`` at the output of every module that owns a matched parameter. A
problem's gradient for such a module follows from its own rows of the module's input ``X``
and of ``D``:

- a linear layer's is never formed: a distance needs only <G, T> = sum((D T) * X) and
  ||G||^2 = sum((D D^T) * (X X^T)) (the per-sample-gradient-norm identity, Goodfellow 2015);
- a layer norm's, or a batch norm's on running statistics, is the sum of ``D`` times the
  normalized input (weight) and of ``D`` (bias);
- any other module without submodules (convolution, the ViT's class token and positions)
  gets the vector-Jacobian product of its own forward with respect to its own parameters,
  one per problem under ``vmap``: small tensors, computed from ``X`` and ``D``. Not for other
  normalization layers: through ``torch.func`` layer norm's second derivative comes out
  wrong (its saved statistics are taken as constants, pytorch/pytorch#175754), hence the
  explicit rule above and none for group or instance norm.

The result is exact (a test checks it for every configured model). It applies when every
matched parameter's owner has a rule (or no submodules), samples do not interact (no batch
statistics), no module adds a loss term of its own (``folded_owners`` checks these), and each
owner runs once per forward pass with its inputs and output left intact (``folded_entries``
runs the forward once, checks it and counts what folding forms).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vjp, vmap

from gradinv.attacks.objectives import PRODUCT_FORMS
from gradinv.attacks.vectorized import batch_statistics
from gradinv.federated.gradients import training_loss
from gradinv.models.auxiliary import has_auxiliary_loss

Tensors = dict[str, torch.Tensor]


def folded_owners(model: nn.Module, names: list[str], objective: str) -> dict[str, nn.Module] | None:
    """The modules owning the matched parameters, or None when folding does not apply."""
    if objective not in PRODUCT_FORMS or has_auxiliary_loss(model):
        return None
    if any(batch_statistics(m) for m in model.modules()):
        return None
    modules = dict(model.named_modules())
    owners = {}
    for name in names:
        owner, _, _ = name.rpartition(".")
        module = modules.get(owner)
        if module is None:
            return None
        generic = type(module) not in _RULES
        if generic and (isinstance(module, _NORMALIZATIONS) or next(module.children(), None)):
            return None
        owners[owner] = module
    return owners


def folded_distances(
    model: nn.Module,
    owners: dict[str, nn.Module],
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
    problems = images.shape[0]
    logits, seen = _forward(model, owners, images, buffers)
    # Each problem's loss is a mean over its own batch: the sum over problems is P x the mean.
    loss = problems * training_loss(model, logits, labels.flatten(0, 1))
    deltas = torch.autograd.grad(loss, [seen[name][1] for name in owners], create_graph=True)
    dot = norm = images.new_zeros(problems)
    for (name, module), delta in zip(owners.items(), deltas):
        args = seen[name][0]
        mine = {k: t for k, t in targets.items() if k.rpartition(".")[0] == name}
        rule = _RULES.get(type(module), _module_products)
        layer_dot, layer_norm = rule(module, name, args, delta, mine, problems)
        dot, norm = dot + layer_dot, norm + layer_norm
    return PRODUCT_FORMS[objective](dot, norm, target_norms)


def folded_entries(
    model: nn.Module, owners: dict[str, nn.Module], images: torch.Tensor, buffers: Tensors
) -> int:
    """Entries one problem's folded distance forms per step: each linear layer's input and
    output-gradient rows, the other owners' parameter gradients. Runs the forward pass once
    without gradients on one problem (stacked as in ``folded_distances``), so it raises
    ``FoldingError`` where folding cannot run."""
    with torch.no_grad():
        _, seen = _forward(model, owners, images, buffers)
    entries = 0
    for name, module in owners.items():
        if isinstance(module, nn.Linear):
            rows = seen[name][0][0].numel() // module.in_features
            entries += rows * (module.in_features + module.out_features)
        else:
            entries += sum(p.numel() for p in module.parameters(recurse=False))
    return entries


class FoldingError(RuntimeError):
    """The forward pass broke what folding needs: each owner once, its tensors left intact."""


def _forward(
    model: nn.Module, owners: dict[str, nn.Module], images: torch.Tensor, buffers: Tensors
) -> tuple[torch.Tensor, dict[str, tuple[tuple, torch.Tensor]]]:
    """The problems' images as one batch through ``model``, and each owner's (inputs, output).

    An owner must run exactly once, and no later layer may modify its inputs or output in
    place (torchvision's ReLU(inplace=True) after a batch norm does): the rules read them.
    """
    seen: dict[str, list] = {name: [] for name in owners}

    def record(name: str):
        def hook(module, args, out):
            seen[name].append((args, out, [t._version for t in (*args, out)]))
        return hook

    hooks = [module.register_forward_hook(record(name)) for name, module in owners.items()]
    try:
        flat = {k: v.flatten(0, 1) for k, v in buffers.items()}
        logits = functional_call(model, {**dict(model.named_parameters()), **flat}, (images.flatten(0, 1),))
    finally:
        for hook in hooks:
            hook.remove()
    for name, calls in seen.items():
        if len(calls) != 1:
            raise FoldingError(f"{name} ran {len(calls)} times in one forward pass, not once")
        args, out, versions = calls[0]
        if [t._version for t in (*args, out)] != versions:
            raise FoldingError(f"a later layer modifies the input or output of {name} in place")
    return logits, {name: calls[0][:2] for name, calls in seen.items()}


def _linear_products(
    module: nn.Linear, name: str, args: tuple, delta: torch.Tensor, targets: Tensors, problems: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """<G, T> and ||G||^2 per problem of a linear layer, from its input and output-gradient rows."""
    x = args[0].reshape(problems, -1, module.in_features)
    d = delta.reshape(problems, -1, module.out_features)
    dot = norm = x.new_zeros(problems)
    prefix = f"{name}." if name else ""
    weight, bias = targets.get(prefix + "weight"), targets.get(prefix + "bias")
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
    return dot, norm


def _norm_products(
    module: nn.Module, name: str, args: tuple, delta: torch.Tensor, targets: Tensors, problems: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """<G, T> and ||G||^2 per problem of an affine normalization: the weight's gradient is D
    times the normalized input, the bias's is D, each summed over a problem's rows."""
    if isinstance(module, nn.LayerNorm):  # parameters shaped like each row's trailing dims
        normalized = F.layer_norm(args[0], module.normalized_shape, eps=module.eps)
        shape, rows = (problems, -1, *module.normalized_shape), (1,)
    else:  # batch norm on running statistics: one parameter per channel (dim 1)
        normalized = F.batch_norm(args[0], module.running_mean, module.running_var, eps=module.eps)
        shape, rows = (problems, -1, module.num_features, normalized[0, 0].numel()), (1, 3)
    d, normalized = delta.reshape(shape), normalized.reshape(shape)
    grads = {"weight": (d * normalized).sum(dim=rows), "bias": d.sum(dim=rows)}
    prefix = f"{name}." if name else ""
    return _products({k: g for k, g in grads.items() if prefix + k in targets}, targets, prefix)


def _module_products(
    module: nn.Module, name: str, args: tuple, delta: torch.Tensor, targets: Tensors, problems: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """<G, T> and ||G||^2 per problem of a module without submodules: its own forward's
    vector-Jacobian product with respect to its matched parameters, one per problem."""
    prefix = f"{name}." if name else ""
    own = {k: p for k, p in module.named_parameters(recurse=False) if prefix + k in targets}

    def gradient(inputs: tuple, d: torch.Tensor) -> Tensors:
        _, pull = vjp(lambda params: functional_call(module, params, inputs), own)
        return pull(d)[0]

    per_problem = [a.unflatten(0, (problems, -1)) for a in args]
    grads = vmap(gradient)(tuple(per_problem), delta.unflatten(0, (problems, -1)))
    return _products(grads, targets, prefix)


def _products(grads: Tensors, targets: Tensors, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """<G, T> and ||G||^2 per problem from a module's per-problem gradients ``grads``."""
    dot = sum((g * targets[prefix + k]).flatten(1).sum(dim=1) for k, g in grads.items())
    norm = sum(g.flatten(1).pow(2).sum(dim=1) for g in grads.values())
    return dot, norm


_RULES = {
    nn.Linear: _linear_products,
    nn.LayerNorm: _norm_products,
    nn.BatchNorm1d: _norm_products,
    nn.BatchNorm2d: _norm_products,
    nn.BatchNorm3d: _norm_products,
}
_NORMALIZATIONS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def squared_norms(targets: Tensors) -> torch.Tensor:
    """Each problem's squared norm over all its (stacked) target gradients."""
    return sum(t.flatten(1).pow(2).sum(dim=1) for t in targets.values())

