"""How a group of problems computes its gradient distances: folded, vmapped, or one by one.

'folded': the problems as one batch through the model, each problem's distance from its own
rows at the modules owning the matched parameters (``gradinv.attacks.folded``; fastest, any
count); 'vmap': ``torch.func.vmap`` over two or more problems where folding does not apply (an
auxiliary loss) and no layer normalizes by its input's statistics; 'loop': one problem after
another, for FedAvg's local steps, L-BFGS, or, on a CPU, a single problem that folding would
not spare much (``SINGLE_FOLD_GAIN``; on a GPU, folded is fewer kernels even for one). Both batched paths run in chunks of ``chunk`` problems, as the
CPU's caches or the GPU's memory allow (``per_call``); where fewer than ``MIN_PER_CALL`` fit,
the loop is as fast. Every choice but the obvious ones is logged with its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gradinv.attacks.folded import Folding, FoldingError, folded_owners, plan_folding
from gradinv.attacks.per_call import MIN_PER_CALL, peak_bytes, problems_per_call
from gradinv.attacks.vectorized import input_statistics

log = logging.getLogger(__name__)
# A single problem is folded only if that forms at most 1/4 of the gradient entries the loop
# forms: the MLP and CNN (a large linear layer on few rows) gain 1.4x; the ViT, whose linear
# layers see 65 token rows each, ran 0.9x as fast as the loop (2-core CPU).
SINGLE_FOLD_GAIN = 4


@dataclass(frozen=True)
class Batching:
    """The path, the problems per batched call (None: all), and the folding plan if folded."""

    path: str
    chunk: int | None = None
    folding: Folding | None = None


def choose_batching(loss, theta: torch.Tensor, lbfgs: bool, per_call: int | None) -> Batching:
    """The fastest exact path for ``loss``'s problems (a ``ProblemLoss``) starting at ``theta``."""
    blocker = None
    if lbfgs:
        blocker = "L-BFGS steps each problem with its own line search"
    elif loss.local is not None:
        blocker = "FedAvg's local steps are simulated problem by problem"
    if blocker is None:
        entries = sum(t[0].numel() for t in loss.targets.values())
        owners = folded_owners(loss.model, loss.names, loss.objective)
        if owners is not None:
            try:
                folding = _plan_folding(loss, theta, owners)
            except FoldingError as error:
                log.info("attack.vectorize: not folding problems into one batch (%s).", error)
            else:
                if loss.problems > 1:
                    return _per_call(
                        loss, theta, Batching("folded", folding=folding), folding.entries, per_call
                    )
                # One problem: on a GPU (flat gradients) folded is fewer kernels; on a CPU it
                # gains only where it forms far less.
                if loss.flat_targets is not None or folding.entries * SINGLE_FOLD_GAIN <= entries:
                    return Batching("folded", folding=folding)
                return Batching("loop")
        if loss.problems < 2:
            return Batching("loop")
        statistics = input_statistics(loss.model)
        if statistics is None:
            return _per_call(loss, theta, Batching("vmap"), entries, per_call)
        blocker = f"torch.func's second derivative through {statistics} would be wrong"
    if loss.problems > 1:
        log.info("attack.vectorize: stepping problems one by one (%s).", blocker)
    return Batching("loop")


def _per_call(
    loss, theta: torch.Tensor, batching: Batching, entries: int, per_call: int | None
) -> Batching:
    """``batching`` with its problems per call: ``attack.per_call`` if set, else ``per_call``'s
    choice; the loop where fewer than ``MIN_PER_CALL`` fit."""
    if per_call is not None:
        return Batching(batching.path, per_call, batching.folding)
    device = theta.device
    chunk = problems_per_call(
        entries, device, lambda: peak_bytes(_probe(loss, theta, batching), device)
    )
    if chunk >= MIN_PER_CALL:
        return Batching(batching.path, chunk, batching.folding)
    log.info(
        "attack.vectorize: stepping problems one by one (a %s call holds %d problem(s) of %d "
        "entries each on %s, fewer than %d: no faster than the loop).",
        batching.path,
        chunk,
        entries,
        device.type,
        MIN_PER_CALL,
    )
    return Batching("loop")


def _first_problem(loss, theta: torch.Tensor):
    """The first problem's row of ``theta`` (a leaf), its images, labels and buffers at its
    first step, stacked alone."""
    row = theta[:1].detach().requires_grad_()
    images, variables = loss.layout.views(row)
    counters = torch.zeros(1, dtype=torch.int64, device=theta.device)
    rows = slice(0, 1)
    return (
        row,
        images,
        loss.forward_labels(variables, rows),
        loss.buffers(variables, counters, rows),
    )


def _plan_folding(loss, theta: torch.Tensor, owners) -> Folding:
    """``plan_folding``'s probe forward pass, on the first problem."""
    _, images, _, buffers = _first_problem(loss, theta)
    return plan_folding(loss.model, owners, images, buffers)


def _probe(loss, theta: torch.Tensor, batching: Batching) -> Callable[[], None]:
    """The first problem's distance on ``batching``'s path, alone, and its backward pass."""

    def step() -> None:
        previous, loss.batching = loss.batching, batching
        try:
            row, images, labels, buffers = _first_problem(loss, theta)
            distance = loss.distances(images, labels, buffers, slice(0, 1))
            torch.autograd.grad(distance.sum(), row)
        finally:
            loss.batching = previous

    return step
