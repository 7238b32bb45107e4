"""Look inside one forward pass: which modules run, in which order, on what inputs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def first_inputs(
    model: nn.Module, modules: dict[str, nn.Module], call: Callable[[], object]
) -> dict[str, torch.Tensor]:
    """The first input each of ``modules`` receives while ``call()`` runs ``model``, in run order.

    The pass runs in eval mode without gradients and leaves the RNG and the model's mode as
    they were.
    """
    seen: dict[str, torch.Tensor] = {}

    def recorder(name: str):
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            seen.setdefault(name, args[0])

        return hook

    handles = [module.register_forward_pre_hook(recorder(name)) for name, module in modules.items()]
    was_training = model.training
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            model.eval()
            call()
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return seen
