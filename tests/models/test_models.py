"""The grid's architectures, enumerated from conf/model/: contract, shapes, dropout, seeds, checkpoints.

New model configs are covered without editing this file; the toy models at the end break the
contract (``gradinv.models.protocol``) one piece at a time.
"""

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradinv.data.datasets import CIFAR10, MNIST, ImageNet
from gradinv.errors import ConfigError
from gradinv.federated.gradients import parameter_gradients
from gradinv.models.build import build_model
from gradinv.models.dropout import MaskedDropout, dropout_sites, mask_key
from gradinv.models.stochastic import recording_randomness
from tests.helpers import CONF, option

MODELS = sorted(p.stem for p in (Path(CONF) / "model").glob("*.yaml"))
SPECS = {"mnist": MNIST.spec, "cifar10": CIFAR10.spec, "imagenet": ImageNet.spec}
MAX_TOKENS = 1024  # attention over more tokens than this at 224 px is not a cell of the grid
#: The dropout-site counts docs/configuration.md's models table states, at the configured defaults;
#: a new model adds its own.
DOCUMENTED_SITES = {
    "mlp": 3,
    "cnn": 1,
    "resnet18": 1,
    "vit": 17,
    "vit_b16": 49,
    "cnn6": 6,
    "cnn6d": 6,
    "fcn3": 2,
    "lenet": 3,
}


def _cells():
    """Every (model, dataset shape); the 224 px shape is marked slow."""
    for name in MODELS:
        for data, spec in SPECS.items():
            marks = [pytest.mark.slow] if spec.size >= 224 else []
            yield pytest.param(name, spec, id=f"{name}-{data}", marks=marks)


def _build(name: str, spec, seed: int = 0, **fields) -> nn.Module:
    """The configured model with ``fields`` overridden; skipped where the shape does not tile."""
    cfg = option("model", name)
    cfg.merge_with(fields)
    patch = cfg.get("patch_size")
    if patch and (spec.size // patch) ** 2 > MAX_TOKENS:
        pytest.skip(f"model={name} makes {(spec.size // patch) ** 2} tokens at {spec.size} px")
    try:
        return build_model(cfg, spec, seed=seed)
    except ConfigError as error:
        if "patch_size" not in str(error):  # only a ViT's patches may not tile an image size
            raise
        pytest.skip(f"model={name} does not accept {spec.name}: {error}")


@pytest.mark.parametrize(("name", "spec"), list(_cells()))
def test_every_model_meets_the_contract_with_live_dropout_at_every_site(name, spec):
    model = _build(name, spec, dropout=0.25)  # build_model checks gradinv.models.protocol
    logits = model.eval()(torch.zeros(2, *spec.shape))
    assert logits.shape in ((2, spec.num_classes), (2, 1))
    sites = dropout_sites(model)
    assert sites and {m.p for m in sites.values()} == {0.25}
    assert name in DOCUMENTED_SITES, f"model={name} does not document its dropout sites"
    assert len(sites) == DOCUMENTED_SITES[name]
    with recording_randomness(model.train()) as drawn:
        model(torch.randn(2, *spec.shape))
    assert set(drawn) == {mask_key(site) for site in sites}, "a dropout site never ran"


@pytest.mark.parametrize(("name", "spec"), list(_cells()))
def test_same_seed_same_weights_other_seed_other_weights(name, spec):
    a, b, c = (_build(name, spec, seed=seed) for seed in (5, 5, 6))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values())
    )


@pytest.mark.parametrize("name", MODELS)
def test_double_backward_reaches_the_input(name):
    model = _build(name, CIFAR10.spec, dropout=0.1)
    images = torch.randn(1, *CIFAR10.spec.shape, requires_grad=True)
    grads = parameter_gradients(model.eval(), images, torch.tensor([3]), create_graph=True)
    total = sum(g.pow(2).sum() for g in grads.values())
    (input_grad,) = torch.autograd.grad(total, images)
    assert input_grad.abs().sum() > 0


@pytest.mark.parametrize(("name", "sites"), [("cnn", 3), ("resnet18", 4)])
def test_spatial_placement_adds_dropout_after_the_conv_blocks(name, sites):
    spatial = _build(name, CIFAR10.spec, dropout=0.1, dropout_placement="spatial")
    assert len(dropout_sites(spatial)) == sites
    with pytest.raises(ConfigError, match="model.dropout_placement must be one of"):
        _build(name, CIFAR10.spec, dropout=0.1, dropout_placement="everywhere")


def test_checkpoint_round_trip(tmp_path):
    a = _build("cnn", MNIST.spec, seed=5)
    path = tmp_path / "weights.pt"
    torch.save(a.state_dict(), path)
    b = _build("cnn", MNIST.spec, seed=99, checkpoint=str(path))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ConfigError, match="does not match the configured architecture"):
        _build("mlp", MNIST.spec, checkpoint=str(path))


class Toy(nn.Module):
    """A model that keeps the contract: flatten, linear, dropout, linear head."""

    def __init__(self, input_shape, num_classes, dropout=0.0):
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(784, 8), MaskedDropout(dropout))
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


class NoHead(Toy):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.classifier = self.head
        del self.head

    def forward(self, x):
        return self.classifier(self.features(x))


class TorchDropout(Toy):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.features[2] = nn.Dropout2d(0.1)


class HeadNotLast(Toy):
    def __init__(self, input_shape, num_classes, dropout=0.0):
        super().__init__(input_shape, 8, dropout)
        self.out = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.out(super().forward(x))


class TorchAttention(Toy):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        h = self.features(x)[:, None]
        return self.head(self.attn(h, h, h)[0][:, 0])


class FusedAttention(nn.Module):
    def forward(self, x):
        return F.scaled_dot_product_attention(x, x, x)


class CallsFusedAttention(Toy):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.attn = FusedAttention()

    def forward(self, x):
        return self.head(self.attn(self.features(x)[:, None])[:, 0])


def test_the_contract_accepts_a_toy_that_keeps_it():
    assert _toy("Toy") is not None


@pytest.mark.parametrize(
    ("toy", "message"),
    [
        (
            "NoHead",
            "model=NoHead needs its classifier as an nn.Linear attribute 'head', found none.",
        ),
        (
            "TorchDropout",
            "model=TorchDropout has torch's Dropout2d at 'features.2', where every dropout site "
            "must be gradinv.models.dropout.MaskedDropout.",
        ),
        (
            "HeadNotLast",
            "model=HeadNotLast runs 'out' after 'head', which must be the last parameterized layer to run.",
        ),
        (
            "TorchAttention",
            "model=TorchAttention has nn.MultiheadAttention at 'attn', which has no double backward "
            "on CPU: write attention out as gradinv.models.vit.Attention does.",
        ),
        (
            "CallsFusedAttention",
            "model=CallsFusedAttention calls F.scaled_dot_product_attention in 'attn', which has no "
            "double backward on CPU: write attention out as gradinv.models.vit.Attention does.",
        ),
    ],
)
def test_the_contract_refuses_a_broken_model_in_one_sentence(toy, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        _toy(toy)


def _toy(name: str) -> nn.Module:
    return build_model({"_target_": f"tests.models.test_models.{name}"}, MNIST.spec, seed=0)
