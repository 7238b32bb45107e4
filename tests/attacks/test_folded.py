"""Folding problems into one batch gives each problem's exact gradient distance, and is refused
where it could not (``gradinv.attacks.folded``); every configured model: ``test_batched_paths``."""

import pytest
import torch
from torch import nn
from torch.func import replace_all_batch_norm_modules_

from gradinv.attacks.folded import (
    FoldingError,
    folded_distances,
    folded_owners,
    plan_folding,
    squared_norms,
)
from gradinv.attacks.objectives import OBJECTIVES
from gradinv.federated.gradients import parameter_gradients


class Tokens(nn.Module):
    """Token rows (as in a ViT): a convolution, linear layers with and without bias, a learned
    position table owned by a leaf module, a batch norm on running statistics, a layer norm,
    and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3, padding=1)
        self.embed = nn.Linear(6, 8)
        self.positions = Positions()
        self.running = nn.BatchNorm1d(16)
        self.norm = nn.LayerNorm(8)
        self.mix = nn.Linear(8, 8, bias=False)
        self.head = nn.Linear(8, 3)
        self.running.running_mean.normal_()
        self.running.running_var.uniform_(0.5, 2.0)
        self.running.weight.data.normal_()
        self.eval()

    def forward(self, x):
        rows = self.conv(x.view(x.shape[0], 1, 24)).view(x.shape[0], 16, 6)
        tokens = torch.tanh(self.running(self.positions(self.embed(rows))))
        return self.head(torch.nn.functional.gelu(self.mix(self.norm(tokens))).mean(dim=1))


class Positions(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(16, 8))

    def forward(self, x):
        return x + self.table


@pytest.mark.parametrize("objective", ["cosine", "l2"])
def test_folded_distances_equal_explicit_gradients_for_every_problem(objective):
    torch.manual_seed(0)
    model = Tokens().double()
    names = [n for n, _ in model.named_parameters() if n != "embed.bias"]
    owners = folded_owners(model, names, objective)
    assert set(owners) == {"conv", "embed", "positions", "running", "norm", "mix", "head"}
    images = torch.randn(3, 2, 24, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 3, (3, 2))
    targets = {
        n: torch.randn(3, *p.shape, dtype=torch.float64)
        for n, p in model.named_parameters()
        if n in names
    }
    rows = 2 * 16  # embed, positions, norm, mix: a batch of 2 with 16 token rows; head: 2 rows
    linear = rows * (6 + 8) + rows * (8 + 8) + 2 * (8 + 3)
    others = 4 * 3 + 4 + 16 * 8 + 2 * 16 + 2 * 8  # conv, positions, batch norm, layer norm
    folding = plan_folding(model, owners, images.detach()[:1], {})
    assert (folding.entries, folding.copied) == (linear + others, frozenset())
    _assert_folded_equals_loop(model, folding, names, images, labels, targets, objective)


class Residual(nn.Module):
    """A residual block as torchvision writes it: batch norms (here on batch statistics, as
    a train-mode client's) whose outputs ReLU(inplace=True) and ``+=`` overwrite."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3)
        self.conv2, self.bn2 = nn.Conv2d(3, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3)
        self.skip = nn.Conv2d(2, 3, 1)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Linear(3, 4)
        for bn in (self.bn1, self.bn2):
            bn.weight.data.normal_()
            bn.bias.data.normal_()
        replace_all_batch_norm_modules_(self)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.skip(x)
        return self.head(self.relu(out).mean(dim=(2, 3)))


def _flat_batch_norm():
    """A batch norm over features (N, C), on batch statistics, overwritten by an in-place ReLU."""
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(50, 6), nn.BatchNorm1d(6), nn.ReLU(inplace=True), nn.Linear(6, 4)
    )
    model[2].weight.data.normal_()
    replace_all_batch_norm_modules_(model)
    return model, {"2"}


@pytest.mark.parametrize(
    "build", [lambda: (Residual(), {"bn1", "bn2"}), _flat_batch_norm], ids=["residual", "flat"]
)
def test_folded_batch_statistics_are_each_problems_own_and_overwritten_outputs_copied(build):
    torch.manual_seed(0)
    model, overwritten = build()
    model = model.double()
    names = [n for n, _ in model.named_parameters()]
    owners = folded_owners(model, names, "cosine")
    images = torch.randn(3, 2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 4, (3, 2))
    targets = {
        n: torch.randn(3, *p.shape, dtype=torch.float64) for n, p in model.named_parameters()
    }
    folding = plan_folding(model, owners, images.detach()[:1], {})
    assert folding.copied == overwritten
    _assert_folded_equals_loop(model, folding, names, images, labels, targets, "cosine")


def _assert_folded_equals_loop(model, folding, names, images, labels, targets, objective):
    """Folded distances and their image gradients equal each problem's explicit gradients'."""
    fast = folded_distances(
        model, folding, images, labels, {}, targets, squared_norms(targets), objective
    )
    slow = torch.stack(
        [
            OBJECTIVES[objective](
                parameter_gradients(model, images[i], labels[i], names, create_graph=True),
                {n: t[i] for n, t in targets.items()},
            )
            for i in range(images.shape[0])
        ]
    )
    torch.testing.assert_close(fast, slow)
    (fast_grad,) = torch.autograd.grad(fast.sum(), images)
    (slow_grad,) = torch.autograd.grad(slow.sum(), images)
    torch.testing.assert_close(fast_grad, slow_grad, rtol=1e-10, atol=1e-12)


def test_folding_is_refused_where_a_problem_gradient_is_not_its_rows():
    class Owner(nn.Module):  # owns a parameter and has a submodule: no rule, no leaf
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))
            self.inner = nn.Linear(4, 2)

        def forward(self, x):
            return self.inner(x) * self.scale

    model = Owner()
    assert folded_owners(model, ["inner.weight"], "cosine") == {"inner": model.inner}
    assert folded_owners(model, ["scale"], "cosine") is None
    grouped = nn.Sequential(nn.Conv2d(2, 2, 1), nn.GroupNorm(1, 2), nn.Flatten(), nn.Linear(2, 2))
    assert folded_owners(grouped, ["1.weight"], "cosine") is None  # no rule for group norm


def test_folding_is_refused_when_a_later_layer_overwrites_an_owner_input_or_reruns_it():
    class Overwrite(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(4, 4)

        def forward(self, x):
            hidden = torch.tanh(x)
            out = self.inner(hidden)
            return out + hidden.mul_(2)

    model = Overwrite()
    with pytest.raises(FoldingError, match="^a later layer modifies the input of inner in place$"):
        plan_folding(model, {"inner": model.inner}, torch.randn(1, 2, 4), {})
    shared = nn.Linear(4, 4)
    twice = nn.Sequential(shared, nn.Tanh(), shared)
    with pytest.raises(FoldingError, match="^0 ran 2 times in one forward pass, not once$"):
        plan_folding(twice, {"0": shared}, torch.randn(1, 2, 4), {})
