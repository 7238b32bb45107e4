"""Training (gradinv/train.py): test accuracy is reported, and the trained weights load for the attack."""

from __future__ import annotations

import torch

from gradinv.utility import train
from tests.helpers import compose_train, run_config


def test_training_reports_accuracy_and_its_weights_load_for_the_attack(tmp_path):
    cfg = compose_train(
        ["defense=precode", "defense.latent=8", "model.width=32", "train.epochs=1"], tmp_path / "t"
    )
    outcome = train(cfg)
    results = (tmp_path / "t" / "results.json").read_text()
    assert '"status": "ok"' in results and '"test_accuracy"' in results
    assert 0 <= outcome["metrics"]["test_accuracy"] <= 1
    assert outcome["split"].endswith("96 train / 32 test")
    weights = tmp_path / "t" / "model.pt"
    state = torch.load(weights, weights_only=True)
    assert "bottleneck.decoder.weight" in state
    attacked = run_config(
        ["dataset=cifar10", "model.width=32", "defense=precode", "defense.latent=8",
         "attack=ig_precode", "attack.optim.iterations=1", f"model.checkpoint={weights}"],
        tmp_path / "a",
    )
    assert attacked["metrics"]["psnr"] is not None
