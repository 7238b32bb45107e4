"""Epsilon of one federated round of DP-SGD, from Opacus' accountants (RDP or PRV).

A round samples the client's batch once, at ``sample_rate`` (its size over the client's dataset
size; 1 when the batch is all its data: no amplification by sampling), then takes noisy
gradient steps on it, of which one example enters at most ``steps`` (1 under FedSGD). Each step
is a Gaussian mechanism of sensitivity ``clip`` and noise multiplier sigma, and the adaptive
composition of ``steps`` of them is exactly one Gaussian mechanism of multiplier
sigma / sqrt(steps) (mu-GDP composes as sqrt(sum mu_i^2): Dong, Roth and Su, "Gaussian
differential privacy", JRSS B 2022), which the accountant subsamples once. At rate 1 this is Opacus' own composition of ``steps`` steps (a test
checks it); below 1 it does not claim the amplification of ``steps`` independent samplings,
which a round that reuses one batch does not have.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier

#: Opacus' accountants that gradinv offers: Renyi DP (Mironov 2017; Opacus' default) and the
#: numerical privacy-loss-random-variable accountant (Gopi et al. 2021; tighter).
ACCOUNTANTS = ("rdp", "prv")


@dataclass(frozen=True)
class RoundAccounting:
    """What epsilon depends on besides the noise: the round's sampling, steps, delta, accountant."""

    sample_rate: float
    steps: int
    delta: float
    accountant: str

    def epsilon(self, noise_multiplier: float) -> float:
        """Epsilon at ``delta`` of the round with noise multiplier ``noise_multiplier`` per
        step (infinite without noise)."""
        if noise_multiplier == 0:
            return math.inf
        accountant = create_accountant(mechanism=self.accountant)
        accountant.step(
            noise_multiplier=noise_multiplier / math.sqrt(self.steps), sample_rate=self.sample_rate
        )
        with np.errstate(divide="ignore"):  # PRV takes log(1 - rate) = -inf at rate 1, on purpose
            return float(accountant.get_epsilon(delta=self.delta))

    def noise_multiplier(self, epsilon: float) -> float:
        """The per-step noise multiplier whose round has epsilon at most ``epsilon`` (within
        Opacus' tolerance of 0.01), found by Opacus' search."""
        return _noise_multiplier(self, epsilon)


@lru_cache(maxsize=64)
def _noise_multiplier(round_: RoundAccounting, epsilon: float) -> float:
    """Cached: each victim batch of a run asks for the same round's multiplier. The search's
    first brackets (multipliers up to 20) fall outside RDP's orders, which Opacus warns of; the
    multiplier found is accounted again in ``epsilon``, where such a warning is shown."""
    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        warnings.filterwarnings("ignore", message="Optimal order is the (largest|smallest) alpha")
        composed = get_noise_multiplier(
            target_epsilon=epsilon,
            target_delta=round_.delta,
            sample_rate=round_.sample_rate,
            steps=1,
            accountant=round_.accountant,
        )
    return float(composed) * math.sqrt(round_.steps)
