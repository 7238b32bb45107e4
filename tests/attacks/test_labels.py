"""Label inference when labels are withheld: iDLG for one image, the batch methods' multisets
where their assumptions hold, and the refusals."""

import re

import pytest
import torch
from torch import nn

from gradinv.attacks.labels import LABEL_INFERENCE, idlg_label, infer_labels
from gradinv.errors import ConfigError
from gradinv.federated.gradients import parameter_gradients
from gradinv.federated.update import SharedUpdate
from tests.attacks.helpers import make_attack
from tests.helpers import run_config

SHAPE = (1, 4, 4)
CLASSES = 10


class Untrained(nn.Module):
    """LLG's setting by construction: ReLU features before the head (non-negative, their sums
    nearly equal across inputs, from a large positive bias) and a zero head (uniform softmax)."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU())
        nn.init.normal_(self.features[1].weight, std=0.01)
        nn.init.constant_(self.features[1].bias, 1.0)
        self.head = nn.Linear(32, CLASSES, bias=bias)
        nn.init.zeros_(self.head.weight)

    def forward(self, x):
        return self.head(self.features(x))


def shared(model: nn.Module, labels: list[int]) -> SharedUpdate:
    labels = torch.tensor(labels)
    images = torch.randn(len(labels), *SHAPE, generator=torch.Generator().manual_seed(1))
    return SharedUpdate(parameter_gradients(model, images, labels), batch_size=len(labels))


def test_idlg_recovers_one_images_label_from_the_head_gradient():
    features = torch.rand(1, 8)
    for label in range(5):
        probs = torch.softmax(torch.randn(1, 5), dim=1)
        grad = (probs - torch.nn.functional.one_hot(torch.tensor([label]), 5)).T @ features
        assert idlg_label(grad).item() == label


@pytest.mark.parametrize("method", ["auto", "idlg", "geng", "llg", "llg+"])
def test_every_method_recovers_one_images_label(method):
    model = Untrained()
    for label in (0, 3, 9):
        assert infer_labels(model, SHAPE, shared(model, [label]), method).tolist() == [label]


@pytest.mark.parametrize("method", ["auto", "geng", "llg", "llg+"])
def test_batch_methods_recover_the_exact_multiset_with_repeated_labels(method):
    model = Untrained()
    labels = [7, 2, 2, 0, 7, 2, 5, 0]
    assert infer_labels(model, SHAPE, shared(model, labels), method).tolist() == sorted(labels)


def test_llg_needs_no_head_bias():
    model = Untrained(bias=False)
    labels = [4, 4, 4, 1]
    for method in ("auto", "llg", "llg+"):
        assert infer_labels(model, SHAPE, shared(model, labels), method).tolist() == [1, 4, 4, 4]


def test_bad_method_stops_with_one_sentence():
    message = f"attack.label_inference must be one of {list(LABEL_INFERENCE)}, got 'lgg'."
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        make_attack(label_inference="lgg")


def test_idlg_refuses_a_batch():
    model = Untrained()
    with pytest.raises(ConfigError, match="idlg needs dataset.batch_size=1, got 2"):
        infer_labels(model, SHAPE, shared(model, [1, 2]), "idlg")


def test_bias_count_refuses_a_head_without_bias():
    model = Untrained(bias=False)
    with pytest.raises(ConfigError, match="geng needs the shared gradient of 'head.bias'"):
        infer_labels(model, SHAPE, shared(model, [1, 2]), "geng")


def test_ig_infers_a_batchs_labels_on_the_untrained_cnn(tmp_path):
    outcome = run_config(
        [
            "model=cnn",
            "attack.optim.iterations=1",
            "threat.labels=false",
            "dataset.batch_size=4",
            "dataset.num_victims=2",
        ],
        tmp_path,
    )
    assert outcome["metrics"]["label_accuracy"] == 1.0
