"""PRECODE's variational bottleneck: its KL term, its samples, its place before the head, and the
layers it declares stochastic."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence
from torch.func import functional_call

from gradinv.data.datasets import CIFAR10
from gradinv.defenses.precode import VariationalBottleneck, _forward_order, stochastic_parameters
from tests.helpers import precode_model

SPEC = CIFAR10.spec
ARCHITECTURES = ("mlp", "cnn", "resnet18", "vit")


def test_kl_term_is_the_closed_form_in_bits_and_scale_is_positive():
    bottleneck = VariationalBottleneck(features=3, latent=2, beta=0.5)
    with torch.no_grad():
        bottleneck.encoder.weight.zero_()
        bottleneck.encoder.bias.copy_(torch.tensor([0.3, -1.0, -20.0, 2.0]))
    bottleneck(torch.randn(4, 3))
    mean, scale = (
        torch.tensor([0.3, -1.0]),
        torch.nn.functional.softplus(torch.tensor([-20.0, 2.0])),
    )
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


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_ignored_set_is_the_decoder_and_every_later_layer(name):
    model = precode_model(name)
    ignored = stochastic_parameters(model)
    head = ["head.weight"] + (["head.bias"] if model.head.bias is not None else [])
    assert ignored == ["bottleneck.decoder.weight", "bottleneck.decoder.bias", *head]
    # Independently: in a full forward pass from the input, only the head runs after the decoder.
    order = _forward_order(model, lambda: model(torch.zeros(1, *SPEC.shape)))
    assert order[order.index("bottleneck.decoder") :] == ["bottleneck.decoder", "head"]
