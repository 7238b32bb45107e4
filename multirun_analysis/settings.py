"""Which fields set an experiment: a table row pools only runs that agree on every one of them.

A run's settings are its group choices (``client``, ``threat``, ...) and every leaf of its
resolved config (``attack.optim.lr``). A field that varies among runs of the same table row, other
than the victims and seeds the row averages over and the fields that only change how a run is
watched, splits the row and becomes a column of its own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from gradinv.errors import ConfigError
from gradinv.schema import RunRecord

#: Which victims and seeds a row averages over: never a reason to split it.
AVERAGED = ("seed", "dataset.victim_indices", "dataset.num_victims")
#: How a run is watched, resumed or stored, not what it computes.
NOT_SETTINGS = (
    "resume",
    "verbose",
    "logger",
    "hydra",
    "metrics.lpips_download",
    "dataset.download",
    "attack.log_psnr_every",
    "trainer.enable_progress_bar",
    "trainer.enable_checkpointing",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
)
ABSENT = object()


def settings(record: RunRecord) -> dict[str, Any]:
    """The run's group choices, then its config's leaves by dotted name; lists and empty
    mappings as JSON text, so that every value can be compared and grouped."""
    found = {key: _comparable(value) for key, value in (record.choices or {}).items()}
    for name, value in _leaves(record.config or {}):
        found.setdefault(name, value)
    return {name: value for name, value in found.items() if not _ignored(name)}


def lookup(record: RunRecord, field: str) -> Any:
    """The value of ``field`` in the run: a group's choice (``client``) or a config field
    (``client.local_steps``); ``ABSENT`` when the run has no such field."""
    choices = record.choices or {}
    if field in choices:
        return _comparable(choices[field])
    value: Any = record.config or {}
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return ABSENT
        value = value[part]
    return _comparable(value)


def check_by(records: Sequence[RunRecord], by: Sequence[str], rows: Sequence[str]) -> None:
    """Stop with one sentence when a ``--by`` field is dropout p (every table's columns) or a
    field that none of ``records`` has."""
    for field in by:
        if field in ("dropout", "model.dropout"):
            raise ConfigError(
                f"--by {field}: dropout p is already every table's columns and every plot's x axis."
            )
        if records and all(lookup(record, field) is ABSENT for record in records):
            varying = split_fields([settings(r) for r in records], [*rows, "dropout"])
            hint = ", ".join(varying) if varying else "none besides the rows and p"
            raise ConfigError(
                f"--by {field}: no run has this field; give a group (e.g. client) or a config "
                f"field (e.g. dataset.batch_size); fields that vary across these runs: {hint}."
            )


def split_fields(runs: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[str]:
    """The fields, in order of appearance, that take more than one value among runs agreeing
    on ``keys`` and on the fields chosen before them; a group's choice comes before its fields,
    so the fields that the choice sets are not named again."""
    chosen = list(keys)
    names = list(dict.fromkeys(name for run in runs for name in run))
    for name in names:
        if name in chosen:
            continue
        values: dict[tuple, set] = defaultdict(set)
        for run in runs:
            values[tuple(run.get(key) for key in chosen)].add(run.get(name))
        if any(len(seen) > 1 for seen in values.values()):
            chosen.append(name)
    return chosen[len(keys) :]


def _leaves(config: dict[str, Any], prefix: str = ""):
    """(dotted name, comparable value) of every leaf of a nested config."""
    for key, value in config.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", _comparable(value)


def _comparable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def _ignored(name: str) -> bool:
    return any(
        name == field or name.startswith(f"{field}.") for field in (*AVERAGED, *NOT_SETTINGS)
    )
