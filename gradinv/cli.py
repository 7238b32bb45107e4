"""What the command-line entry points share: one config folder, one Hydra main, and a
configuration error is one sentence and exit 2."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import hydra
from omegaconf import DictConfig

from gradinv.errors import ConfigError
from gradinv.tracking.sweep import in_sweep, sweep_cell

log = logging.getLogger("gradinv")
T = TypeVar("T")

#: The Hydra config folder every entry point, benchmark and test composes from.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"


def entry_point(
    task: Callable[[DictConfig], T], config_name: str, objective: Callable[[T], float] | None = None
) -> Callable[[], Any]:
    """The Hydra main of an entry point: ``task`` on ``conf/<config_name>.yaml`` through
    ``run_or_exit``; a sweeper optimizing the grid reads ``objective(outcome)``."""

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)
    def main(cfg: DictConfig) -> float | None:
        outcome = run_or_exit(task, cfg)
        return None if outcome is None or objective is None else objective(outcome)

    return main


def run_or_exit(task: Callable[[DictConfig], T], cfg: DictConfig) -> T | None:
    """Run ``task``; on a ConfigError print its message as one line and exit with status 2.

    In a sweep (``-m``) a failing cell does not end the sweep: its error is printed as one
    line (its results.json already says 'failed'), the next cell runs, and the sweep's summary
    (``gradinv.tracking.sweep``) exits non-zero at the end.
    """
    try:
        with sweep_cell():
            return task(cfg)
    except ConfigError as error:
        print(f"gradinv: error: {error}", file=sys.stderr)
        if in_sweep():
            return None
        raise SystemExit(2) from None
    except Exception as error:  # noqa: BLE001 - a sweep's other cells must still run
        if not in_sweep():
            raise
        log.exception("cell failed")
        print(f"gradinv: error: {type(error).__name__}: {error}", file=sys.stderr)
        return None
