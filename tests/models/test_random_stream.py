"""The attacker's counter-based draws: a pure function of (seed, step, stream, element)."""

from __future__ import annotations

import torch

from gradinv.models.random_stream import standard_normals, uniforms


def test_a_problems_draws_do_not_depend_on_the_others_stepped_with_it():
    seeds = torch.tensor([7, 2**40 + 3, 123456789], dtype=torch.int64)
    steps = torch.tensor([0, 5, 19], dtype=torch.int64)
    together = uniforms(seeds, steps, stream=1, count=1000)
    for i in range(3):
        alone = uniforms(seeds[i : i + 1], steps[i : i + 1], stream=1, count=1000)
        assert torch.equal(together[i], alone[0])


def test_seed_step_and_stream_each_change_the_draws():
    base = uniforms(torch.tensor([7]), torch.tensor([3]), 0, 64)
    for other in (
        uniforms(torch.tensor([8]), torch.tensor([3]), 0, 64),
        uniforms(
            torch.tensor([7 + 2**32]), torch.tensor([3]), 0, 64
        ),  # the seed's high word counts too
        uniforms(torch.tensor([7]), torch.tensor([4]), 0, 64),
        uniforms(torch.tensor([7]), torch.tensor([3]), 1, 64),
    ):
        assert (base != other).float().mean() > 0.99


def test_draws_are_uniform_and_standard_normal():
    u = uniforms(torch.arange(4), torch.zeros(4, dtype=torch.int64), 0, 50_000)
    assert 0 < float(u.min()) and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.005
    assert torch.histc(u.float(), bins=10, min=0, max=1).div(u.numel()).sub(0.1).abs().max() < 0.005
    z = standard_normals(torch.arange(4), torch.ones(4, dtype=torch.int64), 2, 50_000)
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01
    assert abs(float((z[0] * z[1]).mean())) < 0.02  # problems' streams are uncorrelated
