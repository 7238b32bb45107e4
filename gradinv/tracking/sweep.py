"""A sweep's own cells: which ones this command launched, where it stands, and its summary.

Hydra runs the cells through a launcher: in this process, in joblib workers or as submitit jobs
on other machines. So each sweep keeps a ledger, ``<sweep dir>/.sweeps/<invocation>/``: the
``SweepSummary`` callback opens it when the sweep starts and names it in an environment
variable that the cells' processes inherit; every cell writes its outcome there when it ends
(``sweep_cell``), including a refusal that leaves another run's results untouched. The summary
and the exit status count exactly those entries; runs that earlier sweeps left in the folder are
listed apart and never change the exit status. The ledger is removed when the sweep ends.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gradinv.schema import FAILED, OK, RESULTS_FILE
from gradinv.tracking.results import describe_failure, read_results

#: The environment variable that names the running sweep's ledger to its cells.
LEDGER_VARIABLE = "GRADINV_SWEEP_LEDGER"
LEDGERS = ".sweeps"
SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class Ledger:
    """One invocation's record of its cells: ``sweep.json`` (folder, cell count, start time)
    and one ``<job number>.json`` per cell that ended (its run folder, status, error)."""

    path: Path

    @classmethod
    def open(cls, sweep_dir: Path, cells: int | None) -> Ledger:
        """A new ledger in ``sweep_dir`` for this command's cells, named to them (and to the
        processes they run in) through ``LEDGER_VARIABLE``."""
        name = f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{uuid.uuid4().hex[:8]}"
        ledger = cls(sweep_dir.resolve() / LEDGERS / name)
        ledger.path.mkdir(parents=True)
        sweep = {"folder": str(sweep_dir), "cells": cells, "started": time.time()}
        _write_json(ledger.path / SWEEP_FILE, sweep)
        os.environ[LEDGER_VARIABLE] = str(ledger.path)
        return ledger

    @classmethod
    def current(cls) -> Ledger | None:
        """The ledger of the sweep this process works for, if any."""
        path = os.environ.get(LEDGER_VARIABLE)
        return cls(Path(path)) if path and (Path(path) / SWEEP_FILE).is_file() else None

    @property
    def sweep(self) -> dict[str, Any]:
        return json.loads((self.path / SWEEP_FILE).read_text())

    def record(self, number: int, run_dir: str, status: str, error: str | None = None) -> None:
        """Cell ``number`` ended with ``status`` in ``run_dir``."""
        entry = {"number": number, "run_dir": run_dir, "status": status, "error": error}
        _write_json(self.path / f"{number}.json", entry)

    def entries(self) -> list[dict[str, Any]]:
        """The cells that ended so far, by job number."""
        found = [
            json.loads(p.read_text()) for p in self.path.glob("*.json") if p.name != SWEEP_FILE
        ]
        return sorted(found, key=lambda entry: entry["number"])

    def close(self) -> None:
        """Remove the ledger (its sweep has ended); an emptied ``.sweeps`` goes too."""
        shutil.rmtree(self.path, ignore_errors=True)
        os.environ.pop(LEDGER_VARIABLE, None)
        try:
            self.path.parent.rmdir()
        except OSError:
            pass  # other invocations' ledgers are still there

    def summary(self, interrupted: bool = False) -> tuple[list[str], bool]:
        """The summary's lines and whether every cell launched so far ended ok."""
        sweep, entries = self.sweep, self.entries()
        folder = sweep["folder"]
        bad = [entry for entry in entries if entry["status"] != OK]
        ok = len(entries) - len(bad)
        unknown = (sweep["cells"] or len(entries)) - len(entries)
        head = (
            f"gradinv: sweep {folder}{' so far' if interrupted else ''}: {ok} ok, {len(bad)} not ok"
        )
        if unknown:
            head += (
                f", {unknown} not finished"
                if interrupted
                else (
                    f", {unknown} with no outcome (their jobs ended early: see the launcher's logs)"
                )
            )
        lines = [head]
        lines += [
            f"gradinv:   {e['status']}: {_within(e['run_dir'], folder)}: {e['error']}" for e in bad
        ]
        earlier = _earlier_runs(Path(folder), {entry["run_dir"] for entry in entries})
        if earlier:
            tally = ", ".join(f"{n} {status}" for status, n in sorted(earlier.items()))
            lines.append(f"gradinv:   not counted, left in {folder} by earlier sweeps: {tally}")
        return lines, not bad and not unknown


def _earlier_runs(folder: Path, ours: set[str]) -> Counter:
    """Statuses of the run folders under ``folder`` that no cell of this sweep wrote."""
    statuses: Counter = Counter()
    for path in folder.rglob(RESULTS_FILE):
        if str(path.parent.resolve()) in ours:
            continue
        try:
            statuses[read_results(path).get("status", "unreadable")] += 1
        except ValueError:
            statuses["unreadable"] += 1
    return statuses


def _within(run_dir: str, folder: str) -> str:
    """``run_dir`` relative to the sweep's folder, as the summary names cells."""
    path, base = Path(run_dir), Path(folder).resolve()
    return str(path.relative_to(base)) if path.is_relative_to(base) else run_dir


def _write_json(path: Path, content: dict[str, Any]) -> None:
    """Write ``content`` whole or not at all (cells of a parallel sweep end at the same time)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(content))
    os.replace(partial, path)


def grid_size(config: DictConfig) -> int | None:
    """How many cells Hydra's basic sweeper makes of this command, or None when another
    sweeper decides (or a ``glob`` needs the config folder to be counted)."""
    sweeper = config.hydra.sweeper
    if sweeper.get("_target_") != f"{BasicSweeper.__module__}.{BasicSweeper.__name__}":
        return None
    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    params += OmegaConf.to_container(config.hydra.overrides.task)
    try:
        overrides = OverridesParser.create().parse_overrides(params)
        return sum(len(batch) for batch in BasicSweeper.split_arguments(overrides, None))
    except HydraException:
        return None


def in_sweep() -> bool:
    """Whether this process runs a cell of a Hydra multirun."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextmanager
def sweep_cell() -> Iterator[None]:
    """Record in the sweep's ledger how the enclosed cell ends: ok, or failed with what
    stopped it (an error, a refusal, an interruption). Outside a sweep it does nothing."""
    ledger = Ledger.current() if in_sweep() else None
    if ledger is None:
        yield
        return
    job = HydraConfig.get()
    number, run_dir = int(job.job.num), str(Path(job.runtime.output_dir).resolve())
    try:
        yield
    except BaseException as error:
        ledger.record(number, run_dir, FAILED, describe_failure(error))
        raise
    ledger.record(number, run_dir, OK)


class SweepSummary(Callback):
    """Hydra callback: a line at each cell's start saying where the sweep stands, and at the
    end one summary line of this sweep's cells, with a non-zero exit if any is not ok."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        Ledger.open(Path(config.hydra.sweep.dir), grid_size(config))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        ledger = Ledger.current() if in_sweep() else None
        if ledger is not None:
            print(
                progress(ledger, int(config.hydra.job.num), config.hydra.job.override_dirname),
                file=sys.stderr,
                flush=True,
            )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        ledger = Ledger.current()
        if ledger is None:
            return
        lines, ok = ledger.summary()
        ledger.close()
        print("\n".join(lines), file=sys.stderr)
        if not ok:
            raise SystemExit(1)


def progress(ledger: Ledger, number: int, cell: str) -> str:
    """'cell k of N (overrides): elapsed, about T left', the estimate from the cells ended so far."""
    sweep, done = ledger.sweep, len(ledger.entries())
    elapsed = time.time() - sweep["started"]
    total = sweep["cells"]
    line = (
        f"gradinv: cell {number + 1}{f' of {total}' if total else ''} ({cell or 'no overrides'}): "
    )
    line += f"{_duration(elapsed)} elapsed"
    if total and done:
        line += f", about {_duration(elapsed / done * (total - done))} left"
    return line


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))
