"""The grid's architectures: shapes, dropout placement, double backward, checkpoints."""

from pathlib import Path

import pytest
import torch

from gradinv.data.datasets import CIFAR10, MNIST
from gradinv.errors import ConfigError
from gradinv.federated.gradients import parameter_gradients
from gradinv.models.build import build_model
from gradinv.models.dropout import dropout_sites
from tests.helpers import CONF, option

TARGETS = {
    "mlp": ("gradinv.models.mlp.MLP", 3),
    "cnn": ("gradinv.models.cnn.CNN", 1),
    "resnet18": ("gradinv.models.resnet.ResNet18", 1),
    "vit": ("gradinv.models.vit.ViT", 1 + 4 * 4),
}
MODELS = sorted(p.stem for p in (Path(CONF) / "model").glob("*.yaml"))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("spec", [MNIST.spec, CIFAR10.spec], ids=["mnist", "cifar10"])
def test_every_configured_model_builds_with_p_at_every_dropout_site(name, spec):
    cfg = option("model", name)
    cfg.dropout = 0.25
    try:
        model = build_model(cfg, spec, seed=0)
    except ConfigError as error:
        assert "patch_size" in str(error), error  # vit_b16's 16 px patches do not tile 28 px
        return
    assert model(torch.zeros(2, *spec.shape)).shape[0] == 2
    sites = dropout_sites(model)
    assert sites and {m.p for m in sites.values()} == {0.25}


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("spec", [MNIST.spec, CIFAR10.spec], ids=["mnist", "cifar10"])
def test_every_architecture_fits_both_small_datasets_with_its_dropout_sites(name, spec):
    target, sites = TARGETS[name]
    model = build_model({"_target_": target, "dropout": 0.25}, spec, seed=0)
    assert model(torch.zeros(2, *spec.shape)).shape == (2, 10)
    found = dropout_sites(model)
    assert len(found) == sites and {m.p for m in found.values()} == {0.25}


@pytest.mark.parametrize(("name", "sites"), [("cnn", 3), ("resnet18", 4)])
def test_spatial_placement_adds_dropout_after_the_conv_blocks(name, sites):
    spatial = {"_target_": TARGETS[name][0], "dropout": 0.1, "dropout_placement": "spatial"}
    assert len(dropout_sites(build_model(spatial, CIFAR10.spec, seed=0))) == sites
    with pytest.raises(ConfigError, match="model.dropout_placement must be one of"):
        build_model({**spatial, "dropout_placement": "everywhere"}, CIFAR10.spec, seed=0)


@pytest.mark.parametrize("name", ["vit", "resnet18"])
def test_double_backward_reaches_the_input(name):
    model = build_model({"_target_": TARGETS[name][0], "dropout": 0.1}, CIFAR10.spec, seed=0)
    images = torch.randn(1, *CIFAR10.spec.shape, requires_grad=True)
    grads = parameter_gradients(model.eval(), images, torch.tensor([3]), create_graph=True)
    total = sum(g.pow(2).sum() for g in grads.values())
    (input_grad,) = torch.autograd.grad(total, images)
    assert input_grad.abs().sum() > 0


def test_same_seed_same_weights_and_checkpoint_round_trip(tmp_path):
    spec = MNIST.spec
    a = build_model({"_target_": TARGETS["cnn"][0]}, spec, seed=5)
    b = build_model({"_target_": TARGETS["cnn"][0]}, spec, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    path = tmp_path / "weights.pt"
    torch.save(a.state_dict(), path)
    c = build_model({"_target_": TARGETS["cnn"][0], "checkpoint": str(path)}, spec, seed=99)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    with pytest.raises(ConfigError, match="does not match the configured architecture"):
        build_model({"_target_": TARGETS["mlp"][0], "checkpoint": str(path)}, spec, seed=0)
