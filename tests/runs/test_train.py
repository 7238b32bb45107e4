"""Training (gradinv/train.py): test accuracy is reported, and the trained weights load for the attack."""

from __future__ import annotations

import torch

from gradinv.data.datasets import CIFAR10
from gradinv.defenses.precode import Precode
from gradinv.models.build import build_model
from gradinv.utility import train
from tests.helpers import compose_train, run_config


def test_training_reports_accuracy_and_its_weights_load_for_the_attack(tmp_path):
    fields = ["defense=precode", "defense.latent=8", "model.width=32"]
    cfg = compose_train([*fields, "train.epochs=1"], tmp_path / "t")
    untrained = build_model(
        cfg.model, CIFAR10.spec, cfg.seed, Precode(latent=8).prepare_model
    ).state_dict()
    outcome = train(cfg)
    results = (tmp_path / "t" / "results.json").read_text()
    assert '"status": "ok"' in results and '"test_accuracy"' in results
    assert outcome["split"].endswith("96 train / 32 test")
    correct = outcome["metrics"]["test_accuracy"] * 32  # a fraction of the 32 held-out images
    assert abs(correct - round(correct)) < 1e-6
    weights = tmp_path / "t" / "model.pt"
    state = torch.load(weights, weights_only=True)
    assert "bottleneck.decoder.weight" in state
    assert not torch.equal(state["head.weight"], untrained["head.weight"])  # training moved them
    attack = ["dataset=cifar10", *fields, "attack=ig_precode", "attack.optim.iterations=1"]
    attacked = run_config([*attack, f"model.checkpoint={weights}"], tmp_path / "a")
    fresh = run_config(attack, tmp_path / "f")
    assert (
        attacked["metrics"]["gradient_cosine_distance"]
        != fresh["metrics"]["gradient_cosine_distance"]
    )
