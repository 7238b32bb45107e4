"""What the attack tests share: a tiny data spec, one client round per victim, an attack run
in-process with a quiet trainer, and the comparison of two runs' reconstructions."""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch

from gradinv.attacks.base import AttackRuntime, ServerView
from gradinv.attacks.engine import InversionEngine
from gradinv.attacks.gradient_inversion import GradientInversion
from gradinv.data.spec import DataSpec
from gradinv.defenses.base import Defense
from gradinv.errors import instantiate
from gradinv.federated.client import FederatedClient
from gradinv.models.mlp import MLP
from tests.helpers import option

MNIST_LIKE = DataSpec("tiny", 1, 8, 10, (0.5,), (0.5,))


def make_attack(
    name: str = "ig", cls: type | None = None, optim: dict[str, Any] | None = None, **fields: Any
):
    """The attack of ``conf/attack/<name>.yaml`` (the one set of defaults) with ``fields`` and
    ``optim`` fields replaced and, for a test's subclass, ``cls`` as its class."""
    cfg = option("attack", name)
    for key, value in fields.items():
        cfg[key] = value
    for key, value in (optim or {}).items():
        cfg.optim[key] = value
    if cls is not None:
        cfg._target_ = f"{cls.__module__}.{cls.__qualname__}"
    return instantiate(cfg)


def engine_for(
    attack: GradientInversion, server: ServerView, updates: list, device: str = "cpu"
) -> InversionEngine:
    """The engine of a fit over every update's first restart (victim v seeded by v), on ``device``."""
    problems = [attack.problem(server, v, 0, u, v) for v, u in enumerate(updates)]
    return InversionEngine(attack, server, problems, torch.device(device))


def quiet_trainer(callbacks: list) -> L.Trainer:
    return L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
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
        assert a.gradient_distance == pytest.approx(b.gradient_distance, rel=1e-3)
        assert a.iterations == b.iterations
        for key in a.masks or {}:
            torch.testing.assert_close(a.masks[key], b.masks[key], atol=1e-4, rtol=1e-3)


def mlp(dropout: float = 0.0) -> MLP:
    torch.manual_seed(0)
    return MLP(MNIST_LIKE.shape, 10, dropout=dropout, width=32, depth=2)
