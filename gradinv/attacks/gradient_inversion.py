"""The contract of every optimization attack: match the shared gradient by moving inputs.

An attack run is a set of independent *problems*, one per victim and random restart. Each
problem owns its candidate images, its learned variables (e.g. DIA's masks), the draws of its
sampling layers, its optimizer, schedule, best iterate and early stopping; the best restart of
each victim, by gradient distance, is its reconstruction.

An attack shapes only what is optimized and penalized, through five hooks: ``initial_images``
and ``init_variables`` (typed ``Variable``s, with their step size, bounds and the buffer they
replace; ``LabelLogits`` stand in for withheld labels), ``buffers`` (module buffers the forward
pass replays, e.g. WIIG's masks), ``penalty`` (the composed ``regularizers``, batched over
problems), ``problem_labels`` and ``matched_names``. How problems are stepped is the ``optim``
block of its YAML (``gradinv.attacks.optimization``); where they are stepped: the engine
(``gradinv.attacks.engine``), one Lightning fit (``gradinv.attacks.inversion_module``) for all
problems when ``vectorize``, else one per problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader

from gradinv.attacks.base import Attack, AttackRuntime, Reconstruction, ServerView
from gradinv.attacks.ignore import as_patterns, kept_names
from gradinv.attacks.inversion_module import InversionModule
from gradinv.attacks.labels import attack_labels, check_label_inference
from gradinv.attacks.objectives import OBJECTIVES
from gradinv.attacks.optimization import Optimization
from gradinv.attacks.regularizers import Regularizer
from gradinv.attacks.sampling import LayerSamples
from gradinv.attacks.variables import Variable
from gradinv.errors import ConfigError
from gradinv.federated.update import SharedUpdate
from gradinv.tensors import Tensors
from gradinv.typecheck import positive_int

Variables = dict[str, Variable]
INITS = ("randn", "rand", "zeros")


@dataclass
class Problem:
    """One independent optimization: a victim's shared update, attacked from one restart.

    ``samples`` says how the model's always-sampling layers draw for this problem.
    """

    victim: int
    update: SharedUpdate
    labels: torch.Tensor | None  # None: the attack learns them (a ``LabelLogits`` variable)
    seed: int
    samples: LayerSamples = field(repr=False)


class GradientInversion(Attack):
    """Gradient matching plus composable priors, stepped by ``optim``, with restarts.

    Subclasses add variables optimized with the images (``init_variables``) and replayed
    module buffers (``buffers``); priors are ``regularizers`` chosen in the YAML (null: none).
    Every field comes from the attack's YAML (``conf/attack/ig.yaml`` and the options built on
    it), which holds the only defaults.
    """

    def __init__(
        self,
        optim: Optimization,
        objective: str,
        regularizers: Mapping[str, Regularizer] | None,
        init: str,
        restarts: int,
        labels_known: bool,
        label_inference: str,
        samples_known: bool,
        vectorize: bool,
        per_call: int | None,
        cuda_graph: bool | str,
        sync_every: int,
        log_psnr_every: int,
        ignore_layers: str | Sequence[str] | None,
    ) -> None:
        if not isinstance(optim, Optimization):
            raise ConfigError(
                f"attack.optim must have _target_ gradinv.attacks.optimization.Optimization, got {optim!r}."
            )
        if not positive_int(restarts):
            raise ConfigError(f"attack.restarts must be a positive integer, got {restarts}.")
        if objective not in OBJECTIVES:
            raise ConfigError(
                f"attack.objective must be one of {sorted(OBJECTIVES)}, got '{objective}'."
            )
        if init not in INITS:
            raise ConfigError(f"attack.init must be 'randn', 'rand' or 'zeros', got '{init}'.")
        if per_call is not None and not positive_int(per_call):
            raise ConfigError(
                f"attack.per_call must be a positive integer or null (automatic), got {per_call}."
            )
        if not (cuda_graph == "auto" or isinstance(cuda_graph, bool)):
            raise ConfigError(f"attack.cuda_graph must be auto, true or false, got {cuda_graph!r}.")
        if not positive_int(sync_every):
            raise ConfigError(f"attack.sync_every must be a positive integer, got {sync_every}.")
        regularizers = regularizers or {}
        for name, regularizer in regularizers.items():
            if not isinstance(regularizer, Regularizer):
                raise ConfigError(
                    f"attack.regularizers.{name} must have a _target_ that is a "
                    f"gradinv.attacks.regularizers.Regularizer, got {regularizer!r}."
                )
            if not regularizer.weight >= 0:
                raise ConfigError(
                    f"attack.regularizers.{name}.weight must be non-negative, got {regularizer.weight}."
                )
        self.optim = optim
        self.objective = objective
        self.regularizers = dict(regularizers)
        self.init = init
        self.restarts = restarts
        self.labels_known = labels_known
        self.label_inference = check_label_inference(label_inference)
        self.samples_known = samples_known
        self.vectorize = vectorize
        self.per_call = per_call
        self.cuda_graph = cuda_graph
        self.sync_every = sync_every
        self.log_psnr_every = log_psnr_every
        self.ignore_layers = as_patterns(ignore_layers)

    @property
    def gradient_metric(self) -> str:
        """The metric of the objective's distance, e.g. 'gradient_cosine_distance'."""
        return f"gradient_{OBJECTIVES[self.objective].__name__}"

    def captures_on(self, device: torch.device) -> bool:
        """Whether the step is captured as a CUDA graph on ``device`` (``cuda_graph``)."""
        if self.cuda_graph is True and device.type != "cuda":
            raise ConfigError(
                f"attack.cuda_graph=true needs a CUDA device, and the attack runs on {device.type}; "
                "use attack.cuda_graph=auto."
            )
        return self.cuda_graph is not False and device.type == "cuda"

    # ----------------------------------------------------------------- the hooks
    def knowledge(self) -> dict[str, Any]:
        return {"labels_known": self.labels_known, "samples_known": self.samples_known}

    def initial_images(
        self, problem: Problem, server: ServerView, generator: torch.Generator
    ) -> torch.Tensor:
        """The candidate images a problem starts from: ``init`` noise in the model's input space,
        drawn on the CPU (the same start on every device)."""
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

    def buffers(self, problem: Problem) -> Tensors:
        """Module buffers the forward pass replays unchanged (none for plain IG); learned
        variables that name a buffer replace it on their own."""
        return {}

    def penalty(self, images: torch.Tensor, variables: Variables) -> torch.Tensor:
        """The priors added to each problem's gradient distance: every regularizer's terms, in
        order, on images and variables stacked along a leading problem axis."""
        total = images.new_zeros(images.shape[0])
        for regularizer in self.regularizers.values():
            for term in regularizer.terms(images, variables):
                total = total + term
        return total

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
        together = self.vectorize and self.optim.optimizer != "lbfgs"
        groups = [problems] if together else [[p] for p in problems]
        results: list[tuple[Problem, Reconstruction]] = []
        for group in groups:
            module = InversionModule(self, server, group)
            trainer = runtime.make_trainer(runtime.monitors)
            trainer.fit(module, DataLoader(range(self.optim.iterations), batch_size=None))
            results += list(zip(group, module.engine.reconstructions()))
            module.engine = (
                None  # its device memory (and CUDA graph) go now, not at a later collection
            )
        chosen = []
        for v in range(len(updates)):
            candidates = [rec for p, rec in results if p.victim == v]
            best = min(candidates, key=lambda rec: rec.gradient_distance)
            best.iterations = sum(rec.iterations for rec in candidates)
            chosen.append(best)
        return chosen

    def problem(
        self, server: ServerView, victim: int, restart: int, update: SharedUpdate, seed: int
    ) -> Problem:
        """The problem of attacking ``update`` (victim ``victim``) from restart ``restart``."""
        problem_seed = _problem_seed(seed, victim, restart)
        samples = LayerSamples(
            server.model, update, server.spec.shape, problem_seed + 1, self.samples_known
        )
        return Problem(victim, update, self.problem_labels(server, update), problem_seed, samples)


def _problem_seed(seed: int, victim: int, restart: int) -> int:
    """A seed per problem, so that vectorized and one-by-one runs start from the same point."""
    return (seed * 1_000_003 + victim * 10_007 + restart) % (2**63 - 1)
