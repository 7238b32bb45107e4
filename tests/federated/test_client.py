"""The federated client shares exactly the gradient plain torch computes, and nothing private."""

import torch
import torch.nn.functional as F

from gradinv.data.datasets import MNIST
from gradinv.defenses.base import NoDefense
from gradinv.federated.client import FederatedClient
from gradinv.federated.gradients import parameter_gradients
from gradinv.models.build import build_model
from gradinv.models.dropout import mask_key


def _victim(batch_size=2):
    return MNIST(batch_size=batch_size).victims(seed=0)[0]


def _model(dropout=0.0, name="mlp"):
    fields = {
        "mlp": {"_target_": "gradinv.models.mlp.MLP"},
        "cnn": {"_target_": "gradinv.models.cnn.CNN", "dropout_placement": "spatial"},
    }[name]
    return build_model({**fields, "dropout": dropout}, MNIST.spec, seed=0)


def test_shared_gradient_equals_direct_torch_computation():
    victim, model = _victim(), _model()
    update, record = FederatedClient(model, NoDefense()).share(victim)
    model.train()
    loss = F.cross_entropy(model(victim.images), victim.labels)
    expected = torch.autograd.grad(loss, list(model.parameters()))
    assert list(update.gradients) == [name for name, _ in model.named_parameters()]
    for got, want in zip(update.gradients.values(), expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert torch.equal(record.images, victim.images) and record.masks == {}


def test_recorded_masks_replay_to_the_identical_gradient():
    victim, model = _victim(), _model(dropout=0.5, name="cnn")
    update, record = FederatedClient(model, NoDefense()).share(victim)
    assert set(record.masks) == {mask_key(f"features.{i}") for i in (3, 7, 11)}
    kept = torch.cat([m.flatten() for m in record.masks.values()]).mean()
    assert 0.4 < kept < 0.6
    model.eval()  # a replayed mask applies in any mode
    replayed = parameter_gradients(model, victim.images, victim.labels, buffers=record.masks)
    for name, grad in update.gradients.items():
        torch.testing.assert_close(replayed[name], grad, rtol=1e-6, atol=1e-7)


def test_threat_model_decides_what_travels_with_the_update():
    victim = _victim()
    hidden, _ = FederatedClient(_model(0.25), NoDefense(), share_labels=False).share(victim)
    assert hidden.labels is None and hidden.masks is None
    granted, record = FederatedClient(
        _model(0.25), NoDefense(), share_labels=True, share_masks=True
    ).share(victim)
    assert torch.equal(granted.labels, victim.labels)
    assert set(granted.masks) == set(record.masks) and len(record.masks) == 3
