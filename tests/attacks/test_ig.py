"""Inverting Gradients: its objective, its label recovery, and real reconstructions."""

import json

import pytest
import torch

from gradinv.attacks.base import AttackRuntime, ServerView
from gradinv.attacks.engine import InversionEngine
from gradinv.attacks.objectives import cosine_distance
from gradinv.attacks.regularizers import total_variation
from tests.attacks.helpers import MNIST_LIKE, make_attack, mlp, quiet_trainer, shared_updates
from tests.helpers import run_config


def test_cosine_distance_treats_all_layers_as_one_vector():
    a = {"w": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0])}
    b = {"w": torch.tensor([0.0, 1.0]), "b": torch.tensor([1.0])}
    assert cosine_distance(a, a).item() == pytest.approx(0.0, abs=1e-7)
    assert cosine_distance(a, b).item() == pytest.approx(1.0)
    c = {"w": torch.tensor([1.0, 1.0]), "b": torch.tensor([1.0])}
    assert cosine_distance(a, c).item() == pytest.approx(1 - 1 / 3**0.5)


def test_total_variation_is_mean_horizontal_plus_mean_vertical_difference_per_problem():
    image = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    stacked = torch.stack([image, 2 * image])  # two problems of one image each
    assert total_variation(stacked).tolist() == pytest.approx([(1 + 2) / 2 + (2 + 3) / 2, 2 * 4.0])


def test_ig_reconstructs_shipped_mnist_digits_on_the_mlp(tmp_path):
    outcome = run_config(["attack.optim.iterations=150", "dataset.batch_size=2"], tmp_path)
    assert outcome["metrics"]["psnr"] > 30
    assert outcome["metrics"]["ssim"] > 0.95
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "ok"
    assert results["timing"]["optimizer_steps"] == 150
    assert (tmp_path / "reconstruction.png").stat().st_size > 0


def test_ig_without_labels_infers_them(tmp_path):
    outcome = run_config(
        ["attack.optim.iterations=150", "threat.labels=false", "dataset.num_victims=2"],
        tmp_path,
    )
    assert outcome["knowledge"] == {
        "labels_known": False,
        "samples_known": False,
        "algorithm": "fedsgd",
    }
    assert outcome["metrics"]["label_accuracy"] == 1.0
    assert outcome["metrics"]["psnr"] > 25


def test_restarts_keep_the_one_with_lowest_gradient_distance():
    """Three restarts of one victim end at three distances; the attack returns the lowest's
    reconstruction and counts every restart's steps."""
    net = mlp()
    server = ServerView.of(net, MNIST_LIKE)
    updates = shared_updates(net, MNIST_LIKE, victims=1)
    attack = make_attack(restarts=3, optim={"iterations": 6})
    (chosen,) = attack.reconstruct(
        server, updates, AttackRuntime(seed=3, make_trainer=quiet_trainer)
    )
    engine = InversionEngine(
        attack,
        server,
        [attack.problem(server, 0, r, updates[0], 3) for r in range(3)],
        torch.device("cpu"),
    )
    for _ in range(6):
        engine.step()
    each = engine.reconstructions()
    distances = [rec.gradient_distance for rec in each]
    assert len(set(distances)) == 3
    best = each[distances.index(min(distances))]
    assert torch.equal(chosen.images, best.images) and chosen.gradient_distance == min(distances)
    assert chosen.iterations == 18
