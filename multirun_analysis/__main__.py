"""``python -m multirun_analysis PATH... [--out DIR] [--wandb ENTITY/PROJECT] [--by FIELD]...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gradinv.errors import ConfigError
from multirun_analysis.html_report import REPORT_FILE
from multirun_analysis.loading import Collection, from_records, read_folders
from multirun_analysis.report import write_report


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m multirun_analysis",
        description="Tables, plots, galleries and report.html from gradinv runs (results.json) or from W&B.",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="run or sweep folders")
    parser.add_argument("--out", type=Path, help="output folder (default: PATH/analysis)")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the runs from W&B instead")
    parser.add_argument("--group", help="with --wandb: only this W&B group (a sweep folder)")
    parser.add_argument(
        "--by", action="append", default=[], metavar="FIELD",
        help="a group (e.g. client) or config field (e.g. dataset.batch_size) to plot each metric "
        "against, as a table column first; repeatable (every field that varies splits rows anyway)",
    )
    args = parser.parse_args(argv)
    if not args.paths and not args.wandb:
        parser.error("give run or sweep folders, or --wandb ENTITY/PROJECT")
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
    args = parse(argv)
    try:
        collection = collect(args)
    except ConfigError as error:
        print(f"multirun_analysis: error: {error}", file=sys.stderr)
        return 2
    total = len(collection.runs) + len(collection.skipped)
    print(f"{len(collection.runs)} of {total} runs ok, {len(collection.skipped)} left out")
    for run, reason in collection.skipped:
        print(f"  left out {run}: {reason}")
    if collection.runs.empty:
        print("multirun_analysis: error: no finished run to analyse", file=sys.stderr)
        return 1
    if collection.fields:
        print("rows split by: " + ", ".join(collection.fields))
    title = " ".join(map(str, args.paths)) or f"W&B {args.wandb}"
    for path in write_report(collection, args.out, args.by, title):
        print(f"wrote {path}")
    print(f"report.html: {(args.out / REPORT_FILE).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
