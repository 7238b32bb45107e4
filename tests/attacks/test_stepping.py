"""The stacked step equals torch's Adam and schedulers, problem by problem, on scripted losses.

Each problem's loss is a scripted sequence (it decides improvements, plateaus, decays and
stops) plus a tiny quadratic in its images and a bounded variable (it gives Adam a gradient to
follow). The reference steps each problem alone with ``torch.optim.Adam`` (one group for the
images, one for the variable), the torch scheduler, the box and the stop rules; the stacked
step must take the same integer decisions (when the step size decays, when each problem
stops, which iterate is best) and reach the same values.
"""

from __future__ import annotations

import math

import pytest
import torch

from gradinv.attacks.layout import Layout
from gradinv.attacks.optimization import Optimization
from gradinv.attacks.stepping import Progress, StackedAdam, advance
from gradinv.attacks.variables import Variable
from gradinv.data.spec import DataSpec

SPEC = DataSpec("tiny", 1, 3, 10, (0.5,), (0.25,))
STEPS = 40
#: Per problem, the scripted part of each step's loss: falling, flat (plateaus), noisy, converged.
SCRIPTS = [
    [1.0 - 0.02 * t for t in range(STEPS)],
    [1.0 - 0.1 * min(t, 5) for t in range(STEPS)],
    [0.5 + 0.1 * math.sin(1.7 * t) for t in range(STEPS)],
    [0.5 / (t + 1) ** 3 for t in range(STEPS)],
]
PULL = 1e-7  # the quadratic's weight: it moves Adam without changing the script's decisions


def settings(**changes) -> Optimization:
    fields = dict(
        iterations=STEPS,
        optimizer="adam",
        lr=0.1,
        schedule="plateau",
        decay_at=[0.25, 0.5],
        decay_factor=0.1,
        plateau_patience=3,
        signed=True,
        boxed=True,
        keep_best=True,
        stop_patience=12,
        stop_loss=1e-4,
    )
    return Optimization(**{**fields, **changes})


def loss_of(problem: int, step: int, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The scripted loss of one problem at one step, with a tiny pull towards a target."""
    target = 0.3 * (problem + 1)
    pull = (images - target).pow(2).sum() + (mask - 0.2).pow(2).sum()
    return SCRIPTS[problem][step] + PULL * pull


def starts(problems: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        (
            torch.randn(2, *SPEC.shape, generator=generator, dtype=torch.float64),
            torch.rand(2, 4, generator=generator, dtype=torch.float64),
        )
        for _ in range(problems)
    ]


def reference(optim: Optimization, problem: int, images: torch.Tensor, mask: torch.Tensor):
    """One problem stepped alone by torch: (images, mask, best images, steps, lr per step)."""
    images, mask = images.clone().requires_grad_(), mask.clone().requires_grad_()
    adam = torch.optim.Adam([{"params": [images], "lr": optim.lr}, {"params": [mask], "lr": 0.05}])
    scheduler = optim.torch_scheduler(adam)
    low, high = SPEC.pixel_bounds(images)
    best_loss, since_best, best, lrs = math.inf, 0, images.detach().clone(), []
    for step in range(STEPS):
        lrs.append([group["lr"] for group in adam.param_groups])
        adam.zero_grad()
        loss = loss_of(problem, step, images, mask)
        loss.backward()
        value = float(loss.detach())
        if value < best_loss:
            best_loss, since_best, best = value, 0, images.detach().clone()
        else:
            since_best += 1
        if optim.signed:
            images.grad.sign_()
        adam.step()
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(value)
        elif scheduler is not None:
            scheduler.step()
        with torch.no_grad():
            images.copy_(torch.maximum(torch.minimum(images, high), low))
            mask.clamp_(0, 1)
        patience = optim.stop_patience is not None and since_best >= optim.stop_patience
        if patience or (optim.stop_loss is not None and value < optim.stop_loss):
            return images.detach(), mask.detach(), best, step + 1, lrs
    return images.detach(), mask.detach(), best, STEPS, lrs


def stacked(optim: Optimization, rows: list[tuple[torch.Tensor, torch.Tensor]]):
    """All problems stepped together: (theta's views, best images, steps, lr per step and problem)."""
    images, mask = rows[0]
    layout = Layout(images, {"mask": Variable(mask, lr=0.05, bounds=(0.0, 1.0))}, optim.lr)
    theta = layout.stack([(x, {"mask": Variable(m)}) for x, m in rows]).requires_grad_()
    progress, adam = Progress(optim, theta), StackedAdam(optim, layout, SPEC, theta)
    lrs = []
    for step in range(STEPS):
        lrs.append(adam.lr.tolist())
        x, variables = layout.views(theta)
        losses = torch.stack(
            [loss_of(i, step, x[i], variables["mask"].value[i]) for i in range(len(rows))]
        )
        (grad,) = torch.autograd.grad(losses.sum(), theta)
        with torch.no_grad():
            advance(progress, adam, theta, grad, losses.detach())
    x, variables = layout.views(theta.detach())
    best_images = layout.views(progress.best)[0] if progress.best is not None else None
    return x, variables["mask"].value, best_images, progress.steps.tolist(), lrs


@pytest.mark.parametrize(
    ("changes", "stops"),
    [
        ({}, True),  # plateau, best iterate, both stop rules
        ({"schedule": "multistep", "keep_best": False, "stop_patience": None}, True),
        (
            {"schedule": "multistep", "decay_at": [0.01, 0.5], "iterations": 4},
            True,
        ),  # a milestone at step 0
        ({"schedule": "constant", "signed": False, "stop_loss": None}, False),
        (
            {"plateau_patience": 0, "stop_patience": None, "stop_loss": None},
            False,
        ),  # decays down to eps
    ],
)
def test_stacked_steps_take_torchs_decisions_and_values(changes, stops):
    optim = settings(**changes)
    rows = starts(len(SCRIPTS))
    x, mask, best, steps, lrs = stacked(optim, rows)
    for i, (images0, mask0) in enumerate(rows):
        ref_images, ref_mask, ref_best, ref_steps, ref_lrs = reference(optim, i, images0, mask0)
        assert steps[i] == ref_steps, f"problem {i} stopped at a different step"
        lr_trace = torch.tensor([lr[i] for lr in lrs[:ref_steps]], dtype=torch.float64)
        torch.testing.assert_close(
            lr_trace, torch.tensor(ref_lrs, dtype=torch.float64), rtol=1e-12, atol=0
        )
        torch.testing.assert_close(x[i], ref_images, rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(mask[i], ref_mask, rtol=1e-6, atol=1e-9)
        if best is not None:
            torch.testing.assert_close(best[i], ref_best, rtol=1e-6, atol=1e-9)
    assert (min(steps) < STEPS) is stops
