"""DIA and WIIG (Scheliga et al., AAAI 2023): masks learned or replayed, and what that buys."""

from __future__ import annotations

import copy

import pytest
import torch

from gradinv.attacks.base import ServerView
from gradinv.attacks.objectives import OBJECTIVES
from gradinv.attacks.variables import DropoutMask, Variable
from gradinv.data.datasets import MNIST
from gradinv.defenses.base import NoDefense
from gradinv.errors import ConfigError
from gradinv.federated.client import FederatedClient
from gradinv.federated.gradients import parameter_gradients
from gradinv.models.mlp import MLP
from gradinv.models.vit import ViT
from tests.attacks.helpers import engine_for, make_attack
from tests.helpers import run_config

# 4 shipped MNIST digits batched in one victim, the reference setting.
MNIST4 = ["dataset.batch_size=4", "model.dropout=0.25"]


def shared_round(p: float, share_masks: bool, batch: int = 4):
    """A seeded MLP under dropout ``p``, the server's copy, one client round on MNIST samples."""
    torch.manual_seed(0)
    model = MLP((1, 28, 28), 10, dropout=p, width=64)
    server = ServerView.of(model, MNIST.spec)
    client = FederatedClient(model, NoDefense(), share_masks=share_masks)
    victim = MNIST(batch_size=batch).victims(seed=0)[0]
    update, record = client.share(victim)
    return server, update, record


def test_dia_learns_the_true_masks_far_above_chance(tmp_path):
    outcome = run_config(
        ["attack=dia", "attack.optim.iterations=100", "attack.log_psnr_every=50", *MNIST4], tmp_path
    )
    metrics = outcome["metrics"]
    # The convergence curve records PSNR, loss and mask accuracy every 50 steps.
    assert [point["step"] for point in outcome["curve"]] == [50, 100]
    assert outcome["curve"][-1]["mask_accuracy"] > 0.95 and outcome["curve"][-1]["psnr"] > 30
    # Chance (the Bernoulli(0.75) start against the truth) agrees on 0.75^2 + 0.25^2 = 62.5 %.
    assert metrics["mask_accuracy"] > 0.95
    for site in ("features.3", "features.6", "features.9"):
        assert metrics[f"mask_accuracy/{site}"] > 0.9
    assert outcome["knowledge"] == {
        "labels_known": True,
        "samples_known": False,
        "masks_known": False,
        "algorithm": "fedsgd",
    }


def test_dia_beats_ig_by_a_wide_margin_under_dropout(tmp_path):
    budget = ["attack.optim.iterations=100", *MNIST4]
    dia = run_config(["attack=dia", *budget], tmp_path / "dia")["metrics"]
    ig = run_config(["attack=ig", *budget], tmp_path / "ig")["metrics"]
    assert ig["psnr"] < 22
    assert dia["psnr"] > ig["psnr"] + 12
    assert dia["ssim"] > 0.8 > ig["ssim"]


def test_dia_without_dropout_is_exactly_ig_in_the_default_setting(tmp_path):
    """With no experiment chosen, ig and dia share one setting: at p = 0 they are one attack."""
    budget = ["attack.optim.iterations=20", "dataset.batch_size=2", "model.dropout=0"]
    dia = run_config(["attack=dia", *budget], tmp_path / "dia")
    ig = run_config(["attack=ig", *budget], tmp_path / "ig")
    assert dia["per_image"] == ig["per_image"]
    assert dia["metrics"]["gradient_cosine_distance"] == ig["metrics"]["gradient_cosine_distance"]
    assert dia["metrics"]["mask_accuracy"] is None
    assert "p = 0" in dia["unavailable"]["mask_accuracy"]


def test_wiig_gradient_distance_is_zero_at_the_true_images():
    server, update, record = shared_round(p=0.5, share_masks=True)
    wiig = make_attack("wiig")
    problem = wiig.problem(server, 0, 0, update, seed=0)
    told = parameter_gradients(
        server.model, record.images, record.labels, buffers=wiig.buffers(problem)
    )
    blind = parameter_gradients(server.model, record.images, record.labels)
    distance = OBJECTIVES[wiig.objective]
    assert float(distance(told, update.gradients)) == pytest.approx(0.0, abs=1e-6)
    assert float(distance(blind, update.gradients)) > 0.05
    assert wiig.knowledge()["masks_known"] is True


def test_wiig_refuses_a_client_that_keeps_its_masks():
    server, update, _ = shared_round(p=0.5, share_masks=False)
    problem = make_attack("wiig").problem(server, 0, 0, update, seed=0)
    with pytest.raises(ConfigError, match="client.share_masks=true"):
        make_attack("wiig").buffers(problem)
    with pytest.raises(ConfigError, match="threat.masks must be true"):
        make_attack("wiig", masks_known=False)


def test_wiig_run_reaches_the_upper_bound_and_records_its_knowledge(tmp_path):
    outcome = run_config(["attack=wiig", "attack.optim.iterations=100", *MNIST4], tmp_path)
    assert outcome["knowledge"] == {
        "labels_known": True,
        "samples_known": False,
        "masks_known": True,
        "algorithm": "fedsgd",
    }
    assert outcome["metrics"]["psnr"] > 35
    assert outcome["metrics"]["mask_accuracy"] is None
    assert outcome["unavailable"]["mask_accuracy"] == "the attack learns no dropout masks"


def test_dia_masks_follow_every_site_shape_and_stay_in_the_unit_box():
    torch.manual_seed(0)
    model = ViT((1, 28, 28), 10, dropout=0.1, dim=32, depth=1, heads=2, mlp_dim=32)
    server = ServerView.of(model, MNIST.spec)
    update, _ = FederatedClient(copy.deepcopy(model), NoDefense()).share(
        MNIST(batch_size=3).victims(seed=0)[0]
    )
    dia = make_attack("dia")
    masks = dia.init_variables(dia.problem(server, 0, 0, update, 0), server, torch.Generator())
    shapes = {k: tuple(v.value.shape) for k, v in masks.items()}
    # 7 x 7 patches of 4 px plus the class token; attention weights are batch x heads x 50 x 50;
    # the DIA authors' sites: embeddings, attention weights, its projection, GELU, MLP output.
    assert shapes == {
        "embed_drop.mask": (3, 50, 32),
        "blocks.0.attn.attn_drop.mask": (3, 2, 50, 50),
        "blocks.0.attn.proj.1.mask": (3, 50, 32),
        "blocks.0.mlp.2.mask": (3, 50, 32),
        "blocks.0.mlp.4.mask": (3, 50, 32),
    }
    assert all(
        isinstance(m, DropoutMask) and m.bounds == (0.0, 1.0) and m.rate == 0.1
        for m in masks.values()
    )
    assert all(m.buffer == key for key, m in masks.items())


def test_mask_penalty_pulls_the_drop_rate_towards_p_for_each_problem():
    mask_rate = {"mask_rate": {"_target_": "gradinv.attacks.regularizers.MaskRate", "weight": 1e-4}}
    dia = make_attack("dia", regularizers=mask_rate)
    images = torch.zeros(2, 1, 1, 4, 4)
    # Stacked over 2 problems: a mask keeping half of its units drops 0.5, 0.25 more than p;
    # one keeping 3 of 4 drops exactly p. Other kinds of variable pay nothing.
    variables = {
        "a.mask": DropoutMask(
            torch.tensor([[[1.0, 0.0, 1.0, 0.0]], [[1.0, 1.0, 1.0, 0.0]]]), rate=0.25
        ),
        "b": Variable(torch.tensor([[0.0], [5.0]])),
    }
    assert dia.penalty(images, variables).tolist() == pytest.approx([1e-4 * 0.25, 0.0])
    assert make_attack("dia", regularizers=None).penalty(images, variables).tolist() == [0.0, 0.0]


def test_masks_take_their_own_adam_step_when_mask_lr_is_set():
    server, update, _ = shared_round(p=0.25, share_masks=False, batch=1)
    for mask_lr, expected in ((None, [0.1, 0.1]), (0.01, [0.1, 0.01])):
        engine = engine_for(make_attack("dia", mask_lr=mask_lr), server, [update])
        assert engine.layout.lrs == expected
        assert engine.stepper.lr.tolist() == [expected]
    dia = make_attack("dia", mask_init="keep_rate")
    start = dia.init_variables(dia.problem(server, 0, 0, update, seed=0), server, torch.Generator())
    assert {float(m.value.unique()) for m in start.values()} == {0.75}
    with pytest.raises(ConfigError, match="attack.mask_lr must be positive"):
        make_attack("dia", mask_lr=0)
