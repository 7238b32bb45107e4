"""One optimizer step of every problem at once, as device tensors with a leading problem axis.

``Progress`` keeps what each problem's run has reached (best loss and iterate, steps since
the best, steps taken, whether it still runs); ``StackedAdam`` is torch's Adam with its
MultiStepLR or ReduceLROnPlateau schedule, written elementwise over ``theta`` (problems x
columns) with a step size per problem and group; ``LbfgsStep`` wraps torch's L-BFGS for a
single problem. A step reads nothing back to the host: a problem that stops is frozen by a
mask, so shapes never change and a CUDA graph can replay the step. Tests hold the stacked
step against torch's Adam and schedulers on scripted losses, problem by problem.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gradinv.attacks.layout import IMAGES, Layout
from gradinv.attacks.optimization import (
    ADAM_BETAS,
    ADAM_EPS,
    PLATEAU_EPS,
    PLATEAU_THRESHOLD,
    Optimization,
)
from gradinv.data.spec import DataSpec

Reevaluate = Callable[[], tuple[torch.Tensor, torch.Tensor]]


class Progress:
    """Each problem's best loss (and iterate, with ``keep_best``), steps since it, steps taken,
    and whether it still runs; updated on the device, once per step."""

    def __init__(self, settings: Optimization, theta: torch.Tensor) -> None:
        problems, device = theta.shape[0], theta.device
        self.settings = settings
        self.best_loss = torch.full((problems,), torch.inf, dtype=torch.float64, device=device)
        self.since_best = torch.zeros(problems, dtype=torch.int64, device=device)
        self.steps = torch.zeros(problems, dtype=torch.int64, device=device)
        self.active = torch.ones(problems, dtype=torch.bool, device=device)
        self.best = theta.detach().clone() if settings.keep_best else None

    def record(self, theta: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        """Note this step's losses (at ``theta`` before it moves); returns the live problems."""
        live = self.active.clone()
        loss = losses.double()
        improved = live & (loss < self.best_loss)
        self.best_loss.copy_(torch.where(improved, loss, self.best_loss))
        self.since_best.copy_(torch.where(improved, 0, self.since_best + live.long()))
        if self.best is not None:
            self.best.copy_(torch.where(improved[:, None], theta, self.best))
        return live

    def finish(self, losses: torch.Tensor, live: torch.Tensor) -> None:
        """Count the step for the live problems and stop those that are done."""
        self.steps.add_(live.long())
        stop = torch.zeros_like(live)
        if self.settings.stop_patience is not None:
            stop = stop | (self.since_best >= self.settings.stop_patience)
        if self.settings.stop_loss is not None:
            stop = stop | (losses.double() < self.settings.stop_loss)
        self.active.copy_(live & ~stop)


def column_bounds(layout: Layout, spec: DataSpec, boxed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper bound of every column: valid pixels for the images when ``boxed``, each
    variable's ``bounds``, else unbounded."""
    lows: dict[str, torch.Tensor | float] = {}
    highs: dict[str, torch.Tensor | float] = {}
    if boxed:
        lows[IMAGES], highs[IMAGES] = spec.pixel_bounds(torch.empty(0, dtype=torch.float64))
    for key, variable in layout.variables.items():
        if variable.bounds is not None:
            lows[key], highs[key] = variable.bounds
    return layout.column_vector(lows, -torch.inf), layout.column_vector(highs, torch.inf)


class StackedAdam:
    """torch's Adam and step-size schedule for every problem, elementwise over ``theta``.

    Per problem and group it keeps the step size (``lr``), and for ReduceLROnPlateau the best
    loss and bad-step count; the moments are (problems x columns). Images' gradients are
    signed when ``settings.signed``; every column is clamped to its bounds after the move.
    """

    def __init__(
        self, settings: Optimization, layout: Layout, spec: DataSpec, theta: torch.Tensor
    ) -> None:
        problems, device, dtype = theta.shape[0], theta.device, theta.dtype
        self.settings = settings
        self.m = torch.zeros_like(theta, requires_grad=False)
        self.v = torch.zeros_like(theta, requires_grad=False)
        self.lr = torch.tensor(layout.lrs, dtype=torch.float64, device=device).repeat(problems, 1)
        sizes = torch.tensor([c.size for c in layout.columns])
        self.groups = torch.tensor(layout.groups).repeat_interleave(sizes).to(device)
        signed = {IMAGES: 1.0} if settings.signed else {}
        self.signed = layout.column_vector(signed, 0.0).to(device=device, dtype=torch.bool)
        low, high = column_bounds(layout, spec, settings.boxed)
        self.low, self.high = low.to(device, dtype), high.to(device, dtype)
        self.milestones = torch.tensor(settings.milestones, dtype=torch.int64, device=device)
        if settings.schedule == "multistep" and 0 in settings.milestones:
            self.lr.mul_(settings.decay_factor)  # torch's MultiStepLR decays at its own first step
        self.plateau_best = torch.full((problems,), torch.inf, dtype=torch.float64, device=device)
        self.bad_steps = torch.zeros(problems, dtype=torch.int64, device=device)

    def move(
        self,
        theta: torch.Tensor,
        grad: torch.Tensor,
        losses: torch.Tensor,
        live: torch.Tensor,
        steps: torch.Tensor,
    ) -> None:
        """One Adam step of the live problems at their step sizes; ``steps`` counts the steps
        each took before this one. Then the schedule sees this step's losses."""
        beta1, beta2 = ADAM_BETAS
        grad = torch.where(self.signed, grad.sign(), grad)
        self.m.lerp_(grad, 1 - beta1)
        self.v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        count = (steps + 1).double()[:, None]
        step_size = (self.lr / (1 - beta1**count)).index_select(1, self.groups).to(theta.dtype)
        root = torch.sqrt(1 - beta2**count).to(theta.dtype)
        moved = theta - step_size * self.m / (self.v.sqrt() / root + ADAM_EPS)
        moved = torch.maximum(torch.minimum(moved, self.high), self.low)
        theta.copy_(torch.where(live[:, None], moved, theta))
        self._schedule(losses, steps + 1)

    def _schedule(self, losses: torch.Tensor, taken: torch.Tensor) -> None:
        """The step sizes after ``taken`` steps whose last loss is ``losses`` (frozen problems'
        step sizes change too, unread)."""
        factor = self.settings.decay_factor
        if self.settings.schedule == "multistep":
            crossed = (taken[:, None] == self.milestones).any(dim=1, keepdim=True)
            self.lr.copy_(torch.where(crossed, self.lr * factor, self.lr))
        elif self.settings.schedule == "plateau":
            loss = losses.double()
            better = loss < self.plateau_best * (1 - PLATEAU_THRESHOLD)
            self.plateau_best.copy_(torch.where(better, loss, self.plateau_best))
            self.bad_steps.copy_(torch.where(better, 0, self.bad_steps + 1))
            reduce = self.bad_steps > self.settings.plateau_patience
            smaller = self.lr * factor
            self.lr.copy_(
                torch.where(reduce[:, None] & (self.lr - smaller > PLATEAU_EPS), smaller, self.lr)
            )
            self.bad_steps.copy_(torch.where(reduce, 0, self.bad_steps))


def advance(
    progress: Progress,
    stepper: StackedAdam | LbfgsStep,
    theta: torch.Tensor,
    grad: torch.Tensor,
    losses: torch.Tensor,
) -> torch.Tensor:
    """One step of every problem, in the order torch's own loop takes it: note the loss (best
    iterate), move the live problems, let the schedule see the loss, count the step and stop
    the problems that are done. Returns the problems that were live in it."""
    live = progress.record(theta, losses)
    stepper.move(theta, grad, losses, live, progress.steps)
    progress.finish(losses, live)
    return live


class LbfgsStep:
    """torch's L-BFGS (and the torch schedule) for one problem, which it moves alone; its
    line search re-evaluates the loss (``reevaluate``: losses and gradient at ``theta``) and
    reads the device, so it is never captured."""

    def __init__(
        self,
        settings: Optimization,
        layout: Layout,
        spec: DataSpec,
        theta: torch.Tensor,
        reevaluate: Reevaluate,
    ) -> None:
        if theta.shape[0] != 1:
            raise ValueError("L-BFGS steps one problem per fit.")
        self.optimizer = torch.optim.LBFGS([theta], lr=settings.lr)
        self.scheduler = settings.torch_scheduler(self.optimizer)
        self.reevaluate = reevaluate
        low, high = column_bounds(layout, spec, settings.boxed)
        self.low, self.high = low.to(theta.device, theta.dtype), high.to(theta.device, theta.dtype)

    def move(
        self,
        theta: torch.Tensor,
        grad: torch.Tensor,
        losses: torch.Tensor,
        live: torch.Tensor,
        steps: torch.Tensor,
    ) -> None:
        """One L-BFGS step (its first evaluation recomputes ``grad``), the schedule, the box."""

        def closure() -> torch.Tensor:
            loss, gradient = self.reevaluate()
            theta.grad = gradient
            return loss.sum()

        with torch.enable_grad():
            self.optimizer.step(closure)
        theta.grad = None
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(float(losses.sum()))
        elif self.scheduler is not None:
            self.scheduler.step()
        theta.copy_(torch.maximum(torch.minimum(theta, self.high), self.low))
