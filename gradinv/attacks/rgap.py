"""R-GAP (Zhu & Blaschko, ICLR 2021): closed-form recursive reconstruction from one gradient.

From the head back to the input: the head's gradient is the outer product of the logits'
gradient g and the features h, so h = dW[r] / g_r, where the scalar g_r solves
g_r = dL/dz_r(W h); then for each layer, invert its dropout (known mask) and LeakyReLU, and
solve in least squares for its input from the weight-gradient and forward constraints
(``gradinv.attacks.constraints``). All of it runs in float64 on the float32 shared gradient.
No optimizer and no Trainer: the answer is exact up to the rank of each layer's system.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.optimize
import torch
from torch.nn.grad import conv2d_input

from gradinv.attacks.base import Attack, AttackRuntime, Reconstruction, ServerView
from gradinv.attacks.constraints import layer_system
from gradinv.attacks.labels import attack_labels
from gradinv.attacks.rank import rank_row
from gradinv.attacks.rgap_chain import Step, read_chain
from gradinv.errors import ConfigError
from gradinv.federated.gradients import output_loss, parameter_gradients
from gradinv.federated.update import SharedUpdate

#: The head's scalar g_r = +-sigmoid(t) is bracketed on this grid of t before root finding.
SCALAR_GRID = np.linspace(-40.0, 40.0, 801)


class RGAP(Attack):
    """Recursive Gradient Attack on Privacy for batch size 1 on chains of conv/linear + LeakyReLU."""

    #: R-GAP solves the exact gradient's equations: defenses that perturb it are refused.
    needs_exact_update = True
    #: ``Reconstruction.gradient_distance`` is ``gradient_residual``'s relative squared distance.
    gradient_metric = "gradient_relative_squared_distance"

    def __init__(
        self, labels_known: bool = True, masks_known: bool = False, **optimization: Any
    ) -> None:
        """``optimization``: the optimization attacks' fields (null in rgap.yaml), which one sweep
        may set for the attacks beside R-GAP; it has no use for them (a run drops and logs them)."""
        self.labels_known = labels_known
        self.masks_known = masks_known
        self.rank_table: list[dict[str, Any]] = []

    def knowledge(self) -> dict[str, Any]:
        return {"labels_known": self.labels_known, "masks_known": self.masks_known}

    def report(self) -> dict[str, Any]:
        """The first victim's rank table and whether every layer is determined."""
        full = all(row["verdict"] == "full" for row in self.rank_table)
        return {"rank": self.rank_table, "full_rank": full}

    def reconstruct(
        self, server: ServerView, updates: Sequence[SharedUpdate], runtime: AttackRuntime
    ) -> list[Reconstruction]:
        steps = read_chain(server.model, server.spec.shape)
        dtype = next(server.model.parameters()).dtype
        results = []
        for victim, update in enumerate(updates):
            labels = self._labels(server, update)
            image, table = invert(steps, update, labels, server.spec.shape)
            image = image.to(dtype)
            if victim == 0:
                self.rank_table = table
            results.append(
                Reconstruction(
                    images=image,
                    labels=labels,
                    gradient_distance=gradient_residual(server, update, image, labels),
                    iterations=0,
                )
            )
        return results

    def _labels(self, server: ServerView, update: SharedUpdate) -> torch.Tensor:
        if update.batch_size != 1:
            raise ConfigError(f"attack=rgap needs dataset.batch_size=1, got {update.batch_size}.")
        return attack_labels(server.model, server.spec.shape, update, self.labels_known).cpu()


def _gradient(update: SharedUpdate, step: Step) -> torch.Tensor:
    key = f"{step.name}.weight"
    if key not in update.gradients:
        raise ConfigError(f"attack=rgap needs the shared gradient of '{key}'.")
    return update.gradients[key].detach().cpu().double()


def logit_gradient(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """dL/dlogits of the training loss, per row of ``logits`` (one sample each)."""
    logits = logits.detach().requires_grad_(True)
    loss = output_loss(logits, labels.expand(len(logits)))
    return torch.autograd.grad(loss, logits)[0] * len(logits)


def solve_head(head: Step, weight_grad: torch.Tensor, labels: torch.Tensor):
    """The head's input h and the logits' gradient g from dW = g h^T (the scalar equation)."""
    weight = head.weight[:, :, 0, 0]
    bias = torch.zeros(len(weight), dtype=torch.float64) if head.bias is None else head.bias
    row = 0 if len(weight) == 1 else int(labels[0])
    u = weight_grad[row]

    def mismatch(s: np.ndarray) -> np.ndarray:
        s = torch.as_tensor(np.atleast_1d(s), dtype=torch.float64)
        logits = (u[None] / s[:, None]) @ weight.T + bias
        return (logit_gradient(logits, labels)[:, row] - s).numpy()

    candidates = []
    for sign in (-1.0, 1.0):
        grid = sign / (1 + np.exp(-SCALAR_GRID))
        values = mismatch(grid)
        for i in np.flatnonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0):
            candidates.append(
                scipy.optimize.brentq(lambda s: mismatch(s)[0], grid[i], grid[i + 1], xtol=1e-300)
            )
    if not candidates:
        raise ConfigError("attack=rgap found no solution of the head's scalar equation.")

    def solution(s: float):
        h = u / s
        g = logit_gradient((h @ weight.T + bias)[None], labels)[0]
        return h, g, float(torch.linalg.norm(torch.outer(g, h) - weight_grad))

    return min((solution(s) for s in candidates), key=lambda hgr: hgr[2])[:2]


def invert(
    steps: list[Step], update: SharedUpdate, labels: torch.Tensor, image_shape: tuple[int, ...]
) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The input image (1, C, H, W) recovered from ``update``, and the rank table (input first)."""
    head = steps[-1]
    features, logits_grad = solve_head(head, _gradient(update, head), labels)
    grad = head.weight[:, :, 0, 0].T @ logits_grad
    table = [
        rank_row(
            head.name,
            head.unknowns,
            head.weight.numel(),
            0,
            head.unknowns if bool(logits_grad.any()) else 0,
        )
    ]
    for step in reversed(steps[:-1]):
        output, grad = features.view(step.out_shape), grad.view(step.out_shape)
        known = torch.ones(step.out_shape, dtype=torch.bool)
        if step.dropout is not None:
            output, grad, known = _undo_dropout(step, update, output, grad)
        if step.slope is not None:
            positive = output > 0
            output = torch.where(positive, output, output / step.slope)
            grad = grad * torch.where(positive, 1.0, step.slope)
        system = layer_system(step, output, known, grad, _gradient(update, step))
        features, rank = system.solve()
        table.insert(
            0,
            rank_row(
                step.name,
                step.unknowns,
                system.weight_gradient_constraints,
                system.forward_constraints,
                rank,
            ),
        )
        grad = conv2d_input((1, *step.in_shape), step.weight, grad[None], step.stride, step.padding)
    return features.view(1, *image_shape), table


def _undo_dropout(step: Step, update: SharedUpdate, output: torch.Tensor, grad: torch.Tensor):
    """Divide the known mask out of the activation and into its gradient; dropped units are unknown."""
    key, p = step.dropout
    if update.masks is None or key not in update.masks:
        raise ConfigError(
            f"attack=rgap cannot handle layer '{key[: -len('.mask')]}' (MaskedDropout, p={p}): its "
            "mask is unknown; set threat.masks=true or model.dropout=0."
        )
    scale = update.masks[key][0].detach().cpu().double().reshape(step.out_shape) / (1 - p)
    known = scale != 0
    return torch.where(known, output / scale.clamp_min(1e-300), 0.0), grad * scale, known


def gradient_residual(
    server: ServerView, update: SharedUpdate, image: torch.Tensor, labels: torch.Tensor
) -> float:
    """Relative squared distance between the reconstruction's gradient and the shared one."""
    server.model.eval()
    device = next(server.model.parameters()).device
    buffers = {k: m.to(device) for k, m in (update.masks or {}).items()}
    grads = parameter_gradients(
        server.model, image.to(device), labels.to(device), list(update.gradients), buffers
    )
    num = sum(float((grads[k] - g).pow(2).sum()) for k, g in update.gradients.items())
    den = sum(float(g.pow(2).sum()) for g in update.gradients.values())
    return num / den if den else num
