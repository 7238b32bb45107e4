"""What the command-line entry points share: one config folder, one Hydra main, a configuration
error is one sentence and exit 2 (a misspelt name on the command line included), and an
interrupted command says so and exits 128 + signal."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException, OverrideParseException, SearchPathException
from omegaconf import DictConfig

from gradinv.config_names import CONFIG_DIR, composition_message
from gradinv.errors import ConfigError
from gradinv.interrupt import Interrupted, interruptible
from gradinv.tracking.sweep import Ledger, in_sweep, sweep_cell

log = logging.getLogger("gradinv")
T = TypeVar("T")

#: Hydra's errors about the command line itself: a group, option or field it does not name,
#: an override it cannot parse, a --config-dir that is not there.
COMMAND_LINE_ERRORS = (ConfigCompositionException, OverrideParseException, SearchPathException)


def entry_point(
    task: Callable[[DictConfig], T], config_name: str, objective: Callable[[T], float] | None = None
) -> Callable[[], Any]:
    """The command of an entry point: ``task`` on ``conf/<config_name>.yaml`` through
    ``run_or_exit``, after a log line naming the run's folder (whatever the logger); a sweeper
    optimizing the grid reads ``objective(outcome)``. A command line Hydra cannot compose ends
    with one sentence (``composed_or_exit``); SIGTERM or SIGINT end it with
    ``report_interrupt``'s lines and exit status 128 + signal."""

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)
    def main(cfg: DictConfig) -> float | None:
        log.info("run folder: %s", HydraConfig.get().runtime.output_dir)
        outcome = run_or_exit(task, cfg)
        return None if outcome is None or objective is None else objective(outcome)

    def command() -> Any:
        try:
            with interruptible():
                return composed_or_exit(main)
        except Interrupted as stop:
            report_interrupt(stop)
            raise SystemExit(stop.exit_status) from None

    return command


def composed_or_exit(main: Callable[[], T]) -> T:
    """Run Hydra's ``main``; when Hydra cannot compose the command line's config (``model=mpl``,
    ``attak=dia``, ``model.dropuot=0.1``), print one sentence naming the allowed names and the
    closest one, and exit with status 2.

    Hydra prints its own several-line report and exits 1 unless HYDRA_FULL_ERROR=1, which lets
    its errors through to here; an error of the task itself then shows its full traceback.
    """
    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        return main()
    except COMMAND_LINE_ERRORS as error:
        ledger = Ledger.current()
        if ledger is not None:  # a sweep whose cells could not be composed leaves nothing behind
            ledger.close()
        print(f"gradinv: error: {composition_message(error)}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        if previous is None:
            del os.environ["HYDRA_FULL_ERROR"]
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous


def run_or_exit(task: Callable[[DictConfig], T], cfg: DictConfig) -> T | None:
    """Run ``task``; on a ConfigError print its message as one line and exit with status 2.

    In a sweep (``-m``) a failing cell does not end the sweep: its error is printed as one
    line (its results.json already says 'failed'), the next cell runs, and the sweep's summary
    (``gradinv.tracking.sweep``) exits non-zero at the end.
    """
    try:
        with interruptible(), sweep_cell():
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
    except Interrupted as stop:
        stop.run_dir = HydraConfig.get().runtime.output_dir
        raise


def report_interrupt(stop: Interrupted) -> None:
    """Say that the command was interrupted, a sweep's summary so far, and how to pick it up."""
    ledger = Ledger.current()
    if ledger is not None:
        lines, _ = ledger.summary(interrupted=True)
        folder = ledger.sweep["folder"]
        ledger.close()
        lines = [
            f"gradinv: sweep interrupted by {stop.name}; the cell that was running is recorded failed.",
            *lines,
            f"gradinv: rerun the same command with resume=true hydra.sweep.dir={folder} to pick it "
            "up: finished cells are skipped.",
        ]
    elif stop.run_dir is not None:
        lines = [
            f"gradinv: run interrupted by {stop.name}; its results.json says failed: rerun the same "
            f"command with resume=true hydra.run.dir={stop.run_dir} to run it again."
        ]
    else:
        lines = [f"gradinv: interrupted by {stop.name} before the run started."]
    print("\n".join(lines), file=sys.stderr, flush=True)
