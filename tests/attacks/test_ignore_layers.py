"""ignore_layers: the shared gradients an attack leaves out (by pattern, or the layers a defense
declares stochastic), and the PRECODE-aware attack built on it."""

from __future__ import annotations

import json

import pytest
import torch

from gradinv.attacks.base import ServerView
from gradinv.data.datasets import CIFAR10
from gradinv.defenses.precode import Precode, stochastic_parameters
from gradinv.errors import ConfigError
from gradinv.federated.update import SharedUpdate
from gradinv.models.build import build_model
from tests.attacks.helpers import make_attack
from tests.helpers import option, precode_model, run_config

SPEC = CIFAR10.spec


def test_ig_precode_matches_everything_but_the_ignored_set():
    model = precode_model()
    names = [n for n, _ in model.named_parameters()]
    update = SharedUpdate({n: torch.zeros(1) for n in names}, batch_size=1)
    server = ServerView.of(model, SPEC, defended=Precode().skippable_parameters(model))
    kept = make_attack(ignore_layers="defended").matched_names(server, update)
    assert kept == [n for n in names if n not in stochastic_parameters(model)]
    assert "bottleneck.encoder.weight" in kept
    assert make_attack(ignore_layers=["head.*"]).matched_names(server, update) == [
        n for n in names if n != "head.weight"
    ]


def test_ignore_layers_refuses_patterns_that_match_nothing_or_everything():
    model = precode_model()
    update = SharedUpdate({n: torch.zeros(1) for n, _ in model.named_parameters()}, batch_size=1)
    with pytest.raises(ConfigError, match="entry 'decoder' matches no shared gradient"):
        make_attack(ignore_layers=["decoder"]).matched_names(ServerView.of(model, SPEC), update)
    with pytest.raises(ConfigError, match="leaves no gradient to match"):
        make_attack(ignore_layers="*").matched_names(ServerView.of(model, SPEC), update)
    bare = build_model(option("model", "mlp"), SPEC, 0)
    with pytest.raises(
        ConfigError, match="entry 'defended' needs a defense that declares stochastic"
    ):
        make_attack(ignore_layers="defended").matched_names(ServerView.of(bare, SPEC), update)


@pytest.mark.slow
def test_precode_stops_ig_and_the_precode_aware_attack_breaks_it(tmp_path):
    """In the PRECODE authors' setting, both attackers' bottlenecks sampling anew each step."""
    cell = [
        "dataset=cifar10",
        "+experiment=precode_paper",
        "attack.optim.iterations=300",
        "attack.log_psnr_every=0",
    ]
    plain = run_config([*cell, "attack=ig"], tmp_path / "ig")
    aware = run_config([*cell, "attack=ig_precode"], tmp_path / "aware")
    assert plain["metrics"]["psnr"] < 10  # 8.3 dB measured
    assert aware["metrics"]["psnr"] > 12  # 13.4 dB measured; 27.9 dB at 1000 iterations
    assert plain["knowledge"]["samples_known"] is False


def test_dia_takes_the_same_ignore_layers_field(tmp_path):
    outcome = run_config(
        [
            "dataset=cifar10",
            "defense=precode",
            "attack=dia",
            "attack.ignore_layers=defended",
            "model.dropout=0.1",
            "attack.optim.iterations=3",
        ],
        tmp_path,
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "ok" and results["config"]["attack"]["ignore_layers"] == "defended"
    assert outcome["metrics"]["mask_accuracy"] is not None
