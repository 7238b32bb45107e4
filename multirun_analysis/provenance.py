"""Where runs came from: the command that launched them, and the W&B project and group they logged to.

Hydra keeps in each run folder ``.hydra/hydra.yaml`` (its settings and this job's overrides) and
``.hydra/config.yaml`` (the job's config); a sweep's folder holds ``multirun.yaml``, whose
overrides are the command's own, comma-separated sweeps included. The jobs of a sweep share the
W&B group that ``gradinv.tracking.wandb_logger`` gives them: ``logger.group``, or else the sweep
folder as ``hydra.sweep.dir`` named it when the command ran.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ENTRY_POINT = "python gradinv/main.py"
SWEEP_RECORD = "multirun.yaml"
#: W&B's own folders of a run, online and offline: ``wandb/[offline-]run-<time>-<id>``.
WANDB_RUNS = ("run-*", "offline-run-*")


@dataclass(frozen=True)
class Launch:
    """One command: a sweep (``-m``) or a single run, the folder it wrote and where it ran."""

    folder: Path
    command: str
    cwd: str


@dataclass(frozen=True)
class WandbRun:
    """Where a run folder's W&B run lives: project, entity (None: the API key's) and group."""

    project: str | None
    entity: str | None
    group: str | None


def launches(runs: Iterable[str | Path]) -> list[Launch]:
    """The commands that made these run folders, one per sweep, in order; runs without Hydra's
    record (e.g. read from W&B) have none."""
    found: dict[Path, Launch] = {}
    for run in map(Path, runs):
        hydra = _hydra(run)
        if hydra is None:
            continue
        sweep = _sweep_folder(run)
        record = (_read(sweep / SWEEP_RECORD) or {}).get("hydra") if sweep else None
        sweep = sweep if record else None
        if (sweep or run) not in found:
            source = record or hydra
            overrides = source["overrides"]
            words = [
                *(["-m"] if sweep else []),
                *(o for o in overrides["hydra"] if not o.startswith("hydra.mode=")),
                *overrides["task"],
            ]
            command = " ".join([ENTRY_POINT, *map(shlex.quote, words)])
            found[sweep or run] = Launch(sweep or run, command, source["runtime"]["cwd"])
    return list(found.values())


def wandb_run(run: str | Path) -> WandbRun | None:
    """The W&B run of a run folder; None when it logged to no W&B run (``logger=none``, ``csv``)."""
    run = Path(run)
    if not any(any((run / "wandb").glob(pattern)) for pattern in WANDB_RUNS):
        return None
    logger = (_read(run / ".hydra" / "config.yaml") or {}).get("logger") or {}
    hydra = _hydra(run)
    group = logger.get("group") or (_group(run, hydra) if hydra else None)
    return WandbRun(logger.get("project"), logger.get("entity"), group)


def _group(run: Path, hydra: dict[str, Any]) -> str | None:
    """``str(hydra.sweep.dir)`` as the job saw it (``wandb_logger.sweep_group``): the value the
    command gave, or Hydra's default resolved, relative to the folder the command ran in."""
    sweep = _sweep_folder(run)
    if hydra.get("mode") != "MULTIRUN" or sweep is None:
        return None
    given = str(hydra["sweep"]["dir"])
    if "${" not in given:
        return given
    depth = len(run.relative_to(sweep).parts)
    resolved = Path(hydra["runtime"]["output_dir"]).parents[depth - 1]
    return (
        str(resolved)
        if os.path.isabs(given)
        else os.path.relpath(resolved, hydra["runtime"]["cwd"])
    )


def _sweep_folder(run: Path) -> Path | None:
    """The sweep folder holding ``run`` (the nearest with ``multirun.yaml``), None for a single run."""
    return next((folder for folder in run.parents if (folder / SWEEP_RECORD).is_file()), None)


def _hydra(run: Path) -> dict[str, Any] | None:
    return (_read(run / ".hydra" / "hydra.yaml") or {}).get("hydra")


def _read(path: Path) -> dict[str, Any] | None:
    """A YAML file Hydra wrote, interpolations left as text; None when absent or unreadable."""
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
