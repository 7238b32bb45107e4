"""Every problem's loss at ``theta``: the distance of its simulated update to the shared one, on
the batching path, plus the attack's priors; and the loss's gradient with respect to ``theta``.

The shared gradients, their norms, the labels, replayed buffers and the stacked sampling seeds
are put on the device once. A step then computes the distances of all problems at once
(``folded`` or ``vmap``) or one problem after another (``loop``), the priors batched over the
problems, and the gradient for every problem's images and variables; where a batched call
holds fewer problems than there are (``Batching.chunk``: the CPU's caches or the GPU's memory),
the problems go in chunks, each chunk's graph freed before the next is built.
"""

from __future__ import annotations

import torch
from torch import nn

from gradinv.attacks.batching import Batching
from gradinv.attacks.folded import folded_distances, squared_norms
from gradinv.attacks.layout import Layout
from gradinv.attacks.objectives import OBJECTIVES
from gradinv.attacks.sampling import StackedSamples
from gradinv.attacks.variables import Variable, learned_labels
from gradinv.attacks.vectorized import batched_distances
from gradinv.federated.gradients import parameter_gradients
from gradinv.federated.local_update import local_update
from gradinv.tensors import Tensors


class ProblemLoss:
    """The loss of a group of problems that share a layout, names, and local procedure.

    ``attack`` supplies the priors (``penalty``) and the replayed buffers (``buffers``);
    ``problems`` are its ``Problem``s, ``names`` the matched parameters (the same for all).
    With ``flat`` the plain path compares all layers' gradients as one vector: a few kernels
    instead of a few per layer, what a GPU wants, where each costs a launch; a CPU is faster per
    layer, which spares the copy (6% on the ViT).
    """

    def __init__(
        self,
        attack,
        model: nn.Module,
        problems: list,
        names: list[str],
        layout: Layout,
        device: torch.device,
        dtype: torch.dtype,
        flat: bool,
    ) -> None:
        self.attack = attack
        self.model = model
        self.layout = layout
        self.names = names
        self.objective = attack.objective
        self.distance = OBJECTIVES[attack.objective]
        self.local = problems[0].update.local
        self.targets = {
            k: torch.stack([p.update.gradients[k] for p in problems]).to(device, dtype)
            for k in names
        }
        self.target_norms = squared_norms(self.targets)
        self.flat_targets = (
            torch.cat([t.flatten(1) for t in self.targets.values()], dim=1) if flat else None
        )
        self.labels = None
        if problems[0].labels is not None:
            self.labels = torch.stack([p.labels for p in problems]).to(device)
        fixed = [attack.buffers(p) for p in problems]
        self.fixed = {k: torch.stack([f[k] for f in fixed]).to(device, dtype) for k in fixed[0]}
        self.samples = StackedSamples([p.samples for p in problems], device, dtype)
        self.batching = Batching("loop")

    @property
    def problems(self) -> int:
        return self.target_norms.shape[0]

    # --------------------------------------------------------------- what a forward pass takes
    def forward_labels(
        self, variables: dict[str, Variable], rows: slice = slice(None)
    ) -> torch.Tensor:
        """The labels of the training loss: fixed, or the softmax of learned logits."""
        logits = learned_labels(variables)
        return self.labels[rows] if logits is None else logits.softmax(dim=-1)

    def buffers(
        self, variables: dict[str, Variable], counters: torch.Tensor, rows: slice = slice(None)
    ) -> Tensors:
        """The module buffers of one forward pass: learned variables that name one, replayed
        buffers, and this step's draws of the sampling layers (at the problems' ``counters``)."""
        learned = {v.buffer: v.value for v in variables.values() if v.buffer is not None}
        fixed = {k: v[rows] for k, v in self.fixed.items()}
        return {**learned, **fixed, **self.samples.draw(counters, rows)}

    # --------------------------------------------------------------- distances
    def distances(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        buffers: Tensors,
        rows: slice = slice(None),
    ) -> torch.Tensor:
        """Each problem's gradient distance (problems ``rows``, all arguments stacked over them)."""
        path = self.batching.path
        if path == "loop":
            first = rows.start or 0
            return torch.stack(
                [
                    self._one(
                        images[i], labels[i], {k: b[i] for k, b in buffers.items()}, first + i
                    )
                    for i in range(images.shape[0])
                ]
            )
        targets = {k: t[rows] for k, t in self.targets.items()}
        if path == "folded":
            flat = None if self.flat_targets is None else self.flat_targets[rows]
            return self._folded(images, labels, buffers, targets, self.target_norms[rows], flat)
        return self._vmapped(images, labels, buffers, targets)

    def _folded(self, images, labels, buffers, targets, norms, flat_targets) -> torch.Tensor:
        return folded_distances(
            self.model,
            self.batching.folding,
            images,
            labels,
            buffers,
            targets,
            norms,
            self.objective,
            flat_targets,
        )

    def _vmapped(self, images, labels, buffers, targets) -> torch.Tensor:
        return batched_distances(self.model, images, labels, buffers, targets, self.distance)

    def _one(self, images, labels, buffers, row: int, create_graph: bool = True) -> torch.Tensor:
        """Problem ``row``'s distance through the plain autograd path (FedAvg: its local steps)."""
        if self.local is None:
            grads = parameter_gradients(
                self.model, images, labels, self.names, buffers, create_graph=create_graph
            )
        else:
            grads, _ = local_update(
                self.model, images, labels, self.local, self.names, buffers, create_graph
            )
        norm = self.target_norms[row]
        if self.flat_targets is not None:
            flat = torch.cat([grads[k].reshape(-1) for k in self.names])
            return self.distance({"all": flat}, {"all": self.flat_targets[row]}, norm)
        return self.distance(grads, {k: t[row] for k, t in self.targets.items()}, norm)

    # --------------------------------------------------------------- the step's loss and gradient
    def value_and_grad(
        self, theta: torch.Tensor, counters: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every problem's loss at ``theta`` (distance plus priors; problems at step ``counters``)
        and its gradient with respect to ``theta``: one call per ``Batching.chunk`` problems (one
        per problem on the loop path), each call's graph freed before the next is built."""
        problems = theta.shape[0]
        size = 1 if self.batching.path == "loop" else min(self.batching.chunk or problems, problems)
        if size == problems:
            losses = self.losses(theta, counters)
            (grad,) = torch.autograd.grad(losses.sum(), theta)
            return losses.detach(), grad
        values, grads = [], []
        for start in range(0, problems, size):
            rows = slice(start, min(start + size, problems))
            part = theta[rows]
            loss = self.losses(part, counters[rows], rows)
            grads.append(torch.autograd.grad(loss.sum(), part)[0])
            values.append(loss.detach())
        return torch.cat(values), torch.cat(grads)

    def losses(
        self, theta: torch.Tensor, counters: torch.Tensor, rows: slice = slice(None)
    ) -> torch.Tensor:
        """The differentiable losses of problems ``rows``, whose rows of theta ``theta`` holds."""
        images, variables = self.layout.views(theta)
        labels = self.forward_labels(variables, rows)
        distances = self.distances(images, labels, self.buffers(variables, counters, rows), rows)
        return distances + self.attack.penalty(images, variables)

    def final_distances(self, theta: torch.Tensor, counters: torch.Tensor) -> list[float]:
        """Each problem's gradient distance at ``theta`` without priors, one by one on the plain
        path (what restarts are chosen by and results.json reports)."""
        images, variables = self.layout.views(theta.detach())
        labels = self.forward_labels(variables)
        buffers = self.buffers(variables, counters)
        values = []
        with torch.enable_grad():
            for i in range(images.shape[0]):
                distance = self._one(
                    images[i],
                    labels[i],
                    {k: b[i] for k, b in buffers.items()},
                    i,
                    create_graph=False,
                )
                values.append(float(distance.detach()))
        return values
