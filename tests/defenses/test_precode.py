"""Defenses: PRECODE's bottleneck, noise, clipping, pruning, PPP, and the PRECODE-aware attack."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from torch.distributions import Normal, kl_divergence
from torch.func import functional_call

from gradinv.attacks.base import ServerView
from gradinv.attacks.ig import InvertingGradients
from gradinv.data.datasets import CIFAR10
from gradinv.defenses.perturbation import GaussianNoise, Prune
from gradinv.defenses.ppp import PPP
from gradinv.defenses.quantize import Quantize
from gradinv.defenses.precode import (
    Precode,
    VariationalBottleneck,
    _forward_order,
    stochastic_parameters,
)
from gradinv.errors import ConfigError
from gradinv.federated.update import SharedUpdate
from gradinv.models.build import build_model
from gradinv.utility import train
from tests.helpers import CONF, QUIET, option, run_config

SPEC = CIFAR10.spec
ARCHITECTURES = ("mlp", "cnn", "resnet18", "vit")


def precode_model(name: str = "mlp", defense: Precode | None = None) -> torch.nn.Module:
    cfg = option("model", name)
    return build_model(cfg, SPEC, 0, (defense or Precode(latent=16)).prepare_model)


def test_kl_term_is_the_closed_form_in_bits_and_scale_is_positive():
    bottleneck = VariationalBottleneck(features=3, latent=2, beta=0.5)
    with torch.no_grad():
        bottleneck.encoder.weight.zero_()
        bottleneck.encoder.bias.copy_(torch.tensor([0.3, -1.0, -20.0, 2.0]))
    bottleneck(torch.randn(4, 3))
    mean, scale = torch.tensor([0.3, -1.0]), torch.nn.functional.softplus(torch.tensor([-20.0, 2.0]))
    assert bool((scale > 0).all())
    # beta x KL in bits (nats / ln 2, as PRECODE's authors), summed over units, mean over 4 rows.
    expected = 0.5 * kl_divergence(Normal(mean, scale), Normal(0, 1)).sum() / math.log(2)
    assert torch.allclose(bottleneck.auxiliary_loss, expected, rtol=1e-5)


def test_reparametrized_sample_passes_gradients_to_mean_scale_and_input():
    torch.manual_seed(0)
    bottleneck = VariationalBottleneck(features=5, latent=3).train()
    x = torch.randn(2, 5, requires_grad=True)
    out = bottleneck(x)
    assert not torch.equal(out, bottleneck(x))  # a fresh sample each forward in train mode
    (out.pow(2).sum() + bottleneck.auxiliary_loss).backward()
    mean_rows, scale_rows = bottleneck.encoder.weight.grad.split(3)
    assert mean_rows.abs().sum() > 0 and scale_rows.abs().sum() > 0 and x.grad.abs().sum() > 0
    bottleneck.eval()
    assert not torch.equal(bottleneck(x), bottleneck(x))  # it samples in eval mode too (authors')
    mean, raw = bottleneck.encoder(x).split(3, dim=-1)
    noise = torch.randn(2, 3)
    bottleneck.noise = noise  # a supplied sample replays exactly
    expected = bottleneck.decoder(mean + torch.nn.functional.softplus(raw) * noise)
    torch.testing.assert_close(bottleneck(x), expected)


def test_precode_keeps_head_name_and_a_copy_uses_its_own_bottleneck():
    model = precode_model()
    names = [n for n, _ in model.named_parameters()]
    assert {"head.weight", "bottleneck.encoder.weight", "bottleneck.decoder.weight"} <= set(names)
    twin = copy.deepcopy(model).eval()
    x = torch.zeros(1, *SPEC.shape)
    noise = {"bottleneck.noise": torch.randn(1, 16)}
    before = functional_call(model.eval(), dict(model.named_parameters()) | noise, (x,))
    with torch.no_grad():
        twin.bottleneck.decoder.bias.add_(1.0)
    after = functional_call(model, dict(model.named_parameters()) | noise, (x,))
    twin_out = functional_call(twin, dict(twin.named_parameters()) | noise, (x,))
    assert torch.equal(after, before) and not torch.allclose(twin_out, before)


def test_gaussian_noise_adds_exactly_sigma_times_the_seeded_draw():
    gradients = {"a": torch.ones(3, 4), "b": torch.arange(5.0)}
    torch.manual_seed(7)
    noisy = GaussianNoise(sigma=0.2).protect(gradients, torch.nn.Identity())
    torch.manual_seed(7)
    for key, g in gradients.items():
        assert torch.equal(noisy[key], g + 0.2 * torch.randn_like(g))


def test_clipping_bounds_the_whole_update_norm_and_spares_short_ones():
    gradients = {"a": torch.full((4,), 3.0), "b": torch.full((1,), 4.0)}  # norm sqrt(40)
    clipped = GaussianNoise(sigma=0.0, clip=2.0).protect(gradients, torch.nn.Identity())
    norm = torch.sqrt(sum(g.pow(2).sum() for g in clipped.values()))
    assert math.isclose(float(norm), 2.0, rel_tol=1e-6)
    assert torch.allclose(clipped["a"] / clipped["b"][0], gradients["a"] / 4.0)
    spared = GaussianNoise(sigma=0.0, clip=100.0).protect(gradients, torch.nn.Identity())
    assert all(torch.equal(spared[k], gradients[k]) for k in gradients)


def test_pruning_zeros_exactly_the_smallest_fraction_of_each_tensor():
    g = torch.tensor([[0.5, -4.0, 0.1], [3.0, -0.2, 2.0]])
    pruned = Prune(ratio=0.5).protect({"w": g, "v": torch.tensor([1.0, -2.0])}, torch.nn.Identity())
    assert torch.equal(pruned["w"], torch.tensor([[0.0, -4.0, 0.0], [3.0, 0.0, 2.0]]))
    assert torch.equal(pruned["v"], torch.tensor([0.0, -2.0]))
    with pytest.raises(ConfigError, match="defense.ratio"):
        Prune(ratio=1.5)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_ignored_set_is_the_decoder_and_every_later_layer(name):
    model = precode_model(name)
    ignored = stochastic_parameters(model)
    head = ["head.weight"] + (["head.bias"] if model.head.bias is not None else [])
    assert ignored == ["bottleneck.decoder.weight", "bottleneck.decoder.bias", *head]
    # Independently: in a full forward pass from the input, only the head runs after the decoder.
    order = _forward_order(model, lambda: model(torch.zeros(1, *SPEC.shape)))
    assert order[order.index("bottleneck.decoder"):] == ["bottleneck.decoder", "head"]


def test_ig_precode_matches_everything_but_the_ignored_set():
    model = precode_model()
    names = [n for n, _ in model.named_parameters()]
    update = SharedUpdate({n: torch.zeros(1) for n in names}, batch_size=1)
    server = ServerView.of(model, SPEC, defended=Precode().skippable_parameters(model))
    kept = InvertingGradients(ignore_layers="defended").matched_names(server, update)
    assert kept == [n for n in names if n not in stochastic_parameters(model)]
    assert "bottleneck.encoder.weight" in kept
    assert InvertingGradients(ignore_layers=["head.*"]).matched_names(server, update) == [
        n for n in names if n != "head.weight"
    ]


def test_ignore_layers_refuses_patterns_that_match_nothing_or_everything():
    model = precode_model()
    update = SharedUpdate({n: torch.zeros(1) for n, _ in model.named_parameters()}, batch_size=1)
    with pytest.raises(ConfigError, match="entry 'decoder' matches no shared gradient"):
        InvertingGradients(ignore_layers=["decoder"]).matched_names(ServerView.of(model, SPEC), update)
    with pytest.raises(ConfigError, match="leaves no gradient to match"):
        InvertingGradients(ignore_layers="*").matched_names(ServerView.of(model, SPEC), update)
    bare = build_model(option("model", "mlp"), SPEC, 0)
    with pytest.raises(ConfigError, match="entry 'defended' needs a defense that declares stochastic"):
        InvertingGradients(ignore_layers="defended").matched_names(ServerView.of(bare, SPEC), update)


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
         "attack.iterations=2"],
        tmp_path,
    )
    assert outcome["metrics"]["psnr"] is not None


def compose_train(overrides: list[str], run_dir: Path):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", overrides=[*QUIET, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


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
         "attack=ig_precode", "attack.iterations=1", f"model.checkpoint={weights}"],
        tmp_path / "a",
    )
    assert attacked["metrics"]["psnr"] is not None


@pytest.mark.slow
def test_precode_stops_ig_and_the_precode_aware_attack_breaks_it(tmp_path):
    """In the PRECODE authors' setting, both attackers' bottlenecks sampling anew each step."""
    cell = ["dataset=cifar10", "+experiment=precode_paper", "attack.iterations=300",
            "attack.log_psnr_every=0"]
    plain = run_config([*cell, "attack=ig"], tmp_path / "ig")
    aware = run_config([*cell, "attack=ig_precode"], tmp_path / "aware")
    assert plain["metrics"]["psnr"] < 10  # 8.3 dB measured
    assert aware["metrics"]["psnr"] > 12  # 13.4 dB measured; 27.9 dB at 1000 iterations
    assert plain["knowledge"]["samples_known"] is False


def test_dia_takes_the_same_ignore_layers_field(tmp_path):
    outcome = run_config(
        ["dataset=cifar10", "defense=precode", "attack=dia", "attack.ignore_layers=defended",
         "model.dropout=0.1", "attack.iterations=3"],
        tmp_path,
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "ok" and results["config"]["attack"]["ignore_layers"] == "defended"
    assert outcome["metrics"]["mask_accuracy"] is not None


def test_quantize_rounds_each_tensor_to_its_precision():
    g = torch.tensor([0.5, -1.27, 0.004, 1e-5])
    shared = Quantize("int8").protect({"w": g}, torch.nn.Identity())["w"]
    scale = 1.27 / 127  # the largest magnitude maps to 127
    assert torch.allclose(shared, torch.tensor([50 * scale, -1.27, 0.0, 0.0]), atol=1e-7)
    half = Quantize("float16").protect({"w": g}, torch.nn.Identity())["w"]
    assert half.dtype == torch.float32 and torch.equal(half, g.half().float())
    assert Quantize().perturbs_update
    with pytest.raises(ConfigError, match="defense.precision must be 'float16', 'bfloat16' or 'int8', got 'int4'."):
        Quantize("int4")
