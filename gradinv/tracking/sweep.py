"""The end of a sweep: one summary line of its cells, and a non-zero exit if any failed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gradinv.schema import OK, RESULTS_FILE
from gradinv.tracking.results import read_results


def sweep_outcome(folder: Path) -> dict[str, list[str]]:
    """The run folders under ``folder`` by the status their results.json ends with."""
    outcome: dict[str, list[str]] = {}
    for path in sorted(folder.rglob(RESULTS_FILE)):
        try:
            status = read_results(path).get("status", "unreadable")
        except ValueError:
            status = "unreadable"
        outcome.setdefault(status, []).append(str(path.parent))
    return outcome


class SweepSummary(Callback):
    """Hydra callback: after ``-m``, say how many cells ended ok and which did not."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.sweep.dir)
        outcome = sweep_outcome(folder)
        ok = len(outcome.pop(OK, []))
        bad = [(status, run) for status, runs in outcome.items() for run in runs]
        line = f"gradinv: sweep {folder}: {ok} ok, {len(bad)} not ok"
        print(line, file=sys.stderr)
        for status, run in bad:
            print(f"gradinv:   {status}: {run}", file=sys.stderr)
        if bad:
            raise SystemExit(1)
