"""The device class of bug, caught without a GPU.

An attack must compute where its model lives, read nothing back to the host inside a step (each
read is a device sync on a GPU, and a step that reads cannot be captured as a CUDA graph), and
keep its state where Lightning's teardown cannot move it. On PyTorch's ``meta`` device a tensor
has no values: a step that reads a value raises, and ``OneDevice`` refuses every operation that
mixes a CPU tensor (other than a scalar) with a ``meta`` one, as CUDA does (meta's own kernels
let a CPU index through). Every configured model builds its engine and takes DIA steps there;
each attack, defense and client does so on the MLP.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from gradinv.attacks.base import ServerView
from gradinv.data.datasets import CIFAR10
from gradinv.data.victims import VictimBatch
from gradinv.defenses.base import Defense
from gradinv.dispatch_census import DispatchCensus
from gradinv.errors import instantiate
from gradinv.models.build import build_model
from tests.attacks.helpers import (
    MNIST_LIKE,
    attack_images,
    engine_for,
    make_attack,
    mlp,
    shared_updates,
)
from tests.helpers import CONF, option

MODELS = sorted(p.stem for p in (Path(CONF) / "model").glob("*.yaml"))


class OneDevice(TorchDispatchMode):
    """Raise on any operation whose tensors (0-dim ones aside) live on more than one device."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        leaves = tree_leaves((args, kwargs or {}))
        devices = {t.device for t in leaves if isinstance(t, torch.Tensor) and t.dim() > 0}
        if len(devices) > 1:
            raise RuntimeError(f"{func} mixes devices {sorted(map(str, devices))}")
        return func(*args, **(kwargs or {}))


def meta_engine(
    model_name: str, attack: str = "dia", defense: str = "none", client: str = "fedsgd", **fields
):
    """An engine of two problems (batches of 2) whose model, update and state are on ``meta``."""
    cfg = option("model", model_name)
    cfg.dropout = 0.25
    if "depth" in cfg:
        cfg.depth = min(cfg.depth, 1)
    protect = instantiate(option("defense", defense))
    model = build_model(cfg, CIFAR10.spec, seed=0, prepare=protect.prepare_model)
    granted = {"share_masks": True} if attack == "wiig" else {}
    client = instantiate(option("client", client), model=model, defense=protect, **granted).to(
        "meta"
    )
    spec = CIFAR10.spec
    victims = [
        VictimBatch(torch.randn(2, *spec.shape), torch.randint(0, 10, (2,)), (0, 1))
        for _ in range(2)
    ]
    updates = [client.share(v)[0] for v in victims]
    server = ServerView.of(
        client.model, spec, client.batch_statistics, protect.skippable_parameters(client.model)
    )
    fields = {"per_call": 2, "cuda_graph": False, **fields}
    if attack == "wiig":
        fields["masks_known"] = True
    chosen = make_attack(attack, **fields)
    with OneDevice():
        return engine_for(chosen, server, updates, device="meta")


@pytest.mark.parametrize("model_name", MODELS)
def test_every_model_steps_where_it_lives(model_name):
    engine = meta_engine(model_name)
    with OneDevice():
        for _ in range(2):
            engine.step()
    assert engine.theta.device.type == "meta"


@pytest.mark.parametrize(
    ("attack", "defense", "client"),
    [
        ("ig", "none", "fedsgd"),
        ("wiig", "none", "fedsgd"),
        ("ig_precode", "precode", "fedsgd"),
        ("ig", "precode", "fedsgd"),
        ("dia", "none", "fedavg"),
        ("ig", "prune", "fedsgd"),
        ("dia", "dpsgd", "fedavg"),
    ],
)
def test_every_attack_defense_and_client_steps_where_it_lives(attack, defense, client):
    engine = meta_engine("mlp", attack, defense, client)
    with OneDevice():
        for _ in range(2):
            engine.step()


@pytest.mark.parametrize(
    ("model_name", "attack", "path"),
    [
        ("mlp", "dia", "folded"),
        ("cnn", "ig", "folded"),
        ("vit", "dia", "folded"),
        ("lenet", "ig", "folded"),
    ],
)
def test_a_step_is_the_same_operations_for_any_number_of_problems_and_reads_nothing(
    model_name, attack, path
):
    """Counted on the CPU: what one step dispatches does not grow with the problems stepped
    together (folded into one batch), and nothing in it reads a value back to the host."""
    counts = {}
    for victims in (2, 9):
        cfg = option("model", model_name)
        cfg.dropout = 0.25
        if "depth" in cfg:
            cfg.depth = 1
        model = build_model(cfg, CIFAR10.spec, seed=0)
        server = ServerView.of(model, CIFAR10.spec)
        updates = shared_updates(model, CIFAR10.spec, victims=victims)
        engine = engine_for(make_attack(attack, per_call=victims), server, updates)
        assert engine.batching == path
        engine.step()
        with DispatchCensus() as census:
            engine.step()
        assert census.host_reads == 0, census.reads
        counts[victims] = census.operations
    assert counts[2] == counts[9]


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_fedavg_step_of_mini_batches_reads_nothing(shuffle):
    """FedAvg's simulated local steps pick their mini-batches without a copy from the host, in
    the images' order and in a shuffled, shared order alike (a copy would break graph capture)."""
    model = mlp(0.25)
    client = instantiate(
        option("client", "fedavg"),
        model=model,
        defense=Defense(),
        local_steps=4,
        local_batch_size=1,
        shuffle=shuffle,
        share_order=True,
    )
    victims = [
        VictimBatch(torch.randn(2, *MNIST_LIKE.shape), torch.tensor([1, 3]), (0, 1))
        for _ in range(2)
    ]
    updates = [client.share(v)[0] for v in victims]
    assert (updates[0].local.order is not None) == shuffle
    engine = engine_for(make_attack("dia", per_call=2), ServerView.of(model, MNIST_LIKE), updates)
    engine.step()
    with DispatchCensus() as census:
        engine.step()
    assert census.host_reads == 0, census.reads


def test_results_are_read_from_the_engine_whatever_teardown_does_to_the_module(monkeypatch):
    """Lightning's teardown moves the fitted module (to the CPU after a GPU fit); a teardown that
    moves it to ``meta`` changes nothing of the attack's results."""
    attack = make_attack("dia", restarts=2, optim={"iterations": 5})
    expected = attack_images(attack, mlp(0.25), MNIST_LIKE, victims=2)
    teardown = L.pytorch.strategies.SingleDeviceStrategy.teardown

    def to_meta(strategy):
        module = strategy.lightning_module
        teardown(strategy)
        module.to("meta")

    monkeypatch.setattr(L.pytorch.strategies.SingleDeviceStrategy, "teardown", to_meta)
    moved = attack_images(attack, mlp(0.25), MNIST_LIKE, victims=2)
    for a, b in zip(expected, moved, strict=True):
        assert torch.equal(a.images, b.images) and a.gradient_distance == b.gradient_distance
