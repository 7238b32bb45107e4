"""The inner-product form of the gradient distance equals the one from explicit gradients."""

import pytest
import torch
from torch import nn

from gradinv.attacks.linear_products import linear_distances, linear_layers, squared_norms
from gradinv.attacks.objectives import OBJECTIVES
from gradinv.federated.gradients import parameter_gradients


class Tokens(nn.Module):
    """Linear layers on token rows (as in a ViT), with and without bias, and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(6, 8)
        self.mix = nn.Linear(8, 8, bias=False)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        tokens = torch.tanh(self.embed(x.view(x.shape[0], 4, 6)))
        return self.head(torch.nn.functional.gelu(self.mix(tokens)).mean(dim=1))


@pytest.mark.parametrize("objective", ["cosine", "l2"])
def test_products_equal_explicit_gradients_for_every_problem(objective):
    torch.manual_seed(0)
    model = Tokens().double()
    names = [n for n, _ in model.named_parameters() if n != "embed.bias"]
    layers = linear_layers(model, names, objective)
    assert set(layers) == {"embed", "mix", "head"}
    images = torch.randn(3, 2, 24, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 3, (3, 2))
    targets = {n: torch.randn(3, *p.shape, dtype=torch.float64) for n, p in model.named_parameters() if n in names}
    fast = linear_distances(model, layers, images, labels, {}, targets, squared_norms(targets), objective)
    slow = torch.stack([
        OBJECTIVES[objective](
            parameter_gradients(model, images[i], labels[i], names, create_graph=True),
            {n: t[i] for n, t in targets.items()},
        )
        for i in range(3)
    ])
    torch.testing.assert_close(fast, slow)
    fast_grad, = torch.autograd.grad(fast.sum(), images)
    slow_grad, = torch.autograd.grad(slow.sum(), images)
    torch.testing.assert_close(fast_grad, slow_grad)


def test_products_do_not_apply_beyond_linear_layers():
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    assert linear_layers(conv, ["0.weight", "2.weight"], "cosine") is None
    assert linear_layers(conv, ["2.weight"], "cosine") == {"2": conv[2]}
