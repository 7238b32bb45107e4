"""The replay invariant over the whole grid: the attacker's simulation is the client's function.

For every model and defense configured in ``conf/`` (those that leave the update exact), every
dataset shape the model accepts, p in {0, 0.25} and batch sizes 1 and 2: at the client's true
images, labels, dropout masks and PRECODE samples, the attacker's gradient through the server's
view (``ServerView.of``, the path every attack takes) equals the shared update. New configs are
covered without editing this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gradinv.attacks.base import ServerView
from gradinv.attacks.objectives import cosine_distance
from gradinv.data.datasets import CIFAR10, MNIST, ImageNet
from gradinv.data.victims import VictimBatch
from gradinv.errors import ConfigError, instantiate
from gradinv.federated.client import FederatedClient
from gradinv.federated.gradients import parameter_gradients
from gradinv.federated.local_update import local_update
from gradinv.models.build import build_model
from tests.helpers import CONF, option

MODELS = sorted(p.stem for p in (Path(CONF) / "model").glob("*.yaml"))
DEFENSES = sorted(
    p.stem
    for p in (Path(CONF) / "defense").glob("*.yaml")
    if not instantiate(option("defense", p.stem)).perturbs_update
)
SPECS = {"mnist": MNIST.spec, "cifar10": CIFAR10.spec, "imagenet": ImageNet.spec}


def _cells():
    """Every (model, dataset, defense, p, batch, client normalization); at 224 px only p = 0.25
    with a batch of 2, marked slow (the smaller shapes cover p = 0 and single images on the same
    code); per model one cell whose client normalizes with running statistics under dropout."""
    for name in MODELS:
        for data, spec in SPECS.items():
            for defense in DEFENSES:
                for dropout in (0.0, 0.25):
                    for batch in (1, 2):
                        cell = f"{name}-{data}-{defense}-p{dropout}-b{batch}"
                        if spec.size < 224:
                            yield pytest.param(name, spec, defense, dropout, batch, None, id=cell)
                        elif (dropout, batch) == (0.25, 2):
                            yield pytest.param(
                                name,
                                spec,
                                defense,
                                dropout,
                                batch,
                                None,
                                id=cell,
                                marks=pytest.mark.slow,
                            )
        # A client that trains with dropout but normalizes with running statistics.
        yield pytest.param(
            name, CIFAR10.spec, "none", 0.25, 2, "running", id=f"{name}-running-norm"
        )


MAX_TOKENS = 1024  # attention over more tokens than this at 224 px is not a cell of the grid


def _model(name: str, spec, dropout: float, defense: str) -> torch.nn.Module:
    cfg = option("model", name)
    cfg.dropout = dropout
    patch = cfg.get("patch_size")
    if patch and (spec.size // patch) ** 2 > MAX_TOKENS:
        pytest.skip(f"model={name} makes {(spec.size // patch) ** 2} tokens at {spec.size} px")
    protect = instantiate(option("defense", defense))
    try:
        return build_model(cfg, spec, seed=0, prepare=protect.prepare_model), protect
    except ConfigError as error:
        pytest.skip(f"model={name} does not accept {spec.name}: {error}")


@pytest.mark.parametrize(
    ("name", "spec", "defense", "dropout", "batch", "normalization"), list(_cells())
)
def test_attacker_gradient_at_the_truth_equals_the_shared_update(
    name, spec, defense, dropout, batch, normalization
):
    model, protect = _model(name, spec, dropout, defense)
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(batch, *spec.shape, generator=generator)
    labels = torch.randint(0, spec.num_classes, (batch,), generator=generator)
    client = FederatedClient(
        model,
        protect,
        mode="train",
        share_masks=True,
        share_samples=True,
        normalization=normalization,
    )
    server = ServerView.of(model, spec, client.batch_statistics)
    update, record = client.share(VictimBatch(images, labels, tuple(range(batch))))
    truth = {**record.masks, **record.samples}
    assert set(truth) == {**update.masks, **update.samples}.keys()
    if dropout > 0:
        assert record.masks, f"model={name} sampled no dropout mask at p={dropout}"
    if defense == "precode":
        assert record.samples, "the PRECODE bottleneck recorded no sample"

    simulated = parameter_gradients(server.model, images, labels, buffers=truth)
    assert list(simulated) == list(update.gradients)
    for key, shared in update.gradients.items():
        torch.testing.assert_close(simulated[key], shared, rtol=1e-4, atol=1e-6, msg=key)
    assert float(cosine_distance(simulated, update.gradients)) < 1e-5


FEDAVG_CELLS = [
    pytest.param(name, defense, id=f"{name}-cifar10-{defense}-fedavg")
    for name in MODELS
    for defense in DEFENSES
]


@pytest.mark.parametrize(("name", "defense"), FEDAVG_CELLS)
def test_attacker_simulation_of_fedavg_at_the_truth_equals_the_shared_update(name, defense):
    """FedAvg: 3 local steps on batches of 2 out of 4 images (a second, shuffled epoch), masks
    and PRECODE samples drawn anew at each step; replayed step by step, the attacker's
    differentiable simulation reproduces the shared weight difference."""
    spec = CIFAR10.spec
    model, protect = _model(name, spec, 0.25, defense)
    generator = torch.Generator().manual_seed(2)
    images = torch.randn(4, *spec.shape, generator=generator)
    labels = torch.randint(0, spec.num_classes, (4,), generator=generator)
    client = FederatedClient(
        model,
        protect,
        share_masks=True,
        share_samples=True,
        local_steps=3,
        local_lr=0.05,
        local_batch_size=2,
        shuffle=True,
    )
    server = ServerView.of(model, spec, client.batch_statistics)
    update, record = client.share(VictimBatch(images, labels, tuple(range(4))))
    truth = {**record.masks, **record.samples}
    assert update.local is not None and update.local.order == record.order
    assert {key.split(".")[0] for key in truth} == {"step0", "step1", "step2"}

    simulated, _ = local_update(
        server.model, images, labels, update.local, buffers=truth, create_graph=True
    )
    assert list(simulated) == list(update.gradients)
    for key, shared in update.gradients.items():
        torch.testing.assert_close(simulated[key].detach(), shared, rtol=1e-4, atol=1e-7, msg=key)
