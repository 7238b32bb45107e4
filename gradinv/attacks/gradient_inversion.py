"""The machinery every optimization attack shares: match the shared gradient by moving inputs.

An attack run is a set of independent *problems*, one per victim and random restart. Each
problem owns its candidate images, any extra variables (e.g. DIA's masks), its optimizer,
schedule, best iterate and early stopping; ``vectorize`` decides whether the problems are
stepped together in one Lightning fit, their gradient distances computed by one ``vmap``, or
one fit after another, with identical results.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Sequence

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from gradinv.attacks.base import Attack, AttackRuntime, Reconstruction, ServerView
from gradinv.attacks.ignore import as_patterns, kept_names
from gradinv.attacks.labels import attack_labels
from gradinv.attacks.objectives import OBJECTIVES, total_variation
from gradinv.attacks.linear_products import linear_distances, linear_layers, squared_norms
from gradinv.attacks.vectorized import batched_distances
from gradinv.errors import ConfigError
from gradinv.federated.gradients import parameter_gradients
from gradinv.federated.update import SharedUpdate
from gradinv.models.stochastic import (
    StochasticLayer,
    randomness_key,
    randomness_shapes,
    stochastic_layers,
)

Tensors = dict[str, torch.Tensor]
log = logging.getLogger(__name__)
VMAP_ELEMENTS = 2**25  # ~128 MB of float32 gradients stacked over problems
PROGRESS_EVERY = 10  # steps between progress-bar loss updates (``self.log`` costs ~1.5 ms)


@dataclass
class Problem:
    """One independent optimization: a victim's shared update, attacked from one restart."""

    victim: int
    restart: int
    update: SharedUpdate
    labels: torch.Tensor
    seed: int


class GradientInversion(Attack):
    """Gradient matching plus a TV prior, Adam on signed image gradients, box constraint, restarts.

    Subclasses add variables optimized with the images (``init_variables``), hand them to the
    model as buffers (``buffers``), add their own penalty (``regularizer``) and keep them
    feasible (``project``).
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
        tv_weight: float = 1e-1,
        init: str = "randn",
        restarts: int = 1,
        labels_known: bool = True,
        samples_known: bool = False,
        keep_best: bool = False,
        stop_patience: int | None = None,
        stop_loss: float | None = None,
        vectorize: bool = True,
        log_psnr_every: int = 50,
        ignore_layers: str | Sequence[str] | None = (),
    ) -> None:
        if not isinstance(iterations, int) or iterations < 1:
            raise ConfigError(f"attack.iterations must be a positive integer, got {iterations}.")
        if not isinstance(restarts, int) or restarts < 1:
            raise ConfigError(f"attack.restarts must be a positive integer, got {restarts}.")
        if not lr > 0:
            raise ConfigError(f"attack.lr must be positive, got {lr}.")
        if lr_schedule not in ("multistep", "plateau", "constant"):
            raise ConfigError(
                f"attack.lr_schedule must be 'multistep', 'plateau' or 'constant', got '{lr_schedule}'."
            )
        if not all(0 < f < 1 for f in lr_decay_at):
            raise ConfigError(
                f"attack.lr_decay_at must list fractions of the iterations in (0, 1), got {list(lr_decay_at)}."
            )
        if objective not in OBJECTIVES:
            raise ConfigError(
                f"attack.objective must be one of {sorted(OBJECTIVES)}, got '{objective}'."
            )
        if init not in ("randn", "rand", "zeros"):
            raise ConfigError(f"attack.init must be 'randn', 'rand' or 'zeros', got '{init}'.")
        if tv_weight < 0:
            raise ConfigError(f"attack.tv_weight must be non-negative, got {tv_weight}.")
        self.iterations = iterations
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.lr_decay_at = tuple(lr_decay_at)
        self.lr_decay_factor = lr_decay_factor
        self.plateau_patience = plateau_patience
        self.signed = signed
        self.boxed = boxed
        self.objective_name = objective
        self.objective = OBJECTIVES[objective]
        self.tv_weight = tv_weight
        self.init = init
        self.restarts = restarts
        self.labels_known = labels_known
        self.samples_known = samples_known
        self.keep_best = keep_best
        self.stop_patience = stop_patience
        self.stop_loss = stop_loss
        self.vectorize = vectorize
        self.log_psnr_every = log_psnr_every
        self.ignore_layers = as_patterns(ignore_layers)

    @property
    def gradient_distance(self) -> str:
        """The objective's distance, named as its function: 'cosine_distance', 'squared_distance'."""
        return self.objective.__name__

    # ----------------------------------------------------------------- extension points
    def knowledge(self) -> dict[str, Any]:
        return {"labels_known": self.labels_known, "samples_known": self.samples_known}

    def init_variables(
        self, problem: Problem, server: ServerView, generator: torch.Generator
    ) -> Tensors:
        """Extra tensors optimized jointly with the images (none for plain IG)."""
        return {}

    def buffers(self, problem: Problem, variables: Tensors) -> Tensors:
        """Module buffers to substitute in the attacker's forward pass (e.g. dropout masks)."""
        return {}

    def regularizer(self, images: torch.Tensor, variables: Tensors) -> torch.Tensor:
        """The prior added to the gradient distance: total variation of the candidate images."""
        return self.tv_weight * total_variation(images)

    def project(self, variables: Tensors) -> None:
        """Keep extra variables feasible after each step."""

    def variable_lr(self) -> float:
        """Adam's step size for the extra variables (the images' ``lr`` unless overridden)."""
        return self.lr

    def matched_names(self, server: ServerView, update: SharedUpdate) -> list[str]:
        """The parameters whose gradients enter the distance: all shared but ``ignore_layers``."""
        return kept_names(self.ignore_layers, server.model, list(update.gradients))

    # ----------------------------------------------------------------- running
    def reconstruct(
        self, server: ServerView, updates: Sequence[SharedUpdate], runtime: AttackRuntime
    ) -> list[Reconstruction]:
        problems = [
            Problem(v, r, update, attack_labels(server.model, update, self.labels_known), _problem_seed(runtime.seed, v, r))
            for v, update in enumerate(updates)
            for r in range(self.restarts)
        ]
        groups = [problems] if self.vectorize else [[p] for p in problems]
        results: list[tuple[Problem, Reconstruction]] = []
        for group in groups:
            module = InversionModule(self, server, group)
            trainer = runtime.make_trainer(self.iterations, runtime.monitors)
            trainer.fit(module, DataLoader(range(self.iterations), batch_size=None))
            results += list(zip(group, module.reconstructions()))
        chosen = []
        for v in range(len(updates)):
            candidates = [rec for p, rec in results if p.victim == v]
            best = min(candidates, key=lambda rec: rec.gradient_loss)
            best.iterations = sum(rec.iterations for rec in candidates)
            chosen.append(best)
        return chosen

    def initial_images(self, problem: Problem, server: ServerView, generator: torch.Generator):
        shape = (problem.update.batch_size, *server.spec.shape)
        if self.init == "randn":
            return torch.randn(shape, generator=generator)
        if self.init == "rand":
            lo, hi = server.spec.pixel_bounds(torch.empty(0))
            return lo + (hi - lo) * torch.rand(shape, generator=generator)
        return torch.zeros(shape)

    def make_scheduler(self, optimizer: torch.optim.Optimizer):
        if self.lr_schedule == "multistep":
            milestones = sorted({math.floor(f * self.iterations) for f in self.lr_decay_at})
            return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, self.lr_decay_factor)
        if self.lr_schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=self.lr_decay_factor, patience=self.plateau_patience
            )
        return None


def _sampled_shapes(server: ServerView, problem: Problem) -> dict[str, tuple[StochasticLayer, torch.Size]]:
    """The layers that draw randomness on the attacker's side too, with their draws' shapes."""
    layers = {n: m for n, m in stochastic_layers(server.model).items() if m.samples_in_eval}
    if not layers:
        return {}
    shapes = randomness_shapes(server.model, (problem.update.batch_size, *server.spec.shape), layers)
    keys = {name: randomness_key(name, layer) for name, layer in layers.items()}
    return {keys[name]: (layer, shapes[keys[name]]) for name, layer in layers.items()}


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
        self.spec = server.spec
        self.model = server.model
        self.problems = problems
        self.names = [attack.matched_names(server, p.update) for p in problems]
        self.candidates = nn.ModuleList()
        self.variable_keys: list[list[str]] = []
        for problem in problems:
            generator = torch.Generator().manual_seed(problem.seed)
            images = attack.initial_images(problem, server, generator)
            extra = attack.init_variables(problem, server, generator)
            self.variable_keys.append(list(extra))
            params = {"images": nn.Parameter(images)}
            params.update({f"v{j}": nn.Parameter(t) for j, t in enumerate(extra.values())})
            self.candidates.append(nn.ParameterDict(params))
        self.progress = [_Progress() for _ in problems]
        self.sampled = [_sampled_shapes(server, p) for p in problems]
        self.generators: list[torch.Generator] = []
        self.schedulers: list[Any] = []
        self.targets: list[Tensors] = []
        self.labels: list[torch.Tensor] = []
        self.batching: str | None = None
        self.layers: dict[str, nn.Linear] | None = None
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

    def variables(self, i: int) -> Tensors:
        params = self.candidates[i]
        return {key: params[f"v{j}"] for j, key in enumerate(self.variable_keys[i])}

    def current_images(self) -> list[tuple[int, torch.Tensor]]:
        """(victim, candidate images) per problem, for evaluation-side monitors."""
        return [(p.victim, c["images"].detach()) for p, c in zip(self.problems, self.candidates)]

    def current_variables(self) -> list[tuple[int, Tensors]]:
        """(victim, the attack's extra variables, e.g. learned masks) per problem, for monitors."""
        return [
            (p.victim, {k: v.detach() for k, v in self.variables(i).items()})
            for i, p in enumerate(self.problems)
        ]

    def configure_optimizers(self):
        optimizers = []
        for i, params in enumerate(self.candidates):
            groups = [{"params": [params["images"]], "lr": self.attack.lr}]
            extra = list(self.variables(i).values())
            if extra:
                groups.append({"params": extra, "lr": self.attack.variable_lr()})
            optimizers.append(torch.optim.Adam(groups))
        self.schedulers = [self.attack.make_scheduler(opt) for opt in optimizers]
        return optimizers

    def on_fit_start(self) -> None:
        self.generators = [
            torch.Generator(device=self.device).manual_seed(p.seed + 1) for p in self.problems
        ]
        for problem in self.problems:
            names = self.names[len(self.targets)]
            self.targets.append({k: problem.update.gradients[k].to(self.device) for k in names})
            self.labels.append(problem.labels.to(self.device))
        for p in self.model.parameters():
            p.requires_grad_(True)
        self.train()  # recent Lightning keeps modules' modes: set the attack's mode explicitly
        self.batching = self._batching() if self.attack.vectorize else None
        if self.batching is not None:
            self.stacked_labels = torch.stack(self.labels)
            self.stacked_targets = {k: torch.stack([t[k] for t in self.targets]) for k in self.names[0]}
            self.target_norms = squared_norms(self.stacked_targets)

    def _batching(self) -> str | None:
        """How to compute all problems' distances at once, exactly as the loop would, if at all.

        'products': linear layers only, through gradient inner products (fastest, any count);
        'vmap': one ``torch.func.vmap`` over two or more problems, unless their stacked
        gradients would exceed ``VMAP_ELEMENTS`` (then the loop is faster on every device seen);
        None: the loop over problems.
        """
        buffers = [self.attack.buffers(p, self.variables(i)) for i, p in enumerate(self.problems)]
        layouts = {
            (
                tuple(c["images"].shape), tuple(self.labels[i].shape), tuple(self.names[i]),
                tuple((k, tuple(v.shape)) for k, v in buffers[i].items()),
                tuple((k, tuple(shape)) for k, (_, shape) in self.sampled[i].items()),
            )
            for i, c in enumerate(self.candidates)
        }
        blocker = "problems of different shapes" if len(layouts) > 1 else None
        if blocker is None:
            self.layers = linear_layers(self.model, self.names[0], self.attack.objective_name)
            if self.layers is not None:
                return "products"
            stacked = len(self.problems) * sum(t.numel() for t in self.targets[0].values())
            if len(self.problems) < 2:
                return None
            if stacked > VMAP_ELEMENTS:
                blocker = f"{stacked} stacked gradient entries exceed {VMAP_ELEMENTS}"
        if blocker is not None:
            log.info("attack.vectorize: stepping problems one by one (%s).", blocker)
            return None
        return "vmap"

    def loss(self, i: int, create_graph: bool = True) -> torch.Tensor:
        """Gradient distance plus prior for problem ``i`` at its current candidate."""
        images, variables = self.candidates[i]["images"], self.variables(i)
        grads = parameter_gradients(
            self.model, images, self.labels[i], self.names[i], self.forward_buffers(i, variables),
            create_graph=create_graph,
        )
        distance = self.attack.objective(grads, self.targets[i])
        if not create_graph:
            return distance
        return distance + self.attack.regularizer(images, variables)

    def batched_loss(self, live: list[int]) -> torch.Tensor:
        """``loss(i)`` for every problem in ``live``, with one ``vmap`` for the gradient distances."""
        images = [self.candidates[i]["images"] for i in live]
        variables = [self.variables(i) for i in live]
        buffers = [self.forward_buffers(i, v) for i, v in zip(live, variables)]
        stacked = (
            torch.stack(images),
            self._rows(self.stacked_labels, live),
            {k: torch.stack([b[k] for b in buffers]) for k in buffers[0]},
            {k: self._rows(t, live) for k, t in self.stacked_targets.items()},
        )
        if self.batching == "products":
            distances = linear_distances(
                self.model, self.layers, *stacked, self._rows(self.target_norms, live),
                self.attack.objective_name,
            )
        else:
            distances = batched_distances(self.model, *stacked, self.attack.objective)
        priors = [self.attack.regularizer(x, v) for x, v in zip(images, variables)]
        return distances + torch.stack(priors)

    def forward_buffers(self, i: int, variables: Tensors) -> Tensors:
        """Problem ``i``'s buffers for one forward: the attack's, plus the draws of layers that
        sample in every mode (PRECODE), fresh from the problem's generator at every call, or the
        client's own when the threat model grants them (``attack.samples_known``)."""
        buffers = dict(self.attack.buffers(self.problems[i], variables))
        if not self.sampled[i]:
            return buffers
        if self.attack.samples_known:
            granted = self.problems[i].update.samples
            if granted is None:
                raise ConfigError(
                    "attack.samples_known=true needs a client that shares its samples "
                    "(client.share_samples=true)."
                )
            return {**buffers, **{k: granted[k].to(self.device) for k in self.sampled[i]}}
        like = self.candidates[i]["images"]
        for key, (layer, shape) in self.sampled[i].items():
            buffers[key] = layer.draw(shape, like, self.generators[i])
        return buffers

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
        for i, loss in zip(live, losses.detach().tolist()):
            self._step(i, loss, optimizers[i])
        mean = self.last_loss = float(losses.detach().mean())
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
        state, params = self.progress[i], self.candidates[i]
        if loss < state.best_loss:
            state.best_loss, state.since_best = loss, 0
            if self.attack.keep_best:
                state.best = {k: v.detach().clone() for k, v in params.items()}
        else:
            state.since_best += 1
        if self.attack.signed:
            params["images"].grad.sign_()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler = self.schedulers[i]
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(loss)
        elif scheduler is not None:
            scheduler.step()
        with torch.no_grad():
            if self.attack.boxed:
                lo, hi = self.spec.pixel_bounds(params["images"])
                params["images"].copy_(torch.maximum(torch.minimum(params["images"], hi), lo))
            self.attack.project(self.variables(i))
        state.steps += 1
        patience, threshold = self.attack.stop_patience, self.attack.stop_loss
        if (patience is not None and state.since_best >= patience) or (
            threshold is not None and loss < threshold
        ):
            state.active = False

    def reconstructions(self) -> list[Reconstruction]:
        """Each problem's answer (its best iterate if ``keep_best``) and its gradient distance."""
        results = []
        for i, (problem, state) in enumerate(zip(self.problems, self.progress)):
            params = self.candidates[i]
            if self.attack.keep_best and state.best is not None:
                with torch.no_grad():
                    for key, value in state.best.items():
                        params[key].copy_(value)
            with torch.enable_grad():
                distance = float(self.loss(i, create_graph=False))
            variables = {k: v.detach().cpu() for k, v in self.variables(i).items()}
            results.append(
                Reconstruction(
                    images=params["images"].detach().cpu(),
                    labels=self.labels[i].cpu(),
                    gradient_loss=distance,
                    iterations=state.steps,
                    masks=variables or None,
                )
            )
        return results
