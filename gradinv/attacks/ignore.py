"""Which shared gradients an attack leaves out of its gradient-matching loss.

``attack.ignore_layers`` lists fnmatch patterns on parameter names (``head.*``); the entry
``defended`` stands for the parameters the clients' defense declares stochastic
(``ServerView.defended``, e.g. PRECODE's decoder and every later layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from gradinv.attacks.base import ServerView
from gradinv.errors import ConfigError

DEFENDED = "defended"


def as_patterns(ignore_layers: str | Sequence[str] | None) -> tuple[str, ...]:
    """One pattern or a list of them, as a tuple of strings."""
    if ignore_layers is None:
        return ()
    if isinstance(ignore_layers, str):
        return (ignore_layers,)
    return tuple(str(p) for p in ignore_layers)


def kept_names(patterns: tuple[str, ...], server: ServerView, names: list[str]) -> list[str]:
    """``names`` without those the patterns match; every pattern must match, something must stay."""
    ignored: set[str] = set()
    for pattern in patterns:
        if pattern == DEFENDED:
            if not server.defended:
                raise ConfigError(
                    "attack.ignore_layers entry 'defended' needs a defense that declares stochastic "
                    "layers (defense=precode or defense=ppp)."
                )
            matched = set(server.defended) & set(names)
        else:
            matched = {n for n in names if fnmatchcase(n, pattern)}
        if not matched:
            raise ConfigError(
                f"attack.ignore_layers entry '{pattern}' matches no shared gradient; "
                f"use fnmatch patterns on parameter names such as '{names[-1]}', or 'defended'."
            )
        ignored |= matched
    kept = [n for n in names if n not in ignored]
    if not kept:
        raise ConfigError("attack.ignore_layers leaves no gradient to match; ignore fewer layers.")
    return kept
