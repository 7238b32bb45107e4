"""PPP: noise on exactly the layers before PRECODE's decoder, and a whole run under it."""

from __future__ import annotations

import torch

from gradinv.defenses.ppp import PPP
from gradinv.defenses.precode import Precode, stochastic_parameters
from tests.helpers import precode_model, run_config


def test_ppp_noise_touches_exactly_the_layers_before_the_decoder():
    defense = PPP(latent=16, sigma=0.5)
    model = precode_model("cnn", defense)
    zeros = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    protected = defense.protect(zeros, model)
    stochastic = set(stochastic_parameters(model))
    for name, g in protected.items():
        assert bool((g == 0).all()) == (name in stochastic), name
    assert defense.perturbs_update and not Precode().perturbs_update


def test_ppp_noise_keeps_the_precode_aware_attack_from_matching(tmp_path):
    """Against PRECODE alone the aware attack matches the layers it keeps far closer than
    against PPP, whose noise sits on exactly those layers (same seed, same budget)."""
    distance = {}
    for defense in ("precode", "ppp"):
        outcome = run_config(
            [
                "dataset=cifar10",
                f"defense={defense}",
                "defense.latent=8",
                "attack=ig_precode",
                "attack.optim.iterations=30",
                "attack.optim.lr=0.1",
            ],
            tmp_path / defense,
        )
        assert outcome["status"] == "ok" and outcome["choices"]["defense"] == defense
        distance[defense] = outcome["metrics"]["gradient_cosine_distance"]
    assert distance["ppp"] > 2 * distance["precode"]
