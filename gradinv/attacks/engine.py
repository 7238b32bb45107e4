"""All problems of one fit as tensors on one device, stepped together: the attack's inner loop.

The engine owns everything a problem has during optimization (``theta``: its images and
variables; the optimizer's moments and step sizes; best iterate, steps, stop flag) as tensors
with a leading problem axis, allocated once. ``step`` is then a fixed sequence of kernels,
whatever the number of problems, and reads nothing back to the host: each step's mean loss goes
to a device log that ``flush`` reads every ``sync_every`` steps (for the logger, the progress
bar, and stopping the fit once every problem has stopped; results do not depend on it). On a
CUDA device the step is captured once as a CUDA graph and replayed (``attack.cuda_graph``).
The engine is no ``nn.Module``: Lightning's teardown, which moves the module it fits, never
moves it, and results are read from it after the fit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from gradinv.attacks.base import Reconstruction, ServerView
from gradinv.attacks.batching import choose_batching
from gradinv.attacks.cuda_graph import CapturedStep, warm_up
from gradinv.attacks.layout import Layout
from gradinv.attacks.problem_loss import ProblemLoss
from gradinv.attacks.stepping import LbfgsStep, Progress, StackedAdam, advance
from gradinv.attacks.variables import dropout_masks, learned_labels
from gradinv.device import full_float32

log = logging.getLogger(__name__)
WARM_UP_STEPS = 3  # eager steps before a capture, as torch's CUDA graph notes ask


@dataclass(frozen=True)
class Flushed:
    """What ``flush`` read: (step, mean loss over the problems still running) for each step
    since the last flush in which any ran, and whether any problem still runs."""

    losses: list[tuple[int, float]]
    running: bool
    latest: float | None  # the mean loss of the last step taken, if any problem ran in it


class InversionEngine:
    """The problems of one fit (equal layouts) of ``attack`` against ``server``, on ``device``."""

    def __init__(self, attack, server: ServerView, problems: list, device: torch.device) -> None:
        self.attack = attack
        self.problems = problems
        self.settings = attack.optim
        full_float32(device)  # the client's update and the attacker's in the same precision
        self.model = server.model.to(device).eval()  # moved once; a no-op once it is there
        for parameter in self.model.parameters():
            parameter.requires_grad_(True)
        dtype = next(self.model.parameters()).dtype
        rows = []
        for (
            problem
        ) in problems:  # drawn on the CPU from the problem's seed: the same start anywhere
            generator = torch.Generator().manual_seed(problem.seed)
            rows.append(
                (
                    attack.initial_images(problem, server, generator),
                    attack.init_variables(problem, server, generator),
                )
            )
        layouts = [Layout(images, variables, self.settings.lr) for images, variables in rows]
        if len({layout.signature() for layout in layouts}) != 1:
            raise ValueError("the problems of one fit must share one layout")
        self.layout = layouts[0]
        names = attack.matched_names(server, problems[0].update)
        self.theta = self.layout.stack(rows).to(device, dtype).requires_grad_()
        flat = device.type == "cuda"  # one gradient vector per problem where kernels cost launches
        self.loss = ProblemLoss(
            attack, self.model, problems, names, self.layout, device, dtype, flat
        )
        lbfgs = self.settings.optimizer == "lbfgs"
        self.loss.batching = choose_batching(self.loss, self.theta, lbfgs, attack.per_call)
        self.progress = Progress(self.settings, self.theta)
        if lbfgs:
            reevaluate = lambda: self.loss.value_and_grad(self.theta, self.progress.steps)  # noqa: E731
            self.stepper = LbfgsStep(
                self.settings, self.layout, server.spec, self.theta, reevaluate
            )
        else:
            self.stepper = StackedAdam(self.settings, self.layout, server.spec, self.theta)
        self.sync_every = attack.sync_every
        self.tick = torch.zeros((), dtype=torch.int64, device=device)
        self.mean_log = torch.zeros(self.sync_every, dtype=torch.float64, device=device)
        self.live_log = torch.zeros(self.sync_every, dtype=torch.int64, device=device)
        self.steps_taken = 0  # host-side count of ``step`` calls
        self.flushed_at = 0
        self.latest: float | None = None
        self.capture = attack.captures_on(device) and not lbfgs
        self.graph: CapturedStep | None = None

    @property
    def batching(self) -> str:
        return self.loss.batching.path

    # ------------------------------------------------------------------ stepping
    def step(self) -> None:
        """One optimizer step of every running problem (stopped ones stay frozen)."""
        if self.capture and self.graph is None and self.steps_taken >= WARM_UP_STEPS:
            self.graph = self._captured()
        if self.graph is not None:
            self.graph.replay()
        elif self.capture:
            warm_up(self._step)
        else:
            self._step()
        self.steps_taken += 1

    def _captured(self) -> CapturedStep | None:
        try:
            graph = CapturedStep(self._step)
        except RuntimeError as error:  # an operation that cannot be captured: stay eager
            log.warning(
                "attack.cuda_graph: stepping without a CUDA graph (%s).", str(error).splitlines()[0]
            )
            self.capture = False
            return None
        log.info("attack.cuda_graph: the step runs as a CUDA graph.")
        return graph

    def _step(self) -> None:
        """The step's work: losses and gradient, bookkeeping, the move, the log."""
        losses, grad = self.loss.value_and_grad(self.theta, self.progress.steps)
        with torch.no_grad():
            live = advance(self.progress, self.stepper, self.theta, grad, losses)
            self._log(losses, live)

    def _log(self, losses: torch.Tensor, live: torch.Tensor) -> None:
        """This step's mean loss over the live problems, into the device log."""
        slot = torch.remainder(self.tick, self.sync_every).view(1)
        count = live.sum()
        mean = (losses.double() * live).sum() / count.clamp_min(1)
        self.mean_log.index_copy_(0, slot, mean.view(1))
        self.live_log.index_copy_(0, slot, count.view(1))
        self.tick.add_(1)

    def flush(self) -> Flushed:
        """The logged means since the last flush, read in one copy to the host."""
        pending = self.steps_taken - self.flushed_at
        packed = torch.cat(
            [self.mean_log, self.live_log.double(), self.progress.active.any().double().view(1)]
        )
        values = packed.cpu().tolist()
        means, lives, running = values[: self.sync_every], values[self.sync_every : -1], values[-1]
        first = self.flushed_at
        losses = [
            (step, means[step % self.sync_every])
            for step in range(first, first + pending)
            if lives[step % self.sync_every] > 0
        ]
        if pending:
            ran = losses and losses[-1][0] == self.steps_taken - 1
            self.latest = losses[-1][1] if ran else None
        self.flushed_at = self.steps_taken
        return Flushed(losses, bool(running), self.latest)

    # ------------------------------------------------------------------ reading the problems
    def images(self) -> torch.Tensor:
        """The current candidates, (problems, batch, C, H, W)."""
        return self.layout.views(self.theta.detach())[0]

    def masks(self) -> list[dict[str, torch.Tensor]]:
        """Each problem's current learned dropout masks."""
        _, variables = self.layout.views(self.theta.detach())
        stacked = dropout_masks(variables)
        return [{k: v[i] for k, v in stacked.items()} for i in range(len(self.problems))]

    def reconstructions(self) -> list[Reconstruction]:
        """Each problem's answer (its best iterate if ``keep_best``) and its gradient distance."""
        theta = self.theta.detach()
        if self.progress.best is not None:
            improved = torch.isfinite(self.progress.best_loss)[:, None]
            theta = torch.where(improved, self.progress.best, theta)
        distances = self.loss.final_distances(theta, self.progress.steps)
        images, variables = self.layout.views(theta)
        logits = learned_labels(variables)
        labels = self.loss.labels if logits is None else logits.argmax(dim=-1)
        masks = dropout_masks(variables)
        steps = self.progress.steps.tolist()
        return [
            Reconstruction(
                images=images[i].cpu(),
                labels=labels[i].cpu(),
                gradient_distance=distances[i],
                iterations=steps[i],
                masks={k: v[i].cpu() for k, v in masks.items()} or None,
            )
            for i in range(len(self.problems))
        ]
