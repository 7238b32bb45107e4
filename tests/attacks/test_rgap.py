"""R-GAP: exact closed-form recovery, the rank table, and the layers and set-ups it refuses."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradinv.attacks.base import AttackRuntime, ServerView
from gradinv.attacks.constraints import LayerSystem, layer_system
from gradinv.attacks.rgap import RGAP
from gradinv.attacks.rgap_chain import Step
from gradinv.data.spec import DataSpec
from gradinv.defenses.base import Defense
from gradinv.errors import ConfigError
from gradinv.federated.gradients import parameter_gradients, training_loss
from gradinv.federated.update import SharedUpdate
from tests.helpers import compose_config, run_config

CIFAR = ["dataset=cifar10", "attack=rgap"]


class TinyConvNet(nn.Module):
    """A full-rank chain: two bias-free convs (one strided) with LeakyReLU, a 3-class head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, 1, 1, bias=False),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4, 8, 3, 2, 1, bias=False),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.head = nn.Linear(8 * 4 * 4, 3, bias=False)

    def forward(self, x):
        return self.head(self.features(x))


class NoisyUpdate(Defense):
    """A stand-in for any defense that changes the shared gradient."""

    perturbs_update = True


def test_exact_recovery_tiny_conv_net_float64():
    torch.manual_seed(0)
    model = TinyConvNet().double()
    image, label = torch.rand(1, 1, 8, 8, dtype=torch.float64), torch.tensor([2])
    grads = parameter_gradients(model, image, label)
    update = SharedUpdate({k: g.detach() for k, g in grads.items()}, 1, label)
    server = ServerView.of(model, DataSpec("tiny", 1, 8, 3, (0.0,), (1.0,)))
    attack = RGAP()
    (rec,) = attack.reconstruct(server, [update], AttackRuntime(seed=0, make_trainer=None))
    psnr = 10 * torch.log10(1 / (rec.images - image).pow(2).mean())
    assert psnr > 60
    assert rec.gradient_distance < 1e-12
    assert [row["verdict"] for row in attack.report()["rank"]] == ["full", "full", "full"]


def test_binary_head_uses_logistic_loss_on_label_parity():
    logits, labels = torch.tensor([[0.3], [-1.2]]), torch.tensor([3, 4])
    expected = F.binary_cross_entropy_with_logits(logits[:, 0], torch.tensor([1.0, 0.0]))
    assert torch.allclose(training_loss(nn.Identity(), logits, labels), expected)


def test_fcn3_end_to_end_writes_metrics_and_rank_table(tmp_path):
    outcome = run_config(["attack=rgap", "model=fcn3"], tmp_path)
    assert outcome["metrics"]["psnr"] > 60
    assert outcome["metrics"]["label_accuracy"] == 1.0
    assert outcome["metrics"]["gradient_relative_squared_distance"] < 1e-6
    assert "gradient_loss" not in outcome["metrics"]
    written = json.loads((tmp_path / "results.json").read_text())
    rows = written["attack_report"]["rank"]
    assert [(r["layer"], r["unknowns"], r["rank"]) for r in rows] == [
        ("features.1", 784, 784),
        ("features.4", 1000, 1000),
        ("head", 100, 100),
    ]
    assert written["attack_report"]["full_rank"] is True


def test_known_dropout_masks_are_inverted_unknown_ones_refused(tmp_path):
    with pytest.raises(
        ConfigError, match=r"layer 'features.6' \(MaskedDropout, p=0.25\).*threat.masks=true"
    ):
        run_config(["attack=rgap", "model=fcn3", "model.dropout=0.25"], tmp_path / "a")
    known = run_config(
        ["attack=rgap", "model=fcn3", "model.dropout=0.25", "threat.masks=true"], tmp_path / "b"
    )
    assert known["metrics"]["psnr"] > 40


def test_resnet_is_refused_at_its_batch_norm(tmp_path):
    with pytest.raises(ConfigError, match=r"layer 'features.1' \(BatchNorm2d\): normalization"):
        run_config([*CIFAR, "model=resnet18"], tmp_path)


def test_update_perturbing_defense_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="perturbs the update"):
        run_config(
            ["attack=rgap", "model=fcn3", "defense._target_=tests.attacks.test_rgap.NoisyUpdate"],
            tmp_path,
        )


def test_binary_head_refuses_unknown_labels(tmp_path):
    with pytest.raises(ConfigError, match="only the label's parity"):
        run_config(["attack=rgap", "model=fcn3", "threat.labels=false"], tmp_path)


@pytest.mark.slow
def test_rank_table_of_cnn6_matches_a_hand_count(tmp_path):
    from gradinv.rank_table import rank_table

    cfg = compose_config(["model=cnn6", "dataset=cifar10"], tmp_path)
    rows = {row["layer"]: row for row in rank_table(cfg)}
    # Second conv, 12->36, k3 s2 p1, on the first conv's 12 x 17 x 17 output (32+4-4)/2+1 = 17:
    # unknowns 12*17*17, weight-gradient constraints 36*12*3*3, forward constraints 36 * 9 * 9.
    assert rows["features.3"] == {
        "layer": "features.3",
        "unknowns": 3468,
        "weight_gradient_constraints": 3888,
        "forward_constraints": 2916,
        "rank": 3468,
        "verdict": "full",
    }
    assert all(row["verdict"] == "full" for row in rows.values())


def test_precode_bottleneck_is_refused_not_silently_skipped(tmp_path):
    with pytest.raises(
        ConfigError, match="cannot handle layer 'bottleneck.encoder' .*outside the features"
    ):
        run_config(["attack=rgap", "model=fcn3", "defense=precode"], tmp_path)


def test_layer_system_gram_is_the_normal_equations_of_the_dense_constraints():
    """The per-tap Gram and right-hand side are M^T diag(known) M and M^T z of the dense layer."""
    torch.manual_seed(0)
    step = Step(
        "conv",
        torch.randn(3, 2, 3, 3, dtype=torch.float64),
        None,
        (2, 2),
        (1, 1),
        (2, 5, 5),
        (3, 3, 3),
    )
    basis = torch.eye(step.unknowns, dtype=torch.float64).view(-1, *step.in_shape)
    dense = step.forward(basis).flatten(1).T  # (outputs, unknowns)
    known = torch.rand(step.out_shape) > 0.4
    z = torch.randn(step.out_shape, dtype=torch.float64)
    no_gradient = torch.zeros(step.out_shape, dtype=torch.float64)  # leaves the forward block alone
    system = layer_system(step, z, known, no_gradient, torch.zeros_like(step.weight))
    rows = dense[known.flatten()]
    scale = float(torch.linalg.matrix_norm(rows.T @ rows))
    torch.testing.assert_close(system.gram, rows.T @ rows / scale)
    torch.testing.assert_close(system.rhs, rows.T @ z.flatten()[known.flatten()] / scale)
    assert system.forward_constraints == int(known.sum())


@pytest.mark.parametrize("rank", [40, 31])
def test_solve_finds_the_rank_and_the_least_squares_input_either_way(rank):
    """A full-rank system takes plain Cholesky, a deficient one pivoted Cholesky: both give the
    rank pstrf would and a solution of the normal equations."""
    torch.manual_seed(1)
    factor = torch.randn(40, rank, dtype=torch.float64)
    gram = factor @ factor.T
    truth = factor @ torch.randn(rank, dtype=torch.float64)  # in the Gram's range
    rhs = gram @ truth
    solution, found = LayerSystem(gram.clone(), rhs.clone(), 0, 0).solve()
    assert found == rank
    assert torch.allclose(gram @ solution, rhs, atol=1e-6 * float(rhs.abs().max()))
