"""What every attack receives and returns, and the boundary it may not cross."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.func import replace_all_batch_norm_modules_

from gradinv.data.spec import DataSpec
from gradinv.federated.update import SharedUpdate


@dataclass(frozen=True)
class ServerView:
    """What the server, and so the attacker, holds: the global model and the data's public spec.

    ``model`` computes the client's function once it is given the client's randomness (masks,
    samples); build it with ``ServerView.of``. ``defended`` names the parameters whose shared
    gradients the clients' defense declares stochastic (``Defense.skippable_parameters``): the
    server distributes the defended model, so an aware attacker knows them and may skip them.
    """

    model: nn.Module
    spec: DataSpec
    defended: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        model: nn.Module,
        spec: DataSpec,
        batch_statistics: bool = True,
        defended: Sequence[str] = (),
    ) -> ServerView:
        """The server's copy of ``model``, set up to simulate the client's forward pass.

        Normalization follows the client (``FederatedClient.batch_statistics``): a client whose
        batch norm normalizes with its batch's own statistics (train mode) gets a copy whose
        batch norm always does (``torch.func``'s ``replace_all_batch_norm_modules_``: no
        running statistics are read or updated, which also lets ``vmap`` give every problem its
        own batch statistics); otherwise the copy keeps the running statistics the server holds.
        The copy itself stays in eval mode, so its stochastic layers act only through randomness
        an attack supplies (learned or replayed masks, samples), except those that sample in
        every mode (PRECODE's bottleneck).
        """
        replica = copy.deepcopy(model)
        if batch_statistics:
            replace_all_batch_norm_modules_(replica)
        return cls(replica.eval(), spec, tuple(defended))


@dataclass
class Reconstruction:
    """An attack's guess for one victim batch, in the model's (normalized) input space.

    ``iterations`` counts the optimizer steps spent on this victim over all its restarts.
    """

    images: torch.Tensor
    labels: torch.Tensor
    gradient_distance: float
    iterations: int
    masks: dict[str, torch.Tensor] | None = None


@dataclass
class AttackRuntime:
    """How an attack runs: its seed and a factory for Lightning Trainers with the run's logger.

    ``make_trainer(callbacks)`` returns a Trainer for one optimization, with ``callbacks`` added;
    ``monitors`` are evaluation-side callbacks (they read private data, the attack never does).
    """

    seed: int
    make_trainer: Callable[[list[L.Callback]], L.Trainer]
    monitors: list[L.Callback] = field(default_factory=list)


class Attack(ABC):
    """An attacker: from the server's view and the shared updates, reconstruct each victim batch."""

    #: Attacks that solve the exact gradient's equations (R-GAP) set this; the experiment then
    #: refuses defenses whose ``perturbs_update`` is set.
    needs_exact_update = False
    #: The metric that ``Reconstruction.gradient_distance`` is, e.g. 'gradient_cosine_distance';
    #: results.json reports its mean under this name.
    gradient_metric: str

    @abstractmethod
    def knowledge(self) -> dict[str, Any]:
        """The threat model's grants this attack uses, recorded with every run."""

    def report(self) -> dict[str, Any]:
        """Attack-specific findings of the last run for results.json (e.g. a rank analysis)."""
        return {}

    @abstractmethod
    def reconstruct(
        self, server: ServerView, updates: Sequence[SharedUpdate], runtime: AttackRuntime
    ) -> list[Reconstruction]:
        """One reconstruction per shared update, in order."""
