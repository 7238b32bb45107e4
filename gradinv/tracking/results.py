"""The run's own record, ``results.json``: written as 'running' first, 'ok' only when finished."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gradinv.errors import ConfigError
from gradinv.interrupt import Interrupted
from gradinv.schema import FAILED, OK, RESULTS_FILE, Record


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: such values become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class ResultsFile:
    """Atomic writes of one run's record; each write replaces the whole file."""

    def __init__(self, run_dir: str | Path, record: Record) -> None:
        self.path = Path(run_dir) / RESULTS_FILE
        self.record = record

    def write(self, **changes: Any) -> None:
        """Set ``changes`` (fields of the record) and write the whole record."""
        self.record = dataclasses.replace(self.record, **changes)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".results-", suffix=".json")
        with os.fdopen(handle, "w") as out:
            json.dump(_clean(self.record.to_dict()), out, indent=2)
        os.chmod(tmp, _readable_mode())  # mkstemp makes 0600; colleagues must read results
        os.replace(tmp, self.path)


def _readable_mode() -> int:
    """The mode an ordinary new file gets here: 0666 less the process's umask (0644 usually)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def read_results(path: str | Path) -> dict[str, Any]:
    """Load one results.json."""
    return json.loads(Path(path).read_text())


def finished(folder: str | Path) -> dict[str, Any] | None:
    """The stored results of a run that ended ok in ``folder``, else None."""
    path = Path(folder) / RESULTS_FILE
    if not path.is_file():
        return None
    try:
        stored = read_results(path)
    except ValueError:
        return None
    return stored if stored.get("status") == OK else None


@contextmanager
def recording(path: str | Path, start: Record, resumable: bool = False) -> Iterator[ResultsFile]:
    """A run's results file: ``start`` (status 'running') now, 'failed' with the error if the
    enclosed work raises (the run itself writes 'ok' when it finishes).

    A folder that already holds a finished run is kept as it is: a ConfigError names the way
    out (a new folder, or ``resume=true`` where the entry point has it: ``resumable``).
    """
    if finished(path) is not None:
        resume = "add resume=true to skip finished runs, or " if resumable else ""
        raise ConfigError(
            f"{path} already holds a finished run (its results.json says ok), which is kept: "
            f"{resume}point hydra.run.dir (in a sweep: hydra.sweep.dir) at a new folder."
        )
    results = ResultsFile(path, start)
    results.write()
    try:
        yield results
    except BaseException as error:
        results.write(status=FAILED, error=describe_failure(error))
        raise


def describe_failure(error: BaseException) -> str:
    """What ended a run, in words a person reads in results.json."""
    if isinstance(error, Interrupted):
        return f"interrupted by {error.name} before it finished"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C or SIGINT) before it finished"
    if isinstance(error, SystemExit):
        return f"interrupted: the process was asked to exit (status {error.code}) before the run finished"
    return f"{type(error).__name__}: {error}"
