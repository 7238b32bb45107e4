"""results.json: readable by colleagues, and a failed run says what stopped it."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def test_results_json_is_readable_by_colleagues(tmp_path: Path) -> None:
    """mkstemp creates 0600 files; results.json gets the mode any new file gets (0644 here)."""
    from gradinv.schema import OK, RunRecord
    from gradinv.tracking.results import ResultsFile

    previous = os.umask(0o022)
    try:
        ResultsFile(tmp_path, RunRecord()).write(status=OK)
    finally:
        os.umask(previous)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o644


def test_an_interrupted_run_says_so():
    from gradinv.interrupt import Interrupted
    from gradinv.tracking.results import describe_failure

    assert (
        describe_failure(Interrupted(signal.SIGTERM)) == "interrupted by SIGTERM before it finished"
    )
    assert (
        describe_failure(KeyboardInterrupt()) == "interrupted (Ctrl-C or SIGINT) before it finished"
    )
    assert "interrupted: the process was asked to exit (status 1)" in describe_failure(
        SystemExit(1)
    )
