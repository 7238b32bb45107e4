"""``resume=true``: a finished run of the same configuration is returned, not run again.

The configuration compared is the one a run records in results.json: resolved, without the
attack fields its class does not take (``drop_unused_attack_fields``) and without the fields
that do not change a cell's result (``comparable``). A finished run of another configuration
is never overwritten: the run stops with a sentence naming the first field that differs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from gradinv.errors import ConfigError
from gradinv.tracking.results import finished
from gradinv.typecheck import unused_fields

log = logging.getLogger(__name__)


def resumed(folder: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The stored results of the run that finished in ``folder`` with ``config``, left untouched;
    None when none finished there; a ConfigError when the one that did had another config."""
    stored = finished(folder)
    if stored is None:
        return None
    difference = first_difference(comparable(stored.get("config")), comparable(config))
    if difference is not None:
        raise ConfigError(
            f"resume=true found a finished run of another configuration in {folder} "
            f"({difference}); point hydra.sweep.dir (or hydra.run.dir) at a new folder."
        )
    log.info("resume: %s already finished; skipped.", folder)
    return stored


def drop_unused_attack_fields(cfg: DictConfig, attack: str) -> None:
    """Remove the attack fields its class does not take (a closed-form attack's placeholders
    for the optimization fields a sweep sets for the other attacks), logging those that were set."""
    unused = unused_fields(cfg.attack)
    ignored = [
        f"{path}={value}"
        for key in unused
        for path, value in _set_leaves(f"attack.{key}", cfg.attack[key])
    ]
    if ignored:
        log.info(
            "attack=%s does not use %s (set for the other attacks of a sweep): ignored.",
            attack,
            ", ".join(ignored),
        )
    with open_dict(cfg):
        for key in unused:
            del cfg.attack[key]


def _set_leaves(path: str, value: Any) -> list[tuple[str, Any]]:
    """The fields under ``path`` that hold a value (not null), nested blocks walked."""
    if isinstance(value, DictConfig):
        return [leaf for key in value for leaf in _set_leaves(f"{path}.{key}", value[key])]
    return [] if value is None else [(path, value)]


def comparable(config: Any) -> Any:
    """A resolved config without the fields that do not change a cell's result."""
    if not isinstance(config, dict):
        return config
    return {k: v for k, v in config.items() if k not in ("resume", "logger", "trainer")}


def first_difference(stored: Any, requested: Any, path: str = "") -> str | None:
    """The first field where two configs differ, as 'field: stored -> requested', else None."""
    if isinstance(stored, dict) and isinstance(requested, dict):
        for key in sorted(set(stored) | set(requested), key=str):
            found = first_difference(stored.get(key), requested.get(key), f"{path}{key}.")
            if found is not None:
                return found
        return None
    if stored != requested:
        return f"{path.rstrip('.')}: {stored!r} -> {requested!r}"
    return None
