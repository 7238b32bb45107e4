"""The machinery every optimization attack shares: match the shared gradient by moving inputs.

An attack run is a set of independent *problems*, one per victim and random restart. Each
problem owns its candidate images, its learned variables (e.g. DIA's masks), the draws of its
sampling layers, its optimizer, schedule, best iterate and early stopping; ``vectorize``
decides whether the problems are stepped together in one Lightning fit, their gradient
distances computed at once (folded into one batch, or by ``vmap``), or one fit after another,
with identical results.

The contract between the loop (``InversionModule``) and an attack is narrow: the loop reads
the attack's ``optimization`` settings and ``objective`` name, and calls four hooks:
``initial_images`` and ``init_variables`` (typed ``Variable``s, with their step size, bounds
and the buffer they replace; ``LabelLogits`` stand in for withheld labels), ``buffers`` (extra
module buffers for the forward pass, e.g. replayed masks) and ``penalty`` (the composed
``regularizers``), plus ``problem_labels`` and ``matched_names``.
Everything a problem needs while it runs lives on its ``Problem``, never on the attack.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from gradinv.attacks.base import Attack, AttackRuntime, Reconstruction, ServerView
from gradinv.attacks.folded import (
    Folding, FoldingError, folded_distances, folded_owners, plan_folding, squared_norms,
)
from gradinv.attacks.ignore import as_patterns, kept_names
from gradinv.attacks.labels import attack_labels, check_label_inference
from gradinv.attacks.objectives import OBJECTIVES
from gradinv.attacks.optimization import Optimization
from gradinv.attacks.per_call import MIN_PER_CALL, peak_bytes, problems_per_call
from gradinv.attacks.regularizers import Regularizer, TotalVariation
from gradinv.attacks.sampling import LayerSamples
from gradinv.attacks.variables import Variable, dropout_masks, learned_labels
from gradinv.attacks.vectorized import batched_distances, in_chunks, input_statistics
from gradinv.errors import ConfigError
from gradinv.federated.gradients import parameter_gradients
from gradinv.federated.local_update import local_update
from gradinv.federated.update import SharedUpdate

Tensors = dict[str, torch.Tensor]
Variables = dict[str, Variable]
log = logging.getLogger(__name__)
# A single problem is folded only if that forms at most 1/4 of the gradient entries the loop
# forms: the MLP and CNN (a large linear layer on few rows) gain 1.4x; the ViT, whose linear
# layers see 65 token rows each, ran 0.9x as fast as the loop (2-core CPU).
SINGLE_FOLD_GAIN = 4
PROGRESS_EVERY = 10  # steps between progress-bar loss updates (``self.log`` costs ~1.5 ms)


@dataclass
class Problem:
    """One independent optimization: a victim's shared update, attacked from one restart.

    ``samples`` draws the randomness of the model's always-sampling layers for this problem.
    """

    victim: int
    update: SharedUpdate
    labels: torch.Tensor | None  # None: the attack learns them (a ``LabelLogits`` variable)
    seed: int
    samples: LayerSamples = field(repr=False)


class GradientInversion(Attack):
    """Gradient matching plus composable priors, Adam on signed image gradients, box, restarts.

    Subclasses add variables optimized with the images (``init_variables``) and module buffers
    for the forward pass (``buffers``); priors are ``regularizers`` chosen in the YAML.
    """

    def __init__(
        self,
        iterations: int = 300,
        lr: float = 0.1,
        lr_schedule: str = "multistep",
        lr_decay_at: Sequence[float] = (0.375, 0.625, 0.875),
        lr_decay_factor: float = 0.1,
        plateau_patience: int = 800,
        signed: bool = True,
        boxed: bool = True,
        objective: str = "cosine",
        regularizers: Mapping[str, Regularizer] | None = None,
        init: str = "randn",
        restarts: int = 1,
        labels_known: bool = True,
        label_inference: str = "auto",
        samples_known: bool = False,
        keep_best: bool = False,
        stop_patience: int | None = None,
        stop_loss: float | None = None,
        vectorize: bool = True,
        optimizer: str = "adam",
        per_call: int | None = None,
        log_psnr_every: int = 50,
        ignore_layers: str | Sequence[str] | None = (),
    ) -> None:
        self.optimization = Optimization(
            iterations, lr, lr_schedule, tuple(lr_decay_at), lr_decay_factor, plateau_patience,
            signed, boxed, keep_best, stop_patience, stop_loss, vectorize, optimizer, per_call,
        )
        if not isinstance(restarts, int) or restarts < 1:
            raise ConfigError(f"attack.restarts must be a positive integer, got {restarts}.")
        if objective not in OBJECTIVES:
            raise ConfigError(
                f"attack.objective must be one of {sorted(OBJECTIVES)}, got '{objective}'."
            )
        if init not in ("randn", "rand", "zeros"):
            raise ConfigError(f"attack.init must be 'randn', 'rand' or 'zeros', got '{init}'.")
        self.regularizers = dict(
            {"total_variation": TotalVariation(0.1)} if regularizers is None else regularizers
        )
        for name, regularizer in self.regularizers.items():
            if not isinstance(regularizer, Regularizer):
                raise ConfigError(
                    f"attack.regularizers.{name} must have a _target_ that is a "
                    f"gradinv.attacks.regularizers.Regularizer, got {regularizer!r}."
                )
            if not regularizer.weight >= 0:
                raise ConfigError(
                    f"attack.regularizers.{name}.weight must be non-negative, got {regularizer.weight}."
                )
        self.objective = objective
        self.init = init
        self.restarts = restarts
        self.labels_known = labels_known
        self.label_inference = check_label_inference(label_inference)
        self.samples_known = samples_known
        self.log_psnr_every = log_psnr_every
        self.ignore_layers = as_patterns(ignore_layers)

    @property
    def gradient_distance(self) -> str:
        """The objective's distance, named as its function: 'cosine_distance', 'squared_distance'."""
        return OBJECTIVES[self.objective].__name__

    # ----------------------------------------------------------------- the loop's hooks
    def knowledge(self) -> dict[str, Any]:
        return {"labels_known": self.labels_known, "samples_known": self.samples_known}

    def initial_images(
        self, problem: Problem, server: ServerView, generator: torch.Generator
    ) -> torch.Tensor:
        """The candidate images a problem starts from: ``init`` noise in the model's input space."""
        shape = (problem.update.batch_size, *server.spec.shape)
        if self.init == "randn":
            return torch.randn(shape, generator=generator)
        if self.init == "rand":
            lo, hi = server.spec.pixel_bounds(torch.empty(0))
            return lo + (hi - lo) * torch.rand(shape, generator=generator)
        return torch.zeros(shape)

    def init_variables(
        self, problem: Problem, server: ServerView, generator: torch.Generator
    ) -> Variables:
        """Extra tensors optimized jointly with the images (none for plain IG)."""
        return {}

    def buffers(self, problem: Problem, variables: Variables) -> Tensors:
        """Module buffers for the forward pass: the learned variables that name one."""
        return {v.buffer: v.value for v in variables.values() if v.buffer is not None}

    def penalty(self, images: torch.Tensor, variables: Variables) -> torch.Tensor:
        """The priors added to the gradient distance: every regularizer's terms, in order."""
        total = None
        for regularizer in self.regularizers.values():
            for term in regularizer.terms(images, variables):
                total = term if total is None else total + term
        return images.new_zeros(()) if total is None else total

    def problem_labels(self, server: ServerView, update: SharedUpdate) -> torch.Tensor | None:
        """The labels a problem matches with: shared if granted, else inferred by ``label_inference``
        (``gradinv.attacks.labels``); None if learned."""
        return attack_labels(
            server.model, server.spec.shape, update, self.labels_known, self.label_inference
        )

    def matched_names(self, server: ServerView, update: SharedUpdate) -> list[str]:
        """The parameters whose gradients enter the distance: all shared but ``ignore_layers``."""
        return kept_names(self.ignore_layers, server, list(update.gradients))

    # ----------------------------------------------------------------- running
    def reconstruct(
        self, server: ServerView, updates: Sequence[SharedUpdate], runtime: AttackRuntime
    ) -> list[Reconstruction]:
        problems = [
            self.problem(server, v, r, update, runtime.seed)
            for v, update in enumerate(updates)
            for r in range(self.restarts)
        ]
        groups = [problems] if self.optimization.vectorize else [[p] for p in problems]
        results: list[tuple[Problem, Reconstruction]] = []
        for group in groups:
            module = InversionModule(self, server, group)
            trainer = runtime.make_trainer(runtime.monitors)
            trainer.fit(module, DataLoader(range(self.optimization.iterations), batch_size=None))
            results += list(zip(group, module.reconstructions()))
        chosen = []
        for v in range(len(updates)):
            candidates = [rec for p, rec in results if p.victim == v]
            best = min(candidates, key=lambda rec: rec.gradient_loss)
            best.iterations = sum(rec.iterations for rec in candidates)
            chosen.append(best)
        return chosen

    def problem(
        self, server: ServerView, victim: int, restart: int, update: SharedUpdate, seed: int
    ) -> Problem:
        """The problem of attacking ``update`` (victim ``victim``) from restart ``restart``."""
        problem_seed = _problem_seed(seed, victim, restart)
        samples = LayerSamples(server.model, update, server.spec.shape, problem_seed + 1, self.samples_known)
        return Problem(victim, update, self.problem_labels(server, update), problem_seed, samples)


def _problem_seed(seed: int, victim: int, restart: int) -> int:
    """A seed per problem, so that vectorized and one-by-one runs start from the same point."""
    return (seed * 1_000_003 + victim * 10_007 + restart) % (2**63 - 1)


class _Progress:
    """Per-problem bookkeeping: best loss and iterate, steps taken, whether it still runs."""

    def __init__(self) -> None:
        self.best_loss = math.inf
        self.best: Tensors | None = None
        self.since_best = 0
        self.steps = 0
        self.active = True


class InversionModule(L.LightningModule):
    """A Lightning module with manual optimization over a group of independent problems."""

    def __init__(self, attack: GradientInversion, server: ServerView, problems: list[Problem]) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.attack = attack
        self.settings = attack.optimization
        self.distance = OBJECTIVES[attack.objective]
        self.spec = server.spec
        self.model = server.model
        self.problems = problems
        self.names = [attack.matched_names(server, p.update) for p in problems]
        self.candidates = nn.ModuleList()
        self.learned: list[Variables] = []
        for problem in problems:
            generator = torch.Generator().manual_seed(problem.seed)
            images = attack.initial_images(problem, server, generator)
            variables = attack.init_variables(problem, server, generator)
            params = {"images": nn.Parameter(images)}
            for j, variable in enumerate(variables.values()):
                variable.value = params[f"v{j}"] = nn.Parameter(variable.value)
            self.candidates.append(nn.ParameterDict(params))
            self.learned.append(variables)
        self.progress = [_Progress() for _ in problems]
        self.schedulers: list[Any] = []
        self.targets: list[Tensors] = []
        self.labels: list[torch.Tensor | None] = []
        self.batching: str | None = None
        self.folding: Folding | None = None
        self.chunk: int | None = None  # problems per batched call (``per_call``)
        self.pending_losses: list[tuple[int, float]] = []
        self.last_loss: float | None = None  # the latest step's mean loss over live problems

    @property
    def progress_name(self) -> str:
        """What the progress bar shows: the attack and the victims this fit attacks."""
        victims = sorted({p.victim + 1 for p in self.problems})
        span = f"{victims[0]}" if len(victims) == 1 else f"{victims[0]}-{victims[-1]}"
        return f"{type(self.attack).__name__} victim {span}"

    def train(self, mode: bool = True) -> "InversionModule":
        """Lightning switches modules to train mode; the server model stays in eval mode.

        Its normalization already follows the client's (``ServerView.of``); its stochastic
        layers act through the randomness the attack supplies.
        """
        super().train(mode)
        self.model.eval()
        return self

    def current_images(self) -> list[tuple[int, torch.Tensor]]:
        """(victim, candidate images) per problem, for evaluation-side monitors."""
        return [(p.victim, c["images"].detach()) for p, c in zip(self.problems, self.candidates)]

    def current_masks(self) -> list[tuple[int, Tensors]]:
        """(victim, the dropout masks the attack learns) per problem, for evaluation-side monitors."""
        return [
            (p.victim, {k: v.detach() for k, v in dropout_masks(variables).items()})
            for p, variables in zip(self.problems, self.learned)
        ]

    def configure_optimizers(self):
        optimizers = []
        for params, variables in zip(self.candidates, self.learned):
            optimizers.append(self.settings.optimizer_for(params["images"], list(variables.values())))
        self.schedulers = [self.settings.scheduler(opt) for opt in optimizers]
        return optimizers

    def on_fit_start(self) -> None:
        for problem, names in zip(self.problems, self.names):
            problem.samples.start(self.device)
            self.targets.append({k: problem.update.gradients[k].to(self.device) for k in names})
            self.labels.append(None if problem.labels is None else problem.labels.to(self.device))
        for p in self.model.parameters():
            p.requires_grad_(True)
        self.train()  # recent Lightning keeps modules' modes: set the attack's mode explicitly
        self.batching = self._batching() if self.settings.vectorize else None
        if self.batching is not None:
            if None not in self.labels:
                self.stacked_labels = torch.stack(self.labels)
            self.stacked_targets = {k: torch.stack([t[k] for t in self.targets]) for k in self.names[0]}
            self.target_norms = squared_norms(self.stacked_targets)

    def _batching(self) -> str | None:
        """How to compute all problems' distances at once, exactly as the loop would, if at all.

        'folded': the problems as one batch through the model, each problem's distance from
        its own rows at the modules owning the matched parameters (``gradinv.attacks.folded``;
        fastest, any count); 'vmap': ``torch.func.vmap`` over two or more problems where
        folding does not apply (an auxiliary loss) and no layer normalizes by its input's
        statistics; None: the loop over problems, or for a single problem that folding would
        not spare much (``SINGLE_FOLD_GAIN``). Both batched paths run in chunks of
        ``self.chunk`` problems, as the CPU's caches or the GPU's memory allow (``per_call``);
        where fewer than ``MIN_PER_CALL`` fit, the loop is as fast.
        """
        layouts = {
            (
                tuple(c["images"].shape), tuple(self.forward_labels(i).shape), tuple(self.names[i]),
                tuple((k, tuple(v.shape)) for k, v in self.attack.buffers(p, self.learned[i]).items()),
                p.samples.layout,
            )
            for i, (p, c) in enumerate(zip(self.problems, self.candidates))
        }
        blocker = "problems of different shapes" if len(layouts) > 1 else None
        if self.settings.optimizer == "lbfgs":
            blocker = "L-BFGS steps each problem with its own line search"
        if any(p.update.local is not None for p in self.problems):
            blocker = "FedAvg's local steps are simulated problem by problem"
        if blocker is None:
            entries = sum(t.numel() for t in self.targets[0].values())
            owners = folded_owners(self.model, self.names[0], self.attack.objective)
            if owners is not None:
                try:
                    self.folding = self._plan_folding(owners)
                except FoldingError as error:
                    log.info("attack.vectorize: not folding problems into one batch (%s).", error)
                else:
                    if len(self.problems) > 1:
                        return self._per_call("folded", self.folding.entries)
                    # one problem gains from folding only where it forms far less
                    return "folded" if self.folding.entries * SINGLE_FOLD_GAIN <= entries else None
            if len(self.problems) < 2:
                return None
            statistics = input_statistics(self.model)
            if statistics is None:
                return self._per_call("vmap", entries)
            blocker = f"torch.func's second derivative through {statistics} would be wrong"
        log.info("attack.vectorize: stepping problems one by one (%s).", blocker)
        return None

    def _per_call(self, path: str, entries: int) -> str | None:
        """``path`` with ``self.chunk`` problems per call: ``attack.per_call`` if set, else
        ``per_call``'s choice, or None (the loop) where fewer than ``MIN_PER_CALL`` fit."""
        if self.settings.per_call is not None:
            self.chunk = self.settings.per_call
            return path
        self.chunk = problems_per_call(entries, self.device, lambda: self._step_bytes(path))
        if self.chunk >= MIN_PER_CALL:
            return path
        log.info(
            "attack.vectorize: stepping problems one by one (a %s call holds %d problem(s) of %d "
            "entries each on %s, fewer than %d: no faster than the loop).",
            path, self.chunk, entries, self.device.type, MIN_PER_CALL,
        )
        return None

    def _step_bytes(self, path: str) -> int:
        """What one step of the first problem alone on ``path`` allocates at its peak (a CUDA
        device's counters); its draws are restarted so that the attack's steps are unchanged."""
        try:
            return peak_bytes(lambda: self._probe_step(path), self.device)
        finally:
            self.problems[0].samples.start(self.device)

    def _probe_step(self, path: str) -> None:
        """The first problem's distance on ``path``, alone, and its backward pass."""
        buffers = {k: v[None] for k, v in self.forward_buffers(0).items()}
        targets = {k: t[None] for k, t in self.targets[0].items()}
        stacked = (self.candidates[0]["images"][None], self.forward_labels(0)[None], buffers, targets)
        if path == "folded":
            distance = self._folded(*stacked, squared_norms(targets))
        else:
            distance = self._vmapped(*stacked)
        torch.autograd.grad(distance.sum(), list(self.candidates[0].parameters()), allow_unused=True)

    def _plan_folding(self, owners: dict[str, nn.Module]) -> Folding:
        """``plan_folding``'s probe forward pass, on the first problem."""
        buffers = {k: v[None] for k, v in self.forward_buffers(0).items()}
        self.problems[0].samples.start(self.device)  # the probe's draws are not the attack's
        return plan_folding(self.model, owners, self.candidates[0]["images"][None], buffers)

    def forward_labels(self, i: int) -> torch.Tensor:
        """Problem ``i``'s labels for the training loss: fixed, or the softmax of learned logits."""
        logits = learned_labels(self.learned[i])
        return self.labels[i] if logits is None else logits.softmax(dim=-1)

    def forward_buffers(self, i: int) -> Tensors:
        """Problem ``i``'s buffers for one forward: the attack's, plus its sampling layers' draws."""
        problem = self.problems[i]
        buffers = self.attack.buffers(problem, self.learned[i])
        return {**buffers, **problem.samples.draw(self.candidates[i]["images"])}

    def loss(self, i: int, create_graph: bool = True) -> torch.Tensor:
        """Gradient distance plus penalty for problem ``i`` at its current candidate."""
        images, local = self.candidates[i]["images"], self.problems[i].update.local
        labels, buffers = self.forward_labels(i), self.forward_buffers(i)
        if local is None:
            grads = parameter_gradients(
                self.model, images, labels, self.names[i], buffers, create_graph=create_graph
            )
        else:
            grads, _ = local_update(self.model, images, labels, local, self.names[i], buffers, create_graph)
        distance = self.distance(grads, self.targets[i])
        if not create_graph:
            return distance
        return distance + self.attack.penalty(images, self.learned[i])

    def batched_loss(self, live: list[int]) -> torch.Tensor:
        """``loss(i)`` for every problem in ``live``, with one ``vmap`` for the gradient distances."""
        images = [self.candidates[i]["images"] for i in live]
        buffers = [self.forward_buffers(i) for i in live]
        stacked = (
            torch.stack(images),
            self._stacked_labels(live),
            {k: torch.stack([b[k] for b in buffers]) for k in buffers[0]},
            {k: self._rows(t, live) for k, t in self.stacked_targets.items()},
        )
        if self.batching == "folded":
            norms = self._rows(self.target_norms, live)
            distances = in_chunks(self._folded, self.chunk, *stacked, norms)
        else:
            distances = in_chunks(self._vmapped, self.chunk, *stacked)
        priors = [self.attack.penalty(x, self.learned[i]) for x, i in zip(images, live)]
        return distances + torch.stack(priors)

    def _folded(self, images, labels, buffers, targets, norms) -> torch.Tensor:
        return folded_distances(
            self.model, self.folding, images, labels, buffers, targets, norms, self.attack.objective
        )

    def _vmapped(self, images, labels, buffers, targets) -> torch.Tensor:
        return batched_distances(self.model, images, labels, buffers, targets, self.distance)

    def _stacked_labels(self, live: list[int]) -> torch.Tensor:
        """The live problems' forward labels, stacked (computed anew when they are learned)."""
        if None in self.labels:
            return torch.stack([self.forward_labels(i) for i in live])
        return self._rows(self.stacked_labels, live)

    def _rows(self, stacked: torch.Tensor, live: list[int]) -> torch.Tensor:
        """The live problems' rows of a tensor stacked over all problems (no copy if all live)."""
        if len(live) == len(self.problems):
            return stacked
        return stacked.index_select(0, torch.tensor(live, device=stacked.device))

    def training_step(self, batch, batch_idx: int) -> None:
        live = [i for i, state in enumerate(self.progress) if state.active]
        if self.batching is not None:
            losses = self.batched_loss(live)
            inputs = [p for i in live for p in self.candidates[i].parameters()]
            self.manual_backward(losses.sum(), inputs=inputs)
        else:
            losses = torch.stack([self._backward_one(i) for i in live])
        optimizers = self.optimizers(use_pl_optimizer=False)
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        values = losses.detach().tolist()  # the step's one device-to-host copy
        for i, loss in zip(live, values):
            self._step(i, loss, optimizers[i])
        mean = self.last_loss = sum(values) / len(values)
        self.pending_losses.append((batch_idx, mean))
        if len(self.pending_losses) >= self.trainer.log_every_n_steps:
            self._flush_losses()
        if batch_idx % PROGRESS_EVERY == 0:
            self.log("attack/loss", mean, prog_bar=True, logger=False)
        if not any(state.active for state in self.progress):
            self.trainer.should_stop = True

    def _backward_one(self, i: int) -> torch.Tensor:
        """Problem ``i``'s loss, back-propagated at once so that only one graph is alive."""
        loss = self.loss(i)
        self.manual_backward(loss, inputs=list(self.candidates[i].parameters()))
        return loss.detach()

    def _reevaluate(self, i: int, optimizer: torch.optim.Optimizer) -> torch.Tensor:
        """L-BFGS's closure: problem ``i``'s loss and gradients at the optimizer's current point."""
        optimizer.zero_grad(set_to_none=True)
        return self._backward_one(i)

    def _flush_losses(self) -> None:
        """Hand every buffered step's mean loss to the logger, each with its own step.

        ``self.log`` costs milliseconds per call, a large share of a small attack's step, so
        the logger gets the values directly, every ``trainer.log_every_n_steps`` steps, and the
        progress bar is updated every ``PROGRESS_EVERY`` steps.
        """
        if self.logger is not None:
            for step, value in self.pending_losses:
                self.logger.log_metrics({"attack/loss": value}, step=step)
        self.pending_losses.clear()

    def on_train_end(self) -> None:
        self._flush_losses()

    def _step(self, i: int, loss: float, optimizer: torch.optim.Optimizer) -> None:
        state, params, settings = self.progress[i], self.candidates[i], self.settings
        if loss < state.best_loss:
            state.best_loss, state.since_best = loss, 0
            if settings.keep_best:
                state.best = {k: v.detach().clone() for k, v in params.items()}
        else:
            state.since_best += 1
        if settings.signed:
            params["images"].grad.sign_()
        if isinstance(optimizer, torch.optim.LBFGS):
            optimizer.step(lambda: self._reevaluate(i, optimizer))
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler = self.schedulers[i]
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(loss)
        elif scheduler is not None:
            scheduler.step()
        with torch.no_grad():
            if settings.boxed:
                lo, hi = self.spec.pixel_bounds(params["images"])
                params["images"].copy_(torch.maximum(torch.minimum(params["images"], hi), lo))
            for variable in self.learned[i].values():
                if variable.bounds is not None:
                    variable.value.clamp_(*variable.bounds)
        state.steps += 1
        if settings.should_stop(state.since_best, loss):
            state.active = False

    def reconstructions(self) -> list[Reconstruction]:
        """Each problem's answer (its best iterate if ``keep_best``) and its gradient distance."""
        results = []
        for i, (problem, state) in enumerate(zip(self.problems, self.progress)):
            params = self.candidates[i]
            if self.settings.keep_best and state.best is not None:
                with torch.no_grad():
                    for key, value in state.best.items():
                        params[key].copy_(value)
            with torch.enable_grad():
                distance = float(self.loss(i, create_graph=False).detach())
            masks = {k: v.detach().cpu() for k, v in dropout_masks(self.learned[i]).items()}
            logits = learned_labels(self.learned[i])
            labels = self.labels[i] if logits is None else logits.argmax(dim=-1)
            results.append(
                Reconstruction(
                    images=params["images"].detach().cpu(),
                    labels=labels.detach().cpu(),
                    gradient_loss=distance,
                    iterations=state.steps,
                    masks=masks or None,
                )
            )
        return results
