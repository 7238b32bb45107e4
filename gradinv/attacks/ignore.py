"""Which shared gradients an attack leaves out of its gradient-matching loss.

``attack.ignore_layers`` lists fnmatch patterns on parameter names (``head.*``); the entry
``precode`` stands for the PRECODE bottleneck's decoder and every later layer, traced from the
server's model, whose gradients the bottleneck's sampling makes stochastic.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Sequence

from torch import nn

from gradinv.defenses.precode import stochastic_parameters
from gradinv.errors import ConfigError

PRECODE = "precode"


def as_patterns(ignore_layers: str | Sequence[str] | None) -> tuple[str, ...]:
    """One pattern or a list of them, as a tuple of strings."""
    if ignore_layers is None:
        return ()
    if isinstance(ignore_layers, str):
        return (ignore_layers,)
    return tuple(str(p) for p in ignore_layers)


def kept_names(patterns: tuple[str, ...], model: nn.Module, names: list[str]) -> list[str]:
    """``names`` without those the patterns match; every pattern must match, something must stay."""
    ignored: set[str] = set()
    for pattern in patterns:
        if pattern == PRECODE:
            matched = set(stochastic_parameters(model)) & set(names)
        else:
            matched = {n for n in names if fnmatchcase(n, pattern)}
        if not matched:
            raise ConfigError(
                f"attack.ignore_layers entry '{pattern}' matches no shared gradient; "
                f"use fnmatch patterns on parameter names such as '{names[-1]}', or 'precode'."
            )
        ignored |= matched
    kept = [n for n in names if n not in ignored]
    if not kept:
        raise ConfigError("attack.ignore_layers leaves no gradient to match; ignore fewer layers.")
    return kept
