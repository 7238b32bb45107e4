"""DP-SGD: per-example clipping and seeded noise at every step, epsilon from Opacus' accountant,
and the settings it refuses, each in one sentence."""

from __future__ import annotations

import math
import re

import pytest
import torch
import yaml
from opacus.accountants import create_accountant
from torch import nn

from gradinv.data.victims import VictimBatch
from gradinv.defenses.base import NoDefense
from gradinv.defenses.dpsgd import DPSGD, clip_and_noise, per_example_gradients
from gradinv.errors import ConfigError
from gradinv.federated.client import FederatedClient
from gradinv.federated.gradients import step_gradients
from gradinv.models.cnn import CNN
from gradinv.models.mlp import MLP
from gradinv.utility import train
from tests.helpers import compose_train, run_config

CIFAR = (3, 32, 32)


def _victim(size: int) -> VictimBatch:
    generator = torch.Generator().manual_seed(size)
    return VictimBatch(
        torch.randn(size, *CIFAR, generator=generator), torch.arange(size) % 10, tuple(range(size))
    )


@pytest.mark.parametrize("local_steps", [None, 2], ids=["fedsgd", "fedavg"])
def test_without_noise_and_with_an_infinite_clip_the_client_shares_the_plain_gradient(local_steps):
    """Up to float rounding (the sum of per-example gradients over B is the mean loss's
    gradient), with the same dropout masks drawn."""
    model = MLP(CIFAR, 10, width=32, depth=2, dropout=0.25)
    fields = {} if local_steps is None else {"local_steps": local_steps, "local_lr": 0.1}
    torch.manual_seed(3)
    plain, truth = FederatedClient(model, NoDefense(), **fields).share(_victim(4))
    torch.manual_seed(3)
    private, drawn = FederatedClient(
        model, DPSGD(clip=math.inf, noise_multiplier=0), **fields
    ).share(_victim(4))
    assert truth.masks.keys() == drawn.masks.keys() and len(truth.masks) == 2 * (local_steps or 1)
    assert all(torch.equal(truth.masks[k], drawn.masks[k]) for k in truth.masks)
    for key, gradient in plain.gradients.items():
        torch.testing.assert_close(private.gradients[key], gradient, rtol=1e-5, atol=1e-7)


def test_per_example_clipping_and_noise_equal_a_loop_over_the_examples():
    model = CNN(CIFAR, 10, channels=[4, 8], hidden=16, dropout=0.25).train()
    params = dict(model.named_parameters())
    victim = _victim(3)
    per_example, drawn = per_example_gradients(model, params, victim.images, victim.labels, {})
    ((key, masks),) = drawn.items()
    loop = [
        step_gradients(
            model,
            params,
            victim.images[i : i + 1],
            victim.labels[i : i + 1],
            {key: masks[i : i + 1]},
        )[0]
        for i in range(3)
    ]
    for name, stacked in per_example.items():
        torch.testing.assert_close(
            stacked, torch.stack([g[name] for g in loop]), rtol=1e-5, atol=1e-7
        )
    clip, sigma = 0.05, 0.7
    norms = [math.sqrt(sum(float(g.pow(2).sum()) for g in example.values())) for example in loop]
    assert min(norms) > clip  # every example is clipped
    torch.manual_seed(5)
    private = clip_and_noise(per_example, clip, sigma)
    torch.manual_seed(5)
    for name, gradient in private.items():
        clipped = sum(example[name] * clip / (norm + 1e-6) for example, norm in zip(loop, norms))
        expected = (clipped + sigma * clip * torch.randn(gradient.shape)) / 3
        torch.testing.assert_close(gradient, expected, rtol=1e-5, atol=1e-7)


def test_batch_norm_on_batch_statistics_is_refused_in_one_sentence_unless_examples_are_alone():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 30 * 30, 10)
    )
    defense = DPSGD(noise_multiplier=0)
    with pytest.raises(ConfigError) as refused:
        FederatedClient(model, defense).share(_victim(2))
    assert str(refused.value) == (
        "defense=dpsgd clips each example's gradient, which batch norm on batch statistics (1) "
        "makes depend on the other 1 examples of the step: set client.normalization=running, or "
        "use a model without batch norm (or batches of one image)."
    )
    FederatedClient(model, defense, normalization="running").share(_victim(2))
    FederatedClient(model, defense).share(_victim(1))
    FederatedClient(model, defense, local_steps=2, local_batch_size=1).share(_victim(2))


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_epsilon_is_opacus_accountant_for_the_round(accountant):
    """FedAvg's 5 full-batch steps at sample rate 1 are Opacus' own composition of 5 steps; a
    sampled batch is one sampled Gaussian step of the composed multiplier."""

    def opacus(sigma: float, rate: float, steps: int) -> float:
        counted = create_accountant(mechanism=accountant)
        for _ in range(steps):
            counted.step(noise_multiplier=sigma, sample_rate=rate)
        return counted.get_epsilon(delta=1e-5)

    fedavg = DPSGD(noise_multiplier=1.3, accountant=accountant).privacy(4, 5)
    assert fedavg["epsilon"] == pytest.approx(opacus(1.3, 1.0, 5), rel=1e-6)
    sampled = DPSGD(noise_multiplier=1.3, dataset_size=400, accountant=accountant).privacy(4, 1)
    assert (sampled["sample_rate"], sampled["noisy_steps"]) == (0.01, 1)
    assert sampled["epsilon"] == pytest.approx(opacus(1.3, 0.01, 1), rel=1e-6)
    assert (
        DPSGD(noise_multiplier=0, accountant=accountant).privacy(4, 1)["epsilon"] is None
    )  # infinite


def test_a_target_epsilon_gives_the_noise_multiplier_whose_round_spends_it():
    privacy = DPSGD(epsilon=2.0).privacy(4, 3)
    counted = create_accountant(mechanism="rdp")
    for _ in range(3):
        counted.step(noise_multiplier=privacy["noise_multiplier"], sample_rate=1.0)
    assert 1.99 <= counted.get_epsilon(delta=1e-5) <= 2.0  # Opacus' search tolerance
    assert privacy["epsilon"] == pytest.approx(counted.get_epsilon(delta=1e-5), rel=1e-6)
    assert privacy["target_epsilon"] == 2.0


def test_settings_without_a_guarantee_stop_with_one_sentence(tmp_path):
    cases = [
        (
            {"noise_multiplier": 1.0, "epsilon": 1.0},
            "defense.noise_multiplier and defense.epsilon: give exactly one",
        ),
        (
            {"epsilon": math.inf},
            "for no noise (epsilon infinite) set defense.epsilon=null defense.noise_multiplier=0.",
        ),
        (
            {"clip": math.inf, "epsilon": 1.0},
            "defense.clip=inf leaves each example's gradient unbounded",
        ),
        ({"epsilon": 1.0, "delta": 1.0}, "defense.delta must lie in (0, 1), got 1.0."),
        (
            {"epsilon": 1.0, "accountant": "gdp"},
            "defense.accountant must be one of rdp, prv, got 'gdp'.",
        ),
    ]
    for fields, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)):
            DPSGD(**fields)
    with pytest.raises(
        ConfigError, match="defense.dataset_size=2 must be at least dataset.batch_size=4"
    ):
        DPSGD(epsilon=1.0, dataset_size=2).privacy(4, 1)
    with pytest.raises(
        ConfigError, match="defense=dpsgd computes the gradients of a federated round per example"
    ):
        train(compose_train(["defense=dpsgd", "model.width=32"], tmp_path))


@pytest.mark.slow
def test_a_fedavg_run_against_dpsgd_records_its_privacy(tmp_path):
    outcome = run_config(
        [
            "defense=dpsgd",
            "defense.epsilon=10",
            "defense.dataset_size=50",
            "client=fedavg",
            "client.local_steps=2",
            "dataset=cifar10",
            "dataset.batch_size=2",
            "model.width=32",
            "attack.optim.iterations=3",
            "logger=csv",
        ],
        tmp_path,
    )
    assert outcome["status"] == "ok"
    privacy = outcome["privacy"]
    assert privacy == DPSGD(epsilon=10, dataset_size=50).privacy(2, 2)
    assert (
        9.99 <= privacy["epsilon"] <= 10
        and privacy["sample_rate"] == 0.04
        and privacy["noisy_steps"] == 2
    )
    logged = yaml.safe_load(next(tmp_path.glob("csv/**/hparams.yaml")).read_text())
    assert logged["privacy"] == privacy
