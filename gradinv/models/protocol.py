"""The model contract: what every architecture of the grid provides, checked when it is built.

Every model (``conf/model/<name>.yaml`` naming a ``_target_`` class) provides:

- a constructor ``(input_shape, num_classes, dropout=0.0, **fields)``: ``input_shape`` is the
  dataset's (C, H, W), ``dropout`` the p of every dropout site, the other fields are the YAML's;
  ``build_model`` draws its weights from the seed, so the constructor takes no seed;
- a forward pass from images (B, C, H, W) to logits (B, num_classes), or (B, 1) for a binary head;
- its classifier as the attribute ``head``, an ``nn.Linear`` that is the last parameterized layer
  to run: label inference reads the gradient of ``head.weight``, PRECODE puts its bottleneck at
  ``head``'s input, and the layers an aware attacker skips are traced from there;
- every dropout site as ``gradinv.models.dropout.MaskedDropout`` with p = ``dropout`` (and any
  other randomness as a ``gradinv.models.stochastic.StochasticLayer``), never ``torch.nn.Dropout``
  and its kin: the client records masks, the attacker replays or learns them;
- attention written out with its weights as tensors (as ``gradinv.models.vit.Attention``), never
  ``nn.MultiheadAttention`` or ``F.scaled_dot_product_attention``: neither has a double backward
  on CPU, which gradient matching needs, and both hide the weights a dropout site acts on.

R-GAP (``attack=rgap``) additionally needs the model to be a chain it can invert: a Sequential
``features`` of convolutions and linear layers, each followed by one LeakyReLU with a positive
slope and optionally a MaskedDropout (flatten allowed), then ``head``; no normalization, pooling,
attention or residual sums. ``gradinv.attacks.rgap_chain.read_chain`` checks that part when
R-GAP reads the model, since the other attacks do not need it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from gradinv.data.spec import DataSpec
from gradinv.errors import ConfigError

#: torch's dropout modules, which draw masks no one can record or supply.
TORCH_DROPOUT = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)
#: Why attention must be written out, closing the refusals of fused attention.
WRITE_OUT = (
    "which has no double backward on CPU: write attention out as gradinv.models.vit.Attention does"
)


def check_model(model: nn.Module, spec: DataSpec, name: str) -> None:
    """Check ``model`` (built for ``spec``) against the contract above; a ConfigError names the gap.

    One forward pass of zeros in eval mode checks the output shape, that ``head`` runs last and
    that no module calls ``F.scaled_dot_product_attention``; it leaves the model in eval mode.
    """
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        found = "none" if head is None else type(head).__name__
        raise ConfigError(
            f"model={name} needs its classifier as an nn.Linear attribute 'head', found {found}."
        )
    for site, module in model.named_modules():
        if isinstance(module, TORCH_DROPOUT):
            raise ConfigError(
                f"model={name} has torch's {type(module).__name__} at '{site}', where every dropout "
                "site must be gradinv.models.dropout.MaskedDropout."
            )
        if isinstance(module, nn.MultiheadAttention):
            raise ConfigError(f"model={name} has nn.MultiheadAttention at '{site}', {WRITE_OUT}.")
    with _Trace(model) as trace:
        logits = _fitting_logits(model, spec, name)
    if trace.attention is not None:
        raise ConfigError(
            f"model={name} calls F.scaled_dot_product_attention in '{trace.attention}', {WRITE_OUT}."
        )
    if trace.order[-1] != "head":
        raise ConfigError(
            f"model={name} runs '{trace.order[-1]}' after 'head', which must be the last "
            "parameterized layer to run."
        )
    if logits.shape not in ((2, spec.num_classes), (2, 1)):
        raise ConfigError(
            f"model={name} gives outputs of shape {tuple(logits.shape[1:])} "
            f"where dataset={spec.name} needs ({spec.num_classes},), or (1,) for a binary head."
        )


def _fitting_logits(model: nn.Module, spec: DataSpec, name: str) -> torch.Tensor:
    try:
        with torch.no_grad():
            return model.eval()(torch.zeros(2, *spec.shape))
    except RuntimeError as error:
        raise ConfigError(
            f"model={name} does not fit dataset={spec.name} of shape {spec.shape}: {error}"
        ) from error


class _Trace(TorchFunctionMode):
    """During one forward pass: the parameterized modules in the order they start (``order``)
    and the innermost module that calls ``F.scaled_dot_product_attention`` (``attention``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.order: list[str] = []
        self.attention: str | None = None
        self._running: list[str] = []
        self._handles = [
            handle
            for name, module in model.named_modules()
            for handle in (
                module.register_forward_pre_hook(self._enter(name, _owns_parameters(module))),
                module.register_forward_hook(self._leave),
            )
        ]

    def _enter(self, name: str, parameterized: bool) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any) -> None:
            self._running.append(name)
            if parameterized:
                self.order.append(name)

        return hook

    def _leave(self, module: nn.Module, args: Any, output: Any) -> None:
        self._running.pop()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.scaled_dot_product_attention and self.attention is None:
            self.attention = self._running[-1] if self._running else "forward"
        return func(*args, **(kwargs or {}))

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        super().__exit__(*exc)


def _owns_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False))
