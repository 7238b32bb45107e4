"""Update perturbations: seeded Gaussian noise, clipping of the whole update's norm, pruning."""

from __future__ import annotations

import math

import pytest
import torch

from gradinv.defenses.perturbation import GaussianNoise, Prune
from gradinv.errors import ConfigError


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
