"""PPP (Scheliga et al., 2022): PRECODE plus Gaussian noise on the gradients an attacker can use.

PRECODE already makes the gradients of the bottleneck's decoder and every later layer
stochastic; PPP perturbs only the remaining ones (the layers before the bottleneck and its
encoder), which are exactly those the PRECODE-aware attacker (``attack=ig_precode``) matches.
"""

from __future__ import annotations

from torch import nn

from gradinv.defenses.perturbation import Gradients, add_noise, check_sigma
from gradinv.defenses.precode import Precode


class PPP(Precode):
    """PRECODE's bottleneck, and noise of std ``sigma`` on every gradient before its decoder."""

    perturbs_update = True

    def __init__(self, latent: int = 256, beta: float = 1e-3, sigma: float = 1e-2) -> None:
        super().__init__(latent, beta)
        self.sigma = check_sigma(sigma)

    def protect(self, gradients: Gradients, model: nn.Module) -> Gradients:
        stochastic = set(self.skippable_parameters(model))
        return add_noise(gradients, [k for k in gradients if k not in stochastic], self.sigma)
