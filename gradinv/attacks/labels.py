"""Label recovery from the classifier head's gradient when the threat model withholds labels.

``attack.label_inference`` picks the method: ``idlg`` (one image, Zhao et al. 2020); for batches
with repeated labels ``geng`` (the head's bias gradient, Geng et al. 2021,
``gradinv.attacks.bias_count``), ``llg`` and ``llg+`` (its weight gradient, Wainakh et al. 2022,
``gradinv.attacks.llg``); or ``auto``: iDLG at batch size 1, else the bias count where the head
has a bias (it assumes nothing about the features), else LLG+.
"""

from __future__ import annotations

import torch
from torch import nn

from gradinv.attacks.bias_count import bias_count_labels
from gradinv.attacks.llg import llg_labels, llg_plus_labels
from gradinv.errors import ConfigError
from gradinv.federated.update import SharedUpdate

LABEL_INFERENCE = ("auto", "idlg", "geng", "llg", "llg+")


def check_label_inference(method: str) -> str:
    """``method`` if it names a label inference method; else one ConfigError sentence."""
    if method not in LABEL_INFERENCE:
        raise ConfigError(
            f"attack.label_inference must be one of {list(LABEL_INFERENCE)}, got '{method}'."
        )
    return method


def idlg_label(head_gradient: torch.Tensor) -> torch.Tensor:
    """The label of a single image from the head's weight gradient (Zhao et al. 2020, iDLG).

    Row c of the gradient is (softmax_c - onehot_c) times the shared feature vector, so the true
    class's row points against all others: it has the most negative summed inner product.
    """
    rows = head_gradient.flatten(1)
    gram = rows @ rows.T
    return (gram.sum(dim=1) - gram.diagonal()).argmin().view(1)


def infer_labels(
    model: nn.Module, input_shape: tuple[int, ...], update: SharedUpdate, method: str = "auto"
) -> torch.Tensor:
    """The batch's labels inferred from ``update``'s head gradient by ``method``; LLG's come
    sorted by class (no method knows which image carries which label).

    A FedAvg update (``theta_0 - theta_T``) is first divided by ``local_lr * local_steps``,
    which the server knows: the mean gradient over the local steps, the quantity the counts
    of Geng et al. (2021) and Wainakh et al. (2022) read (exact for one full-batch step).
    """
    scale = 1.0 if update.local is None else update.local.lr * update.local.steps
    gradient = _head_gradient(model, update) / scale
    batch_size = update.batch_size
    bias = update.gradients.get("head.bias")
    bias = None if bias is None else bias / scale
    if check_label_inference(method) == "auto":
        method = "idlg" if batch_size == 1 else "llg+" if bias is None else "geng"
    if method == "idlg":
        if batch_size != 1:
            raise ConfigError(
                f"attack.label_inference=idlg needs dataset.batch_size=1, got {batch_size}; "
                "use geng, llg or llg+ for batches."
            )
        return idlg_label(gradient)
    if method == "geng":
        if bias is None:
            raise ConfigError(
                "attack.label_inference=geng needs the shared gradient of 'head.bias', and this "
                "model's head has no bias (or it is not shared); use llg or llg+."
            )
        labels = bias_count_labels(model, input_shape, bias, batch_size)
    elif method == "llg":
        labels = llg_labels(gradient, batch_size)
    else:
        labels = llg_plus_labels(model, input_shape, gradient, batch_size)
    return labels.to(gradient.device)


def attack_labels(
    model: nn.Module,
    input_shape: tuple[int, ...],
    update: SharedUpdate,
    labels_known: bool,
    method: str = "auto",
) -> torch.Tensor:
    """The labels an attack works with: shared if the threat model grants them, else inferred."""
    if labels_known:
        if update.labels is None:
            raise ConfigError(
                "threat.labels=true needs a client that shares labels (client.share_labels=true)."
            )
        return update.labels
    return infer_labels(model, input_shape, update, method)


def _head_gradient(model: nn.Module, update: SharedUpdate) -> torch.Tensor:
    """The shared gradient of ``head.weight``, checked to come from a multiclass linear head."""
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear) or "head.weight" not in update.gradients:
        raise ConfigError(
            "threat.labels=false needs a model with a linear 'head' whose gradient is shared."
        )
    if head.out_features == 1:
        raise ConfigError(
            "threat.labels=false needs model.head=multiclass: a binary head reveals "
            "only the label's parity."
        )
    return update.gradients["head.weight"]
