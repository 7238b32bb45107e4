"""DP-SGD (Abadi et al., CCS 2016) as the client's defense, with its privacy budget epsilon.

At every gradient step of a round (FedSGD's one, each of FedAvg's local steps) the client clips
each example's gradient to L2 norm ``clip``, sums them, adds Gaussian noise of std
``noise_multiplier x clip`` and divides by the step's batch size, as Opacus' DPOptimizer does.
Epsilon at ``delta`` comes from Opacus' accountant (``gradinv.defenses.accounting``); a target
``epsilon`` is turned into the noise multiplier by Opacus' search.

Per-example gradients come from ``torch.func``: ``grad`` vmapped over the batch, as in Opacus'
functorch mode, after one forward pass of the whole batch that draws its dropout masks (and
other randomness) as the plain client would; each example then runs with its own rows of them.
The noise comes from torch's CPU generator (``add_noise``), so a seed gives the same update on
every device. The attacker cannot know the noise: it simulates the noiseless, unclipped steps.
"""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from gradinv.defenses.accounting import ACCOUNTANTS, RoundAccounting
from gradinv.defenses.base import Defense
from gradinv.defenses.perturbation import add_noise
from gradinv.errors import ConfigError
from gradinv.federated.gradients import StepGradients, step_gradients, training_loss
from gradinv.models.stochastic import recording_randomness
from gradinv.tensors import Tensors

log = logging.getLogger(__name__)


class DPSGD(Defense):
    """Per-example clipping and Gaussian noise at every step; ``noise_multiplier`` or a target
    ``epsilon`` (exactly one), accounted at ``delta`` for a batch drawn from ``dataset_size``
    examples (None: the batch is all the client's data, sample rate 1)."""

    perturbs_update = True
    acts_per_example = True

    def __init__(
        self,
        clip: float = 1.0,
        noise_multiplier: float | None = None,
        epsilon: float | None = None,
        delta: float = 1e-5,
        dataset_size: int | None = None,
        accountant: str = "rdp",
    ) -> None:
        if not clip > 0:
            raise ConfigError(f"defense.clip must be a positive number, got {clip}.")
        if (noise_multiplier is None) == (epsilon is None):
            raise ConfigError(
                "defense.noise_multiplier and defense.epsilon: give exactly one (the other null), "
                f"got noise_multiplier={noise_multiplier}, epsilon={epsilon}."
            )
        if noise_multiplier is not None and not 0 <= noise_multiplier < math.inf:
            raise ConfigError(
                f"defense.noise_multiplier must be a non-negative finite number, got {noise_multiplier}."
            )
        if epsilon is not None and not 0 < epsilon < math.inf:
            raise ConfigError(
                f"defense.epsilon must be a positive finite number, got {epsilon}; for no noise "
                "(epsilon infinite) set defense.epsilon=null defense.noise_multiplier=0."
            )
        if math.isinf(clip) and noise_multiplier != 0:
            raise ConfigError(
                "defense.clip=inf leaves each example's gradient unbounded, which no noise makes "
                "private: give a finite clip, or defense.noise_multiplier=0."
            )
        if not 0 < delta < 1:
            raise ConfigError(f"defense.delta must lie in (0, 1), got {delta}.")
        if dataset_size is not None and dataset_size < 1:
            raise ConfigError(
                f"defense.dataset_size must be a positive integer or null, got {dataset_size}."
            )
        if accountant not in ACCOUNTANTS:
            raise ConfigError(
                f"defense.accountant must be one of {', '.join(ACCOUNTANTS)}, got {accountant!r}."
            )
        if dataset_size is None:
            log.info(
                "defense=dpsgd: defense.dataset_size is null, so the round's batch is all the "
                "client's data: sampling amplifies nothing (sample rate 1)."
            )
        self.clip = float(clip)
        self.noise_multiplier = None if noise_multiplier is None else float(noise_multiplier)
        self.epsilon = None if epsilon is None else float(epsilon)
        self.delta = float(delta)
        self.dataset_size = dataset_size
        self.accountant = accountant

    def accounting(self, batch_size: int, steps: int) -> RoundAccounting:
        """The round's accounting: a batch of ``batch_size`` from ``dataset_size`` examples,
        each in at most ``steps`` noisy steps."""
        if self.dataset_size is not None and self.dataset_size < batch_size:
            raise ConfigError(
                f"defense.dataset_size={self.dataset_size} must be at least dataset.batch_size="
                f"{batch_size}: the round's batch is drawn from the client's dataset."
            )
        rate = 1.0 if self.dataset_size is None else batch_size / self.dataset_size
        return RoundAccounting(rate, steps, self.delta, self.accountant)

    def sigma(self, batch_size: int, steps: int) -> float:
        """The noise multiplier of every step: as configured, or found for the target epsilon."""
        if self.noise_multiplier is not None:
            return self.noise_multiplier
        return self.accounting(batch_size, steps).noise_multiplier(self.epsilon)

    def client_gradients(self, batch_size: int, steps: int) -> StepGradients:
        return partial(
            private_gradients, clip=self.clip, noise_multiplier=self.sigma(batch_size, steps)
        )

    def privacy(self, batch_size: int, steps: int) -> dict[str, Any]:
        """Epsilon at delta of one round and what it was computed from; epsilon is null (infinite)
        without noise."""
        accounting = self.accounting(batch_size, steps)
        sigma = self.sigma(batch_size, steps)
        epsilon = accounting.epsilon(sigma)
        return {
            "mechanism": "dp-sgd",
            "epsilon": epsilon if math.isfinite(epsilon) else None,
            "delta": self.delta,
            "target_epsilon": self.epsilon,
            "noise_multiplier": sigma,
            "clip": self.clip,
            "accountant": self.accountant,
            "sample_rate": accounting.sample_rate,
            "dataset_size": self.dataset_size,
            "noisy_steps": steps,
        }


def private_gradients(
    model: nn.Module,
    params: Tensors,
    images: torch.Tensor,
    labels: torch.Tensor,
    buffers: Tensors,
    clip: float,
    noise_multiplier: float,
) -> tuple[Tensors, Tensors]:
    """One DP-SGD step's gradients (``StepGradients``) and the randomness drawn for the batch."""
    per_example, drawn = per_example_gradients(model, params, images, labels, buffers)
    return clip_and_noise(per_example, clip, noise_multiplier), drawn


def per_example_gradients(
    model: nn.Module, params: Tensors, images: torch.Tensor, labels: torch.Tensor, buffers: Tensors
) -> tuple[Tensors, Tensors]:
    """Each example's gradient of the training loss, stacked along a first dimension, and the
    randomness drawn for the batch. A batch of one is its own example (its plain gradient)."""
    if len(labels) == 1:
        gradients, drawn = step_gradients(model, params, images, labels, buffers)
        return {k: g.unsqueeze(0) for k, g in gradients.items()}, drawn
    check_independent_examples(model, len(labels))
    with torch.no_grad(), recording_randomness(model) as drawn:
        functional_call(model, {**params, **buffers}, (images,))
    randomness = {**drawn, **buffers}
    detached = {k: p.detach() for k, p in params.items()}

    def example_loss(
        params: Tensors, image: torch.Tensor, label: torch.Tensor, rows: Tensors
    ) -> torch.Tensor:
        given = {k: r.unsqueeze(0) for k, r in rows.items()}
        logits = functional_call(model, {**params, **given}, (image.unsqueeze(0),))
        return training_loss(model, logits, label.unsqueeze(0))

    return vmap(grad(example_loss), in_dims=(None, 0, 0, 0))(
        detached, images, labels, randomness
    ), drawn


def check_independent_examples(model: nn.Module, batch_size: int) -> None:
    """Per-example gradients need examples that do not interact: no batch norm on the batch's
    own statistics (which Opacus refuses too)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and (
            module.training or module.running_mean is None
        ):
            raise ConfigError(
                f"defense=dpsgd clips each example's gradient, which batch norm on batch statistics "
                f"({name}) makes depend on the other {batch_size - 1} examples of the step: set "
                "client.normalization=running, or use a model without batch norm (or batches of one image)."
            )


def clip_and_noise(per_example: Tensors, clip: float, noise_multiplier: float) -> Tensors:
    """Clip each example's gradient (all parameters together) to L2 norm ``clip``, sum, add
    N(0, (noise_multiplier x clip)^2) per entry, divide by the batch size (Opacus' factor
    ``clip / (norm + 1e-6)``, capped at 1). Without noise nothing is drawn, so the client's
    later draws (the next step's dropout masks) are the plain client's."""
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in per_example.values()], dim=1).norm(dim=1)
    factors = (clip / (norms + 1e-6)).clamp(max=1.0)
    summed = {k: torch.einsum("i,i...->...", factors, g) for k, g in per_example.items()}
    if noise_multiplier:
        summed = add_noise(summed, summed, noise_multiplier * clip)
    return {k: g / len(norms) for k, g in summed.items()}
