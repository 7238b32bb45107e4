"""What the attack tests share: a tiny data spec, one client round per victim, an attack run
in-process with a quiet trainer, and the comparison of two runs' reconstructions."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from gradinv.attacks.base import AttackRuntime, ServerView
from gradinv.attacks.gradient_inversion import GradientInversion
from gradinv.data.spec import DataSpec
from gradinv.defenses.base import Defense
from gradinv.federated.client import FederatedClient
from gradinv.models.mlp import MLP

MNIST_LIKE = DataSpec("tiny", 1, 8, 10, (0.5,), (0.5,))


def quiet_trainer(callbacks: list) -> L.Trainer:
    return L.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, callbacks=callbacks,
        enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
    )


def shared_updates(model, spec: DataSpec, victims: int, batch: int = 1, client_mode: str = "train"):
    torch.manual_seed(1)
    client = FederatedClient(model, Defense(), mode=client_mode)
    images = torch.randn(victims, batch, *spec.shape)
    labels = torch.randint(0, spec.num_classes, (victims, batch))
    from gradinv.data.victims import VictimBatch

    return [client.share(VictimBatch(x, y, ()))[0] for x, y in zip(images, labels)]


def attack_images(
    attack: GradientInversion, model, spec: DataSpec, victims: int, client_mode: str = "train"
) -> list:
    torch.manual_seed(0)
    server = ServerView.of(model, spec, batch_statistics=client_mode == "train")
    updates = shared_updates(model, spec, victims, client_mode=client_mode)
    runtime = AttackRuntime(seed=3, make_trainer=quiet_trainer)
    return [rec for rec in attack.reconstruct(server, updates, runtime)]


def assert_same(first: list, second: list) -> None:
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a.images, b.images, atol=1e-4, rtol=1e-3)
        assert a.gradient_loss == pytest.approx(b.gradient_loss, rel=1e-3)
        assert a.iterations == b.iterations
        for key in a.masks or {}:
            torch.testing.assert_close(a.masks[key], b.masks[key], atol=1e-4, rtol=1e-3)


def mlp(dropout: float = 0.0) -> MLP:
    torch.manual_seed(0)
    return MLP(MNIST_LIKE.shape, 10, dropout=dropout, width=32, depth=2)
