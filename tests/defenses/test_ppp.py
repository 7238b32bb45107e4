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


def test_precode_run_writes_results(tmp_path):
    outcome = run_config(
        ["dataset=cifar10", "defense=ppp", "defense.latent=8", "attack=ig_precode",
         "attack.optim.iterations=2"],
        tmp_path,
    )
    assert outcome["metrics"]["psnr"] is not None
