"""``python -m multirun_analysis PATH... [--out DIR] [--by FIELD]... [--wandb-report ENTITY/PROJECT]``
(or ``--wandb ENTITY/PROJECT`` to read the runs from W&B)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gradinv.errors import ConfigError
from multirun_analysis.html_report import REPORT_FILE
from multirun_analysis.loading import Collection, from_records, read_folders
from multirun_analysis.provenance import launches
from multirun_analysis.report import write_report


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m multirun_analysis",
        description="Tables, plots, galleries and report.html from gradinv runs (results.json) or from "
        "W&B; optionally a W&B report of the sweep.",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="run or sweep folders")
    parser.add_argument("--out", type=Path, help="output folder (default: PATH/analysis)")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the runs from W&B instead")
    parser.add_argument("--group", help="with --wandb: only this W&B group (a sweep folder)")
    parser.add_argument(
        "--by",
        action="append",
        default=[],
        metavar="FIELD",
        help="a group (e.g. client) or config field (e.g. dataset.batch_size) to plot each metric "
        "against, as a table column first; repeatable (every field that varies splits rows anyway)",
    )
    parser.add_argument(
        "--wandb-report",
        metavar="ENTITY/PROJECT",
        help="also build the sweep's W&B report there and publish it; without W&B's server or "
        "an API key, save its specification beside the analysis, with the command that publishes it",
    )
    args = parser.parse_args(argv)
    if not args.paths and not args.wandb:
        parser.error("give run or sweep folders, or --wandb ENTITY/PROJECT")
    if args.wandb and args.wandb_report:
        parser.error(
            "--wandb-report reads the run folders' Hydra and W&B records: "
            "give run or sweep folders, not --wandb"
        )
    if args.out is None:
        if not args.paths:
            parser.error("--out is required with --wandb")
        args.out = args.paths[0] / "analysis"
    return args


def collect(args: argparse.Namespace) -> Collection:
    if args.wandb:
        from multirun_analysis.wandb_source import read_wandb

        return from_records(read_wandb(args.wandb, args.group), args.by)
    try:
        return read_folders(args.paths, args.by)
    except FileNotFoundError as error:
        raise SystemExit(f"multirun_analysis: error: {error}") from None


def main(argv: list[str] | None = None) -> int:
    try:
        return analyse(parse(argv))
    except ConfigError as error:
        print(f"multirun_analysis: error: {error}", file=sys.stderr)
        return 2


def analyse(args: argparse.Namespace) -> int:
    """Collect the runs, check ``--wandb-report``'s destination, write the analysis and then the
    W&B report; the exit status."""
    collection = collect(args)
    total = len(collection.runs) + len(collection.skipped)
    print(f"{len(collection.runs)} of {total} runs ok, {len(collection.skipped)} left out")
    for run, reason in collection.skipped:
        print(f"  left out {run}: {reason}")
    if collection.runs.empty:
        print("multirun_analysis: error: no finished run to analyse", file=sys.stderr)
        return 1
    if collection.fields:
        print("rows split by: " + ", ".join(collection.fields))
    where = wandb_target(collection, args.wandb_report) if args.wandb_report else None
    title = " ".join(map(str, args.paths)) or f"W&B {args.wandb}"
    for path in write_report(collection, args.out, args.by, title):
        print(f"wrote {path}")
    print(f"report.html: {(args.out / REPORT_FILE).resolve()}")
    if where is not None:
        from multirun_analysis.wandb_report import build_report, publish

        made = launches(collection.runs["run"])
        print(
            publish(
                build_report(collection, where, title, made),
                args.out,
                list(collection.runs["run"]),
                made,
            )
        )
    return 0


def wandb_target(collection: Collection, destination: str):
    """``--wandb-report``'s destination, checked against the runs (``wandb_report.target``);
    a ConfigError when wandb-workspaces, which builds the report, is not installed."""
    try:
        from multirun_analysis.wandb_report import target
    except ImportError as error:
        raise ConfigError(
            f"--wandb-report needs the wandb-workspaces package ({error}): pip install 'gradinv[reports]'."
        ) from None
    return target(collection, destination)


if __name__ == "__main__":
    sys.exit(main())
