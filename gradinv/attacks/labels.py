"""Label recovery from the classifier head's gradient when the threat model withholds labels."""

from __future__ import annotations

import torch
from torch import nn

from gradinv.errors import ConfigError
from gradinv.federated.update import SharedUpdate


def infer_labels(head_gradient: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The label of a single image from the head's weight gradient (Zhao et al. 2020, iDLG).

    Row c of the gradient is (softmax_c - onehot_c) times the shared feature vector, so the true
    class's row points against all others: it has the most negative summed inner product.
    """
    if batch_size != 1:
        raise ConfigError(
            "threat.labels=false needs dataset.batch_size=1 (labels are inferred per image)."
        )
    rows = head_gradient.flatten(1)
    gram = rows @ rows.T
    return (gram.sum(dim=1) - gram.diagonal()).argmin().view(1)


def attack_labels(model: nn.Module, update: SharedUpdate, labels_known: bool) -> torch.Tensor:
    """The labels an attack works with: shared ones if the threat model grants them, else inferred."""
    if labels_known:
        if update.labels is None:
            raise ConfigError("attack.labels_known=true needs a client that shares labels.")
        return update.labels
    key = "head.weight"
    if not isinstance(getattr(model, "head", None), nn.Linear) or key not in update.gradients:
        raise ConfigError(
            "threat.labels=false needs a model with a linear 'head' whose gradient is shared."
        )
    return infer_labels(update.gradients[key], update.batch_size)
