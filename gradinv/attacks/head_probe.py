"""What the attacker's copy of the model feeds its head on dummy inputs, for label inference.

LLG+ and the bias count need expectations over the client's data (the head's summed inputs, the
softmax); the attacker estimates them on standard-normal inputs in the model's input space.
"""

from __future__ import annotations

import torch
from torch import nn

DUMMY_INPUTS = 64  # standard-normal inputs forwarded through the model
DUMMY_SEED = 0  # one fixed draw: every victim and restart gets the same, deterministic estimate


def dummy_head_io(
    model: nn.Module, input_shape: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's inputs (flattened) and softmax outputs on ``DUMMY_INPUTS`` seeded dummy
    inputs, in the model's current mode; torch's global random state is left as it was."""
    captured: list[torch.Tensor] = []
    handle = model.head.register_forward_hook(lambda m, args, out: captured.append(args[0]))
    device = next(model.parameters()).device
    try:
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(DUMMY_SEED)
            logits = model(torch.randn((DUMMY_INPUTS, *input_shape)).to(device))
    finally:
        handle.remove()
    return captured[-1].flatten(1).double().cpu(), logits.softmax(dim=-1).double().cpu()
