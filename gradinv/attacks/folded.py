"""Gradient distances of many problems from one forward pass: problems folded into the batch.

The problems' images run as one batch through the shared model, and one backward pass returns
the loss gradient ``D`` at the output of every module that owns a matched parameter. A
problem's gradient for such a module follows from its own rows of the module's input ``X``
and of ``D``:

- a linear layer's need not be formed: a distance needs only <G, T> = sum((D T) * X) and
  ||G||^2 = sum((D D^T) * (X X^T)) (the per-sample-gradient-norm identity, Goodfellow 2015),
  which spares arithmetic where it is dear (a CPU); where kernels are dear and arithmetic is
  cheap (a GPU) it is formed, D^T X in one batched product, and each problem's distance is
  taken on all its gradients as one vector (``flat_targets``);
- a layer norm's or a batch norm's is the sum of ``D`` times the normalized input (weight)
  and of ``D`` (bias);
- any other module without submodules (convolution, the ViT's class token and positions)
  gets the vector-Jacobian product of its own forward with respect to its own parameters,
  one per problem under ``vmap``: small tensors, computed from ``X`` and ``D``. Not for other
  normalization layers: through ``torch.func`` layer norm's second derivative comes out
  wrong (its saved statistics are taken as constants, pytorch/pytorch#175754), hence the
  explicit rule above and none for group or instance norm.

A batch norm on batch statistics (a client in train mode) normalizes each problem's rows by
their own mean and variance, as the client's batch was, so that problems do not interact.

The result is exact (a test checks it for every configured model). It applies when every
matched parameter's owner has a rule (or no submodules) and no module adds a loss term of its
own (``folded_owners`` checks these), and each owner runs once per forward pass with its
inputs left intact (``plan_folding`` runs the forward once, checks it, notes the owners whose
output a later layer overwrites in place, e.g. torchvision's ``ReLU(inplace=True)`` after each
batch norm, so that their output is copied for the rules, and counts what folding forms).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vjp, vmap

from gradinv.attacks.objectives import PRODUCT_FORMS
from gradinv.attacks.vectorized import NORMALIZATIONS, batch_statistics
from gradinv.federated.gradients import training_loss
from gradinv.models.auxiliary import has_auxiliary_loss
from gradinv.tensors import Tensors


def folded_owners(
    model: nn.Module, names: list[str], objective: str
) -> dict[str, nn.Module] | None:
    """The modules owning the matched parameters, or None when folding does not apply."""
    if objective not in PRODUCT_FORMS or has_auxiliary_loss(model):
        return None
    modules = dict(model.named_modules())
    owners = {}
    for name in names:
        owner, _, _ = name.rpartition(".")
        module = modules.get(owner)
        if module is None:
            return None
        generic = type(module) not in _GRADIENTS
        if generic and (isinstance(module, NORMALIZATIONS) or next(module.children(), None)):
            return None
        owners[owner] = module
    return owners


@dataclass(frozen=True)
class Folding:
    """How problems fold into one batch, as ``plan_folding`` found by one forward pass."""

    owners: dict[str, nn.Module]  # module name -> the module owning matched parameters
    copied: frozenset[str]  # owners whose output a later layer overwrites in place
    entries: int  # what one problem's distance forms per step (``plan_folding``)


def folded_distances(
    model: nn.Module,
    folding: Folding,
    images: torch.Tensor,
    labels: torch.Tensor,
    buffers: Tensors,
    targets: Tensors,
    target_norms: torch.Tensor,
    objective: str,
    flat_targets: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gradient distance per problem; arguments are stacked along a leading problem dimension.

    ``target_norms`` holds each problem's squared target norm, constant over an attack. With
    ``flat_targets`` (each problem's target gradients as one vector, in ``targets``' order),
    every owner's per-problem gradient is formed, linear layers' too, and the distances come
    from one vector per problem: more arithmetic, far fewer kernels (what a GPU wants).
    """
    problems = images.shape[0]
    logits, seen, _ = _forward(model, folding.owners, images, buffers, folding.copied)
    # Each problem's loss is a mean over its own batch: the sum over problems is P x the mean.
    loss = problems * training_loss(model, logits, labels.flatten(0, 1))
    deltas = torch.autograd.grad(
        loss, [seen[name][1] for name in folding.owners], create_graph=True
    )
    owned = {
        name: (module, seen[name][0], delta)
        for (name, module), delta in zip(folding.owners.items(), deltas)
    }
    if flat_targets is not None:
        grads = {}
        for name, (module, args, delta) in owned.items():
            shorts = [k.rpartition(".")[2] for k in targets if k.rpartition(".")[0] == name]
            for short, grad in _gradients(module, args, delta, shorts, problems).items():
                grads[f"{name}.{short}" if name else short] = grad
        flat = torch.cat([grads[k].flatten(1) for k in targets], dim=1)
        dot, norm = (flat * flat_targets).sum(dim=1), flat.pow(2).sum(dim=1)
        return PRODUCT_FORMS[objective](dot, norm, target_norms)
    dot = norm = images.new_zeros(problems)
    for name, (module, args, delta) in owned.items():
        mine = {}
        for key, target in targets.items():
            owner, _, short = key.rpartition(".")
            if owner == name:
                mine[short] = target
        if isinstance(module, nn.Linear):
            layer_dot, layer_norm = _linear_products(module, args, delta, mine, problems)
        else:
            layer_dot, layer_norm = _products(
                _gradients(module, args, delta, list(mine), problems), mine
            )
        dot, norm = dot + layer_dot, norm + layer_norm
    return PRODUCT_FORMS[objective](dot, norm, target_norms)


def plan_folding(
    model: nn.Module, owners: dict[str, nn.Module], images: torch.Tensor, buffers: Tensors
) -> Folding:
    """Run the forward pass once without gradients on one problem (stacked as in
    ``folded_distances``): check that each owner runs once with its inputs left intact
    (``FoldingError`` if not), note the owners whose output is overwritten in place, and count
    what one problem forms per step: each linear layer's input and output-gradient rows, the
    other owners' parameter gradients."""
    with torch.no_grad():
        _, seen, overwritten = _forward(model, owners, images, buffers, frozenset())
    entries, copied = 0, set()
    for name, module in owners.items():
        args = seen[name][0]
        if any(overwritten[name][:-1]):
            raise FoldingError(f"a later layer modifies the input of {name} in place")
        if overwritten[name][-1]:
            copied.add(name)
        if isinstance(module, nn.Linear):
            entries += (
                args[0].numel() // module.in_features * (module.in_features + module.out_features)
            )
        else:
            entries += sum(p.numel() for p in module.parameters(recurse=False))
    return Folding(owners, frozenset(copied), entries)


class FoldingError(RuntimeError):
    """The forward pass broke what folding needs: each owner once, its inputs left intact."""


def _forward(
    model: nn.Module,
    owners: dict[str, nn.Module],
    images: torch.Tensor,
    buffers: Tensors,
    copied: frozenset[str],
) -> tuple[torch.Tensor, dict[str, tuple[tuple, torch.Tensor]], dict[str, list[bool]]]:
    """The problems' images as one batch through ``model``; per owner its (inputs, output) and,
    for each of these tensors, whether a later layer overwrote it in place.

    Batch norms on batch statistics normalize each problem's rows on their own. An owner must
    run exactly once; the outputs of ``copied`` owners are copied before later layers see them.
    """
    problems = images.shape[0]
    seen: dict[str, list] = {name: [] for name in owners}

    def record(name: str):
        def hook(module, args, out):
            seen[name].append(((args, out), [t._version for t in (*args, out)]))
            return out.clone() if name in copied else None

        return hook

    def per_problem(module, args, out):
        return _batch_norm_per_problem(module, args[0], problems)

    # registered first, so that an owner's record hook sees the per-problem output
    hooks = [m.register_forward_hook(per_problem) for m in model.modules() if batch_statistics(m)]
    hooks += [module.register_forward_hook(record(name)) for name, module in owners.items()]
    try:
        flat = {k: v.flatten(0, 1) for k, v in buffers.items()}
        logits = functional_call(
            model, {**dict(model.named_parameters()), **flat}, (images.flatten(0, 1),)
        )
    finally:
        for hook in hooks:
            hook.remove()
    overwritten = {}
    for name, calls in seen.items():
        if len(calls) != 1:
            raise FoldingError(f"{name} ran {len(calls)} times in one forward pass, not once")
        (args, out), versions = calls[0]
        overwritten[name] = [t._version != v for t, v in zip((*args, out), versions)]
    return logits, {name: calls[0][0] for name, calls in seen.items()}, overwritten


def _normalized_per_problem(x: torch.Tensor, problems: int, eps: float) -> torch.Tensor:
    """``x`` normalized per channel (dim 1) by the mean and variance of each problem's own rows:
    what a batch norm on batch statistics computes for each problem's batch alone."""
    rows = x.unflatten(0, (problems, -1))
    var, mean = torch.var_mean(rows, dim=(1, *range(3, rows.dim())), correction=0, keepdim=True)
    return ((rows - mean) * torch.rsqrt(var + eps)).flatten(0, 1)


def _batch_norm_per_problem(module: nn.Module, x: torch.Tensor, problems: int) -> torch.Tensor:
    """A batch norm's output on batch statistics, with each problem's rows normalized alone."""
    normalized = _normalized_per_problem(x, problems, module.eps)
    if module.weight is None:
        return normalized
    shape = (1, -1, *[1] * (x.dim() - 2))
    return normalized * module.weight.view(shape) + module.bias.view(shape)


def _linear_products(
    module: nn.Linear, args: tuple, delta: torch.Tensor, targets: Tensors, problems: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """<G, T> and ||G||^2 per problem of a linear layer, from its input and output-gradient rows."""
    x = args[0].reshape(problems, -1, module.in_features)
    d = delta.reshape(problems, -1, module.out_features)
    dot = norm = x.new_zeros(problems)
    weight, bias = targets.get("weight"), targets.get("bias")
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


def _norm_gradients(
    module: nn.Module, args: tuple, delta: torch.Tensor, names: list[str], problems: int
) -> Tensors:
    """Per-problem gradients of an affine normalization: the weight's is D times the normalized
    input, the bias's is D, each summed over a problem's rows."""
    if isinstance(module, nn.LayerNorm):  # parameters shaped like each row's trailing dims
        normalized = F.layer_norm(args[0], module.normalized_shape, eps=module.eps)
        shape, rows = (problems, -1, *module.normalized_shape), (1,)
    else:  # batch norm: one parameter per channel (dim 1)
        if batch_statistics(module):
            normalized = _normalized_per_problem(args[0], problems, module.eps)
        else:
            normalized = F.batch_norm(
                args[0], module.running_mean, module.running_var, eps=module.eps
            )
        shape, rows = (problems, -1, module.num_features, normalized[0, 0].numel()), (1, 3)
    d, normalized = delta.reshape(shape), normalized.reshape(shape)
    grads = {"weight": lambda: (d * normalized).sum(dim=rows), "bias": lambda: d.sum(dim=rows)}
    return {k: grads[k]() for k in names}


def _module_gradients(
    module: nn.Module, args: tuple, delta: torch.Tensor, names: list[str], problems: int
) -> Tensors:
    """Per-problem gradients of a module without submodules: its own forward's vector-Jacobian
    product with respect to its matched parameters, one per problem."""
    own = {k: p for k, p in module.named_parameters(recurse=False) if k in names}

    def gradient(inputs: tuple, d: torch.Tensor) -> Tensors:
        _, pull = vjp(lambda params: functional_call(module, params, inputs), own)
        return pull(d)[0]

    per_problem = [a.unflatten(0, (problems, -1)) for a in args]
    return vmap(gradient)(tuple(per_problem), delta.unflatten(0, (problems, -1)))


def _linear_gradients(
    module: nn.Linear, args: tuple, delta: torch.Tensor, names: list[str], problems: int
) -> Tensors:
    """Per-problem gradients of a linear layer: D^T X (one batched product) and D summed."""
    x = args[0].reshape(problems, -1, module.in_features)
    d = delta.reshape(problems, -1, module.out_features)
    grads = {"weight": lambda: d.transpose(1, 2) @ x, "bias": lambda: d.sum(dim=1)}
    return {k: grads[k]() for k in names}


def _gradients(
    module: nn.Module, args: tuple, delta: torch.Tensor, names: list[str], problems: int
) -> Tensors:
    """Per-problem gradients of an owner's matched parameters ``names``, by its kind."""
    rule = _GRADIENTS.get(type(module), _module_gradients)
    return rule(module, args, delta, names, problems)


def _products(grads: Tensors, targets: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
    """<G, T> and ||G||^2 per problem from a module's per-problem gradients ``grads``."""
    dot = sum((g * targets[k]).flatten(1).sum(dim=1) for k, g in grads.items())
    norm = sum(g.flatten(1).pow(2).sum(dim=1) for g in grads.values())
    return dot, norm


_GRADIENTS = {
    nn.Linear: _linear_gradients,
    nn.LayerNorm: _norm_gradients,
    nn.BatchNorm1d: _norm_gradients,
    nn.BatchNorm2d: _norm_gradients,
    nn.BatchNorm3d: _norm_gradients,
}


def squared_norms(targets: Tensors) -> torch.Tensor:
    """Each problem's squared norm over all its (stacked) target gradients."""
    return sum(t.flatten(1).pow(2).sum(dim=1) for t in targets.values())
