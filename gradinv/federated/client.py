"""The federated client: it trains on its private batch and shares the resulting update.

FedSGD shares one gradient of the training loss over the batch; FedAvg (``local_steps`` set)
takes local SGD steps (``gradinv.federated.local_update``) and shares ``theta_0 - theta_T``,
drawing its dropout masks and PRECODE samples anew at every step. A defense may compute each
of those gradients itself (``Defense.client_gradients``: DP-SGD clips and noises every step).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import lightning as L
import torch
from torch import nn

from gradinv.data.victims import VictimBatch
from gradinv.defenses.base import Defense
from gradinv.errors import ConfigError
from gradinv.federated.gradients import step_gradients, training_loss
from gradinv.federated.local_update import local_update
from gradinv.federated.randomness import unstepped
from gradinv.federated.update import LocalTraining, PrivateRecord, SharedUpdate
from gradinv.models.dropout import active_sites, mask_key
from gradinv.typecheck import positive_int

MODES = ("train", "eval")
NORMALIZATIONS = ("batch", "running")


class FederatedClient(L.LightningModule):
    """A FedSGD or FedAvg client; what it shares passes its defense first."""

    def __init__(
        self,
        model: nn.Module,
        defense: Defense,
        mode: str = "train",
        share_labels: bool = True,
        share_masks: bool = False,
        share_samples: bool = False,
        normalization: str | None = None,
        lr: float = 0.1,
        local_steps: int | None = None,
        local_lr: float = 1e-4,
        local_batch_size: int | None = None,
        shuffle: bool = False,
        share_order: bool = True,
    ) -> None:
        super().__init__()
        if local_steps is not None:
            check_local_fields(local_steps, local_lr, local_batch_size)
        if mode not in MODES:
            raise ConfigError(f"client.mode must be one of {MODES}, got '{mode}'.")
        if normalization not in (None, *NORMALIZATIONS):
            raise ConfigError(
                f"client.normalization must be one of {NORMALIZATIONS} or null (follow client.mode), "
                f"got '{normalization}'."
            )
        self.normalization = normalization
        self.model = model
        self.defense = defense
        self.mode = mode
        self.share_labels = share_labels
        self.share_masks = share_masks
        self.share_samples = share_samples
        self.lr = lr
        self.local_steps = local_steps
        self.local_lr = local_lr
        self.local_batch_size = local_batch_size
        self.shuffle = shuffle
        self.share_order = share_order

    def knowledge(self) -> dict[str, Any]:
        """What the server knows of the client's local procedure, recorded with every run."""
        if self.local_steps is None:
            return {"algorithm": "fedsgd"}
        return {
            "algorithm": "fedavg",
            "local_steps": self.local_steps,
            "local_lr": self.local_lr,
            "local_batch_size": self.local_batch_size,
            "data_order_known": self.share_order or not self.shuffle,
        }

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        loss = training_loss(self.model, self.model(images), labels)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_after_backward(self) -> None:
        """In training, the optimizer steps on the update the defense would let the client share."""
        if self.defense.perturbs_update:
            params = {k: p for k, p in self.model.named_parameters() if p.grad is not None}
            protected = self.defense.protect({k: p.grad for k, p in params.items()}, self.model)
            for name, gradient in protected.items():
                params[name].grad = gradient

    def test_step(self, batch, batch_idx: int) -> None:
        images, labels = batch
        accuracy = (self.model(images).argmax(dim=1) == labels).float().mean()
        self.log("test/accuracy", accuracy, batch_size=len(labels))

    def configure_optimizers(self):
        return torch.optim.SGD(self.model.parameters(), lr=self.lr)

    @property
    def batch_statistics(self) -> bool:
        """Whether batch norm normalizes with the batch's own statistics in this client's update:
        ``client.normalization`` when set, else as ``client.mode`` implies (train: yes)."""
        if self.normalization is None:
            return self.mode == "train"
        return self.normalization == "batch"

    def share(self, victim: VictimBatch) -> tuple[SharedUpdate, PrivateRecord]:
        """Compute this round's update on ``victim``; return it with the private ground truth.

        ``client.mode`` decides whether dropout is active; batch norm follows
        ``batch_statistics``, so the two need not switch together.
        """
        self.model.train(self.mode == "train")
        for module in self.model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.train(self.batch_statistics)
        images = victim.images.to(self.device)
        labels = victim.labels.to(self.device)
        training = self.local_training(len(labels))
        step = self.defense.client_gradients(len(labels), self.steps_per_image(len(labels)))
        if training is None:
            params = dict(self.model.named_parameters())
            gradients, drawn = (step or step_gradients)(self.model, params, images, labels, {})
        else:
            gradients, drawn = local_update(self.model, images, labels, training, gradients=step)
        gradients = self.defense.protect({k: g.detach() for k, g in gradients.items()}, self.model)
        dropout = {mask_key(site) for site in active_sites(self.model)}
        masks = {k: m.detach() for k, m in drawn.items() if unstepped(k) in dropout}
        samples = {k: s.detach() for k, s in drawn.items() if k not in masks}
        shared_training = training
        if training is not None and training.order is not None and not self.share_order:
            shared_training = replace(training, order=None)
        update = SharedUpdate(
            gradients=gradients,
            batch_size=len(labels),
            labels=labels.clone() if self.share_labels else None,
            masks=dict(masks) if self.share_masks else None,
            samples=dict(samples) if self.share_samples else None,
            local=shared_training,
        )
        order = None if training is None else training.order
        return update, PrivateRecord(images, labels, masks, victim.indices, samples, order)

    def steps_per_image(self, total: int) -> int:
        """The most gradient steps of a round on ``total`` images that any one image enters:
        1 under FedSGD, a FedAvg client's local steps over that image."""
        if self.local_steps is None:
            return 1
        return steps_per_image(
            self.local_steps, local_batch_size(self.local_batch_size, total), total
        )

    def privacy(self, total: int) -> dict[str, Any] | None:
        """The defense's privacy accounting of one round on ``total`` images (None without one)."""
        return self.defense.privacy(total, self.steps_per_image(total))

    def local_training(self, total: int) -> LocalTraining | None:
        """This round's FedAvg procedure for a batch of ``total`` images (None for FedSGD);
        with ``shuffle``, one permutation per epoch from torch's global (seeded) generator."""
        if self.local_steps is None:
            return None
        size = local_batch_size(self.local_batch_size, total)
        order = None
        if self.shuffle:
            epochs = -(-self.local_steps * size // total)
            order = tuple(tuple(torch.randperm(total).tolist()) for _ in range(epochs))
        return LocalTraining(self.local_steps, self.local_lr, size, order)


def check_local_fields(steps: int, lr: float, batch_size: int | None) -> None:
    """Stop early on local-training fields that cannot work, whatever the batch."""
    if not positive_int(steps):
        raise ConfigError(f"client.local_steps must be a positive integer, got {steps}.")
    if not lr > 0:
        raise ConfigError(f"client.local_lr must be positive, got {lr}.")
    if batch_size is not None and not positive_int(batch_size):
        raise ConfigError(
            f"client.local_batch_size must be a positive integer or null, got {batch_size}."
        )


def local_batch_size(batch_size: int | None, total: int) -> int:
    """The local batch size for a victim batch of ``total`` images, which it must divide."""
    size = total if batch_size is None else batch_size
    if total % size:
        raise ConfigError(
            f"client.local_batch_size={batch_size} must divide dataset.batch_size={total} "
            "(or be null: the whole batch at every step)."
        )
    return size


def steps_per_image(steps: int, batch_size: int, total: int) -> int:
    """The most of ``steps`` local steps of ``batch_size`` images that any one image of a batch
    of ``total`` enters: one per epoch begun."""
    return -(-steps // (total // batch_size))
