"""What an optimization attack may learn besides the images, each typed by what it stands for.

An attack hands the optimization loop a ``Variable`` per extra tensor: the loop optimizes its
``value`` with Adam at ``lr``, clamps it to ``bounds`` after every step and, when ``buffer``
names a module buffer, substitutes it in the attacker's forward pass. Its type tells evaluation
what the value guesses: a ``DropoutMask`` is scored against the client's recorded mask, any
other kind is reported by the attack alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Variable:
    """A tensor optimized jointly with a problem's candidate images."""

    value: torch.Tensor
    lr: float | None = None  # Adam's step size; None: the images' lr
    bounds: tuple[float, float] | None = None  # clamp after each step; None: unconstrained
    buffer: str | None = None  # the module buffer it replaces in the forward pass, if any


@dataclass
class DropoutMask(Variable):
    """A learned dropout mask of one site, whose drop rate the site's configuration gives."""

    rate: float = 0.0  # the site's drop probability p


def dropout_masks(variables: dict[str, Variable]) -> dict[str, torch.Tensor]:
    """The values of the variables that guess dropout masks, by key."""
    return {key: v.value for key, v in variables.items() if isinstance(v, DropoutMask)}
