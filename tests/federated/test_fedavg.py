"""FedAvg clients: local SGD steps shared as a weight difference, and attacks that simulate them."""

from __future__ import annotations

import pytest
import torch

from gradinv.attacks.labels import infer_labels
from gradinv.data.victims import VictimBatch
from gradinv.defenses.base import NoDefense
from gradinv.errors import ConfigError
from gradinv.federated.client import FederatedClient
from gradinv.models.cnn import CNN
from gradinv.models.mlp import MLP
from tests.helpers import run_config

FEDAVG = ["client=fedavg", "client.local_lr=0.1", "dataset.batch_size=2", "model.width=64"]


def test_one_full_batch_local_step_is_the_fedsgd_gradient_times_the_learning_rate():
    model = MLP((1, 28, 28), 10, width=32, depth=2)
    victim = VictimBatch(torch.randn(3, 1, 28, 28), torch.tensor([1, 4, 4]), (0, 1, 2))
    sgd, _ = FederatedClient(model, NoDefense()).share(victim)
    avg, _ = FederatedClient(model, NoDefense(), local_steps=1, local_lr=0.5).share(victim)
    assert sgd.local is None and avg.local is not None
    for key, gradient in sgd.gradients.items():
        torch.testing.assert_close(avg.gradients[key], 0.5 * gradient)


def test_fedavg_fields_that_cannot_work_stop_with_one_sentence(tmp_path):
    with pytest.raises(ConfigError, match="client.local_steps must be a positive integer, got 0."):
        FederatedClient(MLP((1, 28, 28), 10), NoDefense(), local_steps=0)
    with pytest.raises(
        ConfigError, match=r"client.local_batch_size=2 must divide dataset.batch_size=3"
    ):
        run_config(
            ["client=fedavg", "dataset.batch_size=3", "client.local_batch_size=2"], tmp_path / "a"
        )
    with pytest.raises(ConfigError, match="attack=rgap inverts one exact gradient, not FedAvg"):
        run_config(
            ["client=fedavg", "attack=rgap", "model=fcn3", "dataset=cifar10"], tmp_path / "b"
        )


def test_ig_against_fedavg_recovers_the_batch_and_records_the_procedure(tmp_path):
    outcome = run_config(
        [
            *FEDAVG,
            "client.local_steps=2",
            "client.local_batch_size=1",
            "attack.optim.iterations=100",
        ],
        tmp_path,
    )
    assert outcome["knowledge"] == {
        "labels_known": True,
        "samples_known": False,
        "algorithm": "fedavg",
        "local_steps": 2,
        "local_lr": 0.1,
        "local_batch_size": 1,
        "data_order_known": True,
    }
    assert outcome["metrics"]["psnr"] > 35  # 41.9 dB measured


def test_dia_against_fedavg_learns_one_mask_set_per_local_step(tmp_path):
    outcome = run_config(
        [
            *FEDAVG,
            "attack=dia",
            "model.dropout=0.25",
            "client.local_steps=2",
            "attack.optim.iterations=20",
        ],
        tmp_path,
    )
    sites = {
        key.removeprefix("mask_accuracy/")
        for key in outcome["metrics"]
        if key.startswith("mask_accuracy/")
    }
    assert {site.split(".")[0] for site in sites} == {"step0", "step1"}
    assert outcome["metrics"]["mask_accuracy"] is not None


def test_labels_are_inferred_from_a_fedavg_update_as_from_the_mean_gradient():
    """The count methods read gradient magnitudes: a FedAvg update is rescaled by lr x steps."""
    torch.manual_seed(0)
    model = CNN((3, 32, 32), 10)
    victim = VictimBatch(torch.randn(4, 3, 32, 32), torch.tensor([3, 3, 7, 1]), (0, 1, 2, 3))
    sgd, _ = FederatedClient(model, NoDefense()).share(victim)
    avg, _ = FederatedClient(model, NoDefense(), local_steps=1, local_lr=1e-4).share(victim)
    from_sgd = infer_labels(model, (3, 32, 32), sgd, "geng")
    assert torch.equal(infer_labels(model, (3, 32, 32), avg, "geng"), from_sgd)
    assert sorted(from_sgd.tolist()) == [1, 3, 3, 7]


def test_wiig_against_fedavg_replays_the_masks_of_every_local_step(tmp_path):
    outcome = run_config(
        [
            *FEDAVG,
            "attack=wiig",
            "model.dropout=0.25",
            "client.local_steps=2",
            "attack.optim.iterations=60",
        ],
        tmp_path,
    )
    assert outcome["knowledge"]["masks_known"] is True and outcome["knowledge"]["local_steps"] == 2
    assert outcome["metrics"]["psnr"] > 35  # 39.7 dB measured
