"""Deep Leakage from Gradients (Zhu, Liu, Han, NeurIPS 2019), the baseline every later paper reports.

As the authors' code runs it: random images and, when the threat model withholds the labels,
random label logits whose softmax is the soft label the training loss sees; both are moved by
L-BFGS (torch's defaults) to minimize the squared distance of the gradients, with no prior and
no box. Its YAML holds those choices; this module adds only the learned labels.
"""

from __future__ import annotations

import torch

from gradinv.attacks.base import ServerView
from gradinv.attacks.gradient_inversion import GradientInversion, Problem, Variables
from gradinv.attacks.variables import LabelLogits
from gradinv.errors import ConfigError
from gradinv.federated.update import SharedUpdate


class DeepLeakage(GradientInversion):
    """Gradient matching that learns withheld labels as soft labels instead of inferring them."""

    def problem_labels(self, server: ServerView, update: SharedUpdate) -> torch.Tensor | None:
        """The shared labels when granted; otherwise none: they are learned with the images."""
        return super().problem_labels(server, update) if self.labels_known else None

    def init_variables(
        self, problem: Problem, server: ServerView, generator: torch.Generator
    ) -> Variables:
        """Standard-normal label logits (batch x classes) when the labels are withheld."""
        if problem.labels is not None:
            return {}
        outputs = server.model.head.out_features
        if outputs == 1:
            raise ConfigError(
                "attack=dlg learns withheld labels over a multiclass head; use model.head=multiclass "
                "or grant the labels."
            )
        logits = torch.randn((problem.update.batch_size, outputs), generator=generator)
        return {"labels": LabelLogits(logits)}
