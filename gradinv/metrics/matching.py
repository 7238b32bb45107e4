"""Pair reconstructions with originals when a batch's order is not known to the attacker."""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment


def match_order(originals: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """The permutation of reconstructions that minimizes the total MSE to the originals."""
    cost = torch.cdist(originals.flatten(1).double(), reconstructions.flatten(1).double()) ** 2
    _, columns = linear_sum_assignment(cost.numpy())
    return torch.as_tensor(columns)
