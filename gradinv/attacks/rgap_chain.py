"""Read a model as the chain R-GAP can invert: linear maps, each with an invertible activation.

R-GAP walks ``model.features`` and ``model.head``: the part of the model contract
(``gradinv.models.protocol``) that only R-GAP needs, checked here rather than at build time.
Not every model has a Sequential ``features`` (the ViT has none); R-GAP's own models cnn6,
cnn6d and fcn3 are such chains.

Every convolution and linear layer becomes a ``Step`` written as a convolution (a linear layer
is a 1x1 convolution on a 1x1 image), in float64 on the CPU (R-GAP's least-squares solves run
there through LAPACK, for a model on any device). Any layer it cannot invert stops the run with
one sentence naming the layer and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import torch
from torch import nn

from gradinv.errors import ConfigError
from gradinv.models.dropout import MaskedDropout, mask_key

NORMS = (
    nn.modules.batchnorm._BatchNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
)
POOLS = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
)
ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Mish,
    nn.Hardswish,
    nn.PReLU,
)
PASS_THROUGH = (nn.Flatten, nn.Identity)


@dataclass
class Step:
    """One linear map of the chain as a convolution, its activation and its dropout site."""

    name: str
    weight: torch.Tensor  # (out, in, kh, kw), float64
    bias: torch.Tensor | None
    stride: tuple[int, int]
    padding: tuple[int, int]
    in_shape: tuple[int, int, int]  # (C, H, W) of the layer's input
    out_shape: tuple[int, int, int]
    slope: float | None = None  # LeakyReLU slope; None = no activation
    dropout: tuple[str, float] | None = None  # (mask key, p) of an active dropout site

    @property
    def unknowns(self) -> int:
        return self.in_shape[0] * self.in_shape[1] * self.in_shape[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's pre-activation for a batch of inputs shaped like ``in_shape``."""
        return torch.nn.functional.conv2d(x, self.weight, self.bias, self.stride, self.padding)


def refuse(name: str, module: nn.Module, why: str) -> ConfigError:
    return ConfigError(
        f"attack=rgap cannot handle layer '{name}' ({type(module).__name__}): {why}."
    )


def _reason(module: nn.Module) -> str | None:
    """Why R-GAP cannot invert ``module``, or None if it can."""
    if isinstance(module, NORMS):
        return "normalization mixes the input with statistics that are not linear constraints"
    if isinstance(module, nn.MultiheadAttention) or "Attention" in type(module).__name__:
        return "attention multiplies inputs with each other, so its constraints are not linear"
    if isinstance(module, POOLS):
        return "pooling that is not a strided convolution has no linear inverse"
    if isinstance(module, ACTIVATIONS):
        return "its activation is not invertible (R-GAP needs LeakyReLU with a positive slope)"
    if isinstance(module, nn.LeakyReLU) and module.negative_slope <= 0:
        return "a LeakyReLU with a non-positive slope is not invertible"
    if isinstance(module, nn.Dropout) and module.p > 0:
        return "torch dropout never reveals its mask (use gradinv's MaskedDropout)"
    if isinstance(module, nn.Conv2d) and (
        module.groups != 1
        or module.dilation != (1, 1)
        or module.padding_mode != "zeros"
        or isinstance(module.padding, str)
    ):
        return "only plain convolutions (groups 1, dilation 1, numeric zero padding) are supported"
    supported = (nn.Conv2d, nn.Linear, nn.LeakyReLU, nn.Dropout, MaskedDropout, *PASS_THROUGH)
    if not isinstance(module, supported):
        return "it is not a convolution, linear layer, LeakyReLU, dropout or flatten"
    return None


def _leaves(module: nn.Module, prefix: str):
    """The modules of nested Sequentials in forward order; other composites are refused whole."""
    for name, child in module.named_children():
        full = f"{prefix}.{name}"
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, full)
            continue
        if _reason(child) is None or not list(child.children()):
            yield full, child
            continue
        for inner, sub in child.named_modules(prefix=full):
            if inner != full and _reason(sub) is not None and not list(sub.children()):
                raise refuse(inner, sub, _reason(sub))
        raise refuse(
            full, child, "a block with its own forward (e.g. a residual sum) is not a chain"
        )


def _step(name: str, layer: nn.Module, in_shape: tuple[int, ...]) -> Step:
    weight = (
        layer.weight.detach().cpu().double()
    )  # R-GAP solves on the CPU, whatever the model's device
    bias = None if layer.bias is None else layer.bias.detach().cpu().double()
    if isinstance(layer, nn.Linear):
        shape = (int(torch.tensor(in_shape).prod()), 1, 1)
        weight, stride, padding = weight[:, :, None, None], (1, 1), (0, 0)
    else:
        shape, stride, padding = tuple(in_shape), layer.stride, layer.padding
    step = Step(name, weight, bias, tuple(stride), tuple(padding), shape, shape)
    step.out_shape = tuple(step.forward(torch.zeros(1, *shape, dtype=torch.float64)).shape[1:])
    return step


def read_chain(model: nn.Module, input_shape: tuple[int, int, int]) -> list[Step]:
    """The model's steps from input to head (the head last), or a ConfigError naming a layer."""
    features, head = getattr(model, "features", None), getattr(model, "head", None)
    if not isinstance(features, nn.Sequential) or not isinstance(head, nn.Linear):
        for name, module in model.named_modules():
            if (
                isinstance(module, (*NORMS, *POOLS, nn.MultiheadAttention))
                or "Attention" in type(module).__name__
            ):
                raise refuse(name, module, _reason(module))
        raise ConfigError(
            "attack=rgap needs a model made of a Sequential 'features' and a linear 'head', "
            "as gradinv.models.protocol describes for R-GAP."
        )
    steps: list[Step] = []
    shape: tuple[int, ...] = tuple(input_shape)
    walked: set[str] = set()
    for name, module in chain(_leaves(features, "features"), [("head", head)]):
        walked.add(name)
        why = _reason(module)
        if why is not None:
            raise refuse(name, module, why)
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            steps.append(_step(name, module, shape))
            shape = steps[-1].out_shape
        elif isinstance(module, nn.LeakyReLU):
            if not steps or steps[-1].slope is not None or steps[-1].dropout is not None:
                raise refuse(name, module, "R-GAP expects one activation right after each layer")
            steps[-1].slope = float(module.negative_slope)
        elif isinstance(module, MaskedDropout) and module.p > 0:
            if not steps:
                raise refuse(name, module, "dropout on the input itself cannot be inverted")
            steps[-1].dropout = (mask_key(name), module.p)
    _refuse_what_the_chain_skips(model, walked)
    return steps


def _refuse_what_the_chain_skips(model: nn.Module, walked: set[str]) -> None:
    """Refuse layers outside ``features`` -> ``head`` (e.g. PRECODE's bottleneck) and hooks on the
    chain: they change the forward pass without R-GAP seeing them."""
    modules = list(model.named_modules())
    for name, module in modules:
        inside = name in walked or any(name.startswith(f"{w}.") for w in walked)
        if name and not list(module.children()) and not inside:
            raise refuse(name, module, "it lies outside the features -> head chain R-GAP inverts")
    for name, module in modules:
        if name in walked and (module._forward_pre_hooks or module._forward_hooks):
            raise refuse(name, module, "a hook changes its input or output outside the chain")
