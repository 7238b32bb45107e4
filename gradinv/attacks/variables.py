"""What an optimization attack may learn besides the images, each typed by what it stands for.

An attack hands the optimization loop a ``Variable`` per extra tensor: the loop optimizes its
``value`` with Adam at ``lr``, clamps it to ``bounds`` after every step and, when ``buffer``
names a module buffer, substitutes it in the attacker's forward pass. Its type tells evaluation
what the value guesses: a ``DropoutMask`` is scored against the client's recorded mask;
``LabelLogits`` replace the problem's labels in the training loss by their softmax (DLG's
learned soft labels) and their argmax is the attack's label guess.
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


@dataclass
class LabelLogits(Variable):
    """Learned logits of the batch's labels (batch x classes); the loss sees their softmax."""


def learned_labels(variables: dict[str, Variable]) -> torch.Tensor | None:
    """The logits of a ``LabelLogits`` variable, if the attack learns the labels."""
    found = [v.value for v in variables.values() if isinstance(v, LabelLogits)]
    return found[0] if found else None


def dropout_masks(variables: dict[str, Variable]) -> dict[str, torch.Tensor]:
    """The values of the variables that guess dropout masks, by key."""
    return {key: v.value for key, v in variables.items() if isinstance(v, DropoutMask)}
