"""FedAvg's local training, written once for the client and for every attacker that simulates it.

A FedAvg client takes ``steps`` SGD steps of step size ``lr`` on its private batch, each on the
next ``batch_size`` images of an epoch's order (the whole batch when ``batch_size`` is None),
and shares the weight difference ``theta_0 - theta_T`` (the sum of the steps, so one
full-batch step is ``lr`` times FedSGD's gradient). The attacker runs the same function on its
candidates with ``create_graph`` and the client's per-step randomness (learned, replayed or
drawn), so that at the client's true inputs and draws it reproduces the shared update exactly.
A defense that changes how the client computes each step (DP-SGD's clipped, noised gradients)
hands the client its own step; the attacker, who cannot know the noise, simulates plain steps.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from gradinv.federated.gradients import StepGradients, step_gradients
from gradinv.federated.randomness import step_buffers, step_key
from gradinv.federated.update import LocalTraining
from gradinv.tensors import Tensors


def local_update(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    training: LocalTraining,
    names: list[str] | None = None,
    buffers: Tensors | None = None,
    create_graph: bool = False,
    gradients: StepGradients | None = None,
) -> tuple[Tensors, Tensors]:
    """``theta_0 - theta_T`` for the named parameters, and the randomness drawn at each step.

    ``buffers`` supplies step-keyed randomness (``step_key``); layers given none draw their
    own, which is recorded under the same keys. ``gradients`` computes each step (None: the
    plain gradient of the mean loss, with ``create_graph``).
    """
    if gradients is None:
        gradients = partial(step_gradients, create_graph=create_graph)
    start = dict(model.named_parameters())
    params = dict(start)
    drawn: Tensors = {}
    for step in range(training.steps):
        rows = training.rows(step, len(labels), images.device)
        grads, recorded = gradients(
            model, params, images[rows], labels[rows], step_buffers(buffers or {}, step)
        )
        params = {k: p - training.lr * grads[k] for k, p in params.items()}
        drawn.update({step_key(step, k): v for k, v in recorded.items()})
    wanted = list(start) if names is None else names
    return {k: start[k] - params[k] for k in wanted}, drawn
