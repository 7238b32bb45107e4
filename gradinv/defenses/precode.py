"""PRECODE (Scheliga et al., WACV 2022): a variational bottleneck right before the classifier.

As in its authors' code, the bottleneck encodes the features to a mean and a softplus scale
of ``latent`` units, always samples ``z = mu + scale * eps`` (in eval mode too), decodes ``z``
back to the feature size and sets ``auxiliary_loss = beta * KL(q || N(0, I))`` with the KL in
bits (nats / ln 2, as the authors compute it), which ``training_loss`` adds for client and
attacker alike. ``eps`` is the layer's randomness (``bottleneck.noise``): the client records
it, and an attacker supplies its own draws, or the client's when the threat model grants them.
It is installed as ``model.bottleneck`` and applied to the input of ``model.head`` by a forward
pre-hook, so the classifier keeps its name ``head.*``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gradinv.defenses.base import Defense
from gradinv.errors import ConfigError
from gradinv.models.auxiliary import AuxiliaryLoss
from gradinv.models.random_stream import standard_normals
from gradinv.models.stochastic import StochasticLayer
from gradinv.models.tracing import first_inputs
from gradinv.typecheck import positive_int

BOTTLENECK = "bottleneck"


class VariationalBottleneck(StochasticLayer, AuxiliaryLoss):
    """Linear encoder to (mean, softplus scale), reparametrized sample, linear decoder."""

    randomness = "noise"
    samples_in_eval = True

    def __init__(self, features: int, latent: int = 256, beta: float = 1e-3) -> None:
        super().__init__()
        self.latent = latent
        self.beta = beta
        self.encoder = nn.Linear(features, 2 * latent)
        self.decoder = nn.Linear(latent, features)

    def randomness_shape(self, x: torch.Tensor) -> torch.Size:
        return torch.Size((*x.shape[:-1], self.latent))

    def draw_cpu(
        self, shape: torch.Size, dtype: torch.dtype, generator: torch.Generator | None
    ) -> torch.Tensor:
        return torch.randn(shape, dtype=dtype, generator=generator)

    def draw_counted(
        self,
        shape: torch.Size,
        seeds: torch.Tensor,
        counters: torch.Tensor,
        stream: int,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        noise = standard_normals(seeds, counters, stream, shape.numel())
        return noise.to(dtype).view(len(seeds), *shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, raw_scale = self.encoder(x).split(self.latent, dim=-1)
        scale = F.softplus(raw_scale)
        z = mean + scale * self.sample(x)
        self.auxiliary_loss = self.beta * kl_to_standard_normal(mean, scale)
        return self.decoder(z)


def kl_to_standard_normal(mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, scale^2) || N(0, I)) in bits, summed over latent units, averaged over the batch."""
    kl = 0.5 * (mean.pow(2) + scale.pow(2) - 1) - torch.log(scale)
    return kl.sum(dim=-1).mean() / math.log(2)


class _ThroughBottleneck:
    """Forward pre-hook on ``head``: its input passes the bottleneck first (deep-copy safe)."""

    def __init__(self, bottleneck: VariationalBottleneck) -> None:
        self.bottleneck = bottleneck

    def __call__(
        self, module: nn.Module, args: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, ...]:
        return (self.bottleneck(args[0]), *args[1:])


class Precode(Defense):
    """Insert a variational bottleneck before the classifier ``head`` of the model."""

    def __init__(self, latent: int = 256, beta: float = 1e-3) -> None:
        if not positive_int(latent):
            raise ConfigError(f"defense.latent must be a positive integer, got {latent}.")
        if beta < 0:
            raise ConfigError(f"defense.beta must be non-negative, got {beta}.")
        self.latent = latent
        self.beta = beta

    def prepare_model(self, model: nn.Module) -> nn.Module:
        head = getattr(model, "head", None)
        if not isinstance(head, nn.Linear):
            raise ConfigError(
                "defense=precode needs a model whose classifier 'head' is a linear layer."
            )
        if hasattr(model, BOTTLENECK):
            raise ConfigError(
                "defense=precode was applied to a model that already has a bottleneck."
            )
        bottleneck = VariationalBottleneck(head.in_features, self.latent, self.beta)
        model.add_module(BOTTLENECK, bottleneck)
        head.register_forward_pre_hook(_ThroughBottleneck(bottleneck))
        return model

    def skippable_parameters(self, model: nn.Module) -> list[str]:
        """The bottleneck's decoder and every later layer: its sampling makes their gradients stochastic."""
        return stochastic_parameters(model)


def stochastic_parameters(model: nn.Module) -> list[str]:
    """Names of the bottleneck decoder's parameters and of every layer that runs after it.

    Traced from the model: a forward pass from the classifier's input records the order in
    which parameterized modules run (the bottleneck sits at ``head``'s input, and ``head`` is
    the last layer of every architecture of the grid).
    """
    bottleneck = getattr(model, BOTTLENECK, None)
    if not isinstance(bottleneck, VariationalBottleneck):
        raise ConfigError(
            "defense=precode found no PRECODE bottleneck in the model: build it with the "
            "defense's prepare_model."
        )
    head = model.head
    order = _forward_order(model, lambda: head(head.weight.new_zeros(1, head.in_features)))
    start = order.index(f"{BOTTLENECK}.decoder")
    owners = dict(model.named_modules())
    return [
        f"{name}.{p}" if name else p
        for name in order[start:]
        for p, _ in owners[name].named_parameters(recurse=False)
    ]


def _forward_order(model: nn.Module, call) -> list[str]:
    """Module names that own parameters, in the order they first run during ``call()``."""
    owners = {
        name: module
        for name, module in model.named_modules()
        if any(True for _ in module.parameters(recurse=False))
    }
    return list(first_inputs(model, owners, call))
