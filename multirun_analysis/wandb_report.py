"""A sweep's W&B report, built with wandb-workspaces (``wandb_workspaces.reports.v2``).

For the W&B groups of the sweep's runs it holds, per dataset x model, bars of each final image
metric (``gradinv.schema.IMAGE_METRICS``) for each attack x p (x defense, where defenses differ;
mean ± std over the runs of a bar) and the attack's loss and PSNR against the step; a
parallel-coordinates panel of every run (attack, model, dataset, p, defense -> the image
metrics) beside a run comparer; the
reconstructions and the per-image table. Runs are filtered and grouped by the config keys that
gradinv logs (``gradinv.schema.WANDB_CONFIG``), panels read only the keys it logs.

Saving needs W&B's server and an API key. Without either, the report's specification (each
wandb-workspaces object as its class and arguments, JSON) is written beside the analysis, with
the commands that publish it once the offline runs are synced:
``python -m multirun_analysis.wandb_report SPEC.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import wandb_workspaces.reports.v2 as wr

from gradinv.errors import ConfigError
from gradinv.schema import (
    WANDB_CONFIG,
    WANDB_CURVES,
    WANDB_METRICS_PREFIX,
    WANDB_PICTURE,
    WANDB_PRIVACY,
    WANDB_STEP,
    WANDB_TABLE,
    metric_label,
)
from gradinv.tracking.wandb_server import has_api_key, server_reachable
from multirun_analysis.loading import Collection
from multirun_analysis.overview import budget, grid, headline
from multirun_analysis.provenance import Launch, wandb_run
from multirun_analysis.tables import TABLE_METRICS, key_text, to_markdown

SPEC_FILE = "wandb_report.json"
PUBLISH = "python -m multirun_analysis.wandb_report"
PANEL_KEYS = ["dataset", "model"]  # one grid of panels per setting of these
BAR_KEYS = ["attack", "dropout", "defense"]  # one bar per setting of those that vary
COLUMNS = ["attack", "model", "dataset", "dropout", "defense"]  # parallel coordinates' inputs
TITLE_LENGTH = 128  # W&B's limit
#: Config fields that W&B runs carry under another key: DP-SGD's, in the ``privacy`` block.
WANDB_NAMES = {
    f"defense.{field}": f"{WANDB_PRIVACY}.{key}"
    for field, key in (
        ("epsilon", "target_epsilon"),
        ("noise_multiplier", "noise_multiplier"),
        ("delta", "delta"),
        ("clip", "clip"),
    )
}


@dataclass(frozen=True)
class Target:
    """Where the report goes (``--wandb-report ENTITY/PROJECT``) and the W&B groups it shows."""

    entity: str
    project: str
    groups: tuple[str, ...]


def target(collection: Collection, destination: str) -> Target:
    """Check ``ENTITY/PROJECT`` against the runs before anything is written: the runs must have
    logged to W&B, in a sweep (a group), in that project."""
    entity, _, project = destination.partition("/")
    if not entity or not project or "/" in project:
        raise ConfigError(
            f"--wandb-report needs ENTITY/PROJECT (e.g. me/gradinv), got '{destination}'."
        )
    logged = [run for run in map(wandb_run, collection.runs["run"]) if run is not None]
    if not logged:
        raise ConfigError(
            f"--wandb-report: none of these {len(collection.runs)} runs logged to W&B (logger=none "
            "or csv); run the sweep with logger=wandb, the default, to get a W&B report of it."
        )
    projects = sorted({run.project for run in logged if run.project})
    if projects and project not in projects:
        raise ConfigError(
            f"--wandb-report {destination}: these runs logged to W&B project {', '.join(projects)}; "
            f"give ENTITY/{projects[0]}."
        )
    groups = tuple(dict.fromkeys(run.group for run in logged if run.group))
    if not groups:
        raise ConfigError(
            "--wandb-report: these runs are single runs, not a sweep, and share no W&B group; "
            "run them with -m or set logger.group=NAME."
        )
    return Target(entity, project, groups)


def build_report(
    collection: Collection, where: Target, title: str, launches: Sequence[Launch]
) -> wr.Report:
    """The report of ``collection``'s runs in ``where``'s groups (nothing reaches the network)."""
    runs = collection.runs
    varying = [key for key in BAR_KEYS if key == "attack" or runs[key].nunique(dropna=False) > 1]
    logged = [
        WANDB_NAMES.get(f, f) for f in collection.fields if f in WANDB_CONFIG or f in WANDB_NAMES
    ]
    bars = [*varying, *logged]
    metrics = [
        m
        for m in TABLE_METRICS
        if m in runs and pd.to_numeric(runs[m], errors="coerce").notna().any()
    ]
    blocks: list[Any] = [wr.MarkdownBlock(_summary(collection, bars, launches))]
    blocks.append(
        wr.H2(
            f"Quality and convergence per {' x '.join(PANEL_KEYS)}: one bar or line per "
            f"{' x '.join(_name(k) for k in bars)}"
        )
    )
    for values, _ in runs.groupby(PANEL_KEYS, sort=True):
        setting = dict(zip(PANEL_KEYS, values))
        name = " x ".join(key_text(v) for v in values)
        panels = [
            wr.BarPlot(
                title=f"{metric_label(m)}: {name}",
                metrics=[WANDB_METRICS_PREFIX + m],
                orientation="v",
                groupby_aggfunc="mean",
                groupby_rangefunc="stddev",
                title_y=metric_label(m),
            )
            for m in metrics
        ]
        panels += [
            wr.LinePlot(
                title=f"{metric_label(curve.split('/')[-1])}: {name}",
                x=WANDB_STEP,
                y=[curve],
                groupby_aggfunc="mean",
                groupby_rangefunc="stddev",
                log_y=curve.endswith("loss") or None,
            )
            for curve in WANDB_CURVES
        ]
        blocks += [
            wr.H3(name),
            wr.PanelGrid(runsets=[_runset(where, name, setting, bars)], panels=panels),
        ]
    columns = [wr.ParallelCoordinatesPlotColumn(wr.Config(key)) for key in COLUMNS]
    columns += [
        wr.ParallelCoordinatesPlotColumn(wr.SummaryMetric(WANDB_METRICS_PREFIX + m))
        for m in metrics
    ]
    blocks += [
        wr.H2("Every run"),
        wr.PanelGrid(
            runsets=[_runset(where, "every run")],
            panels=[
                wr.ParallelCoordinatesPlot(
                    title="attack, model, dataset, p, defense -> final quality",
                    columns=columns,
                    layout=wr.Layout(w=24, h=8),
                ),
                wr.RunComparer(diff_only="split", layout=wr.Layout(w=24, h=10)),
            ],
        ),
        wr.H2("Reconstructions: originals above reconstructions, and each image's metrics"),
        wr.PanelGrid(
            runsets=[_runset(where, "every run")],
            panels=[
                wr.MediaBrowser(
                    title="reconstructions",
                    media_keys=[WANDB_PICTURE],
                    num_columns=4,
                    gallery_axis="run",
                    layout=wr.Layout(w=24, h=10),
                ),
                wr.WeavePanelSummaryTable(table_name=WANDB_TABLE, layout=wr.Layout(w=24, h=12)),
            ],
        ),
    ]
    return wr.Report(
        entity=where.entity,
        project=where.project,
        title=f"gradinv: {title}"[:TITLE_LENGTH],
        description=f"{len(runs)} runs of W&B group {', '.join(where.groups)}",
        blocks=blocks,
    )


def _runset(
    where: Target, name: str, setting: dict[str, Any] | None = None, bars: Sequence[str] = ()
) -> wr.Runset:
    """The finished runs of the sweep's groups with ``setting``, grouped by ``bars``."""
    filters = [f"Metric('Group') in {list(where.groups)!r}", "Metric('State') == 'finished'"]
    filters += [f"Config({key!r}) == {_plain(value)!r}" for key, value in (setting or {}).items()]
    return wr.Runset(
        entity=where.entity,
        project=where.project,
        name=name,
        filters=" and ".join(filters),
        groupby=[f"config.{key}" for key in bars],
    )


def _summary(collection: Collection, bars: Sequence[str], launches: Sequence[Launch]) -> str:
    """The report's opening text: grid, budget, the headline PSNR, what a bar averages and the
    commands that ran the sweep."""
    runs = collection.runs
    items = "\n".join(f"- **{k}**: {v}" for k, v in [*grid(runs, collection.fields), *budget(runs)])
    glance = headline(collection.images, collection.fields)
    cells = glance.table.map(lambda v: f"{v:.2f}" if v == v else "–")
    cells.index = pd.MultiIndex.from_arrays(
        [glance.table.index]
    )  # to_markdown reads each row's keys as a tuple
    table = to_markdown(cells, "PSNR (dB)") + glance.scope()
    unlogged = [f for f in collection.fields if f not in WANDB_CONFIG and f not in WANDB_NAMES]
    note = (
        (
            f" W&B runs carry only the config keys {', '.join(WANDB_CONFIG)} (and DP-SGD's privacy): runs "
            f"that differ in {', '.join(unlogged)} share a bar here; the analysis's report.html splits them."
        )
        if unlogged
        else ""
    )
    commands = "\n".join(launch.command for launch in launches)
    return (
        f"{items}\n\n{table}\n\n{glance.change()}\n\nEach bar and line: mean ± std over the runs of one "
        f"{' x '.join(_name(k) for k in bars)} (a run's final metrics are means over its victim "
        f"images).{note}\n\nThe sweep, reproduced:\n\n```bash\n{commands}\n```\n"
    )


def _name(key: str) -> str:
    return "p" if key == "dropout" else key


def _plain(value: Any) -> Any:
    """A value as W&B holds it in the config: numbers and strings as they are (no numpy types)."""
    return value.item() if hasattr(value, "item") else value


def to_spec(value: Any) -> Any:
    """A wandb-workspaces object as JSON: each object its class under ``type`` and the arguments
    it was given (those set), so that ``from_spec`` builds it again."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        arguments = {
            f.name: to_spec(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init
        }
        return {
            "type": type(value).__name__,
            **{k: v for k, v in arguments.items() if v not in (None, "", [], {}, [None, None])},
        }
    if isinstance(value, (list, tuple)):
        return [to_spec(item) for item in value]
    if isinstance(value, dict):
        return {key: to_spec(item) for key, item in value.items()}
    return value


def from_spec(spec: Any) -> Any:
    """The wandb-workspaces objects that ``to_spec`` wrote."""
    if isinstance(spec, dict) and "type" in spec:
        return getattr(wr, spec["type"])(
            **{k: from_spec(v) for k, v in spec.items() if k != "type"}
        )
    if isinstance(spec, list):
        return [from_spec(item) for item in spec]
    if isinstance(spec, dict):
        return {key: from_spec(item) for key, item in spec.items()}
    return spec


def unreachable() -> str | None:
    """Why the report cannot be saved now (offline, no key, no server), or None when it can."""
    if os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        return f"W&B is set {os.environ['WANDB_MODE']} (WANDB_MODE)"
    if not has_api_key():
        return "there is no W&B API key (set WANDB_API_KEY or run `wandb login`)"
    if not server_reachable():
        return f"W&B's server ({os.environ.get('WANDB_BASE_URL', 'https://api.wandb.ai')}) does not answer"
    return None


def publish(report: wr.Report, out: Path, runs: Sequence[str], launches: Sequence[Launch]) -> str:
    """Save ``report`` and return its address; when W&B cannot be reached, write its
    specification to ``out`` and return the one sentence that says why and how to publish it."""
    reason = unreachable()
    if reason is None:
        try:
            return f"W&B report: {report.save().url}"
        except Exception as error:  # W&B's API raises many kinds (auth, network, server)
            reason = f"saving it failed ({_why(error)})"
    spec = out / SPEC_FILE
    sync = _sync_command(runs, launches)
    commands = [*([sync] if sync else []), f"{PUBLISH} {shlex.quote(str(spec))}"]
    spec.write_text(json.dumps({"publish": commands, "report": to_spec(report)}, indent=1) + "\n")
    return (
        f"W&B report not published: {reason}; its specification is in {spec}, published later by "
        f"`{' && '.join(commands)}`"
    )


def _why(error: Exception) -> str:
    """An error in one line: its kind and the first line of its message (W&B's may hold a page)."""
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}"


def _sync_command(runs: Sequence[str], launches: Sequence[Launch]) -> str:
    """`wandb sync` of the runs' offline W&B runs, one pattern per sweep folder; empty when
    every run logged online."""
    patterns: dict[str, None] = {}
    for run in map(Path, runs):
        if not any((run / "wandb").glob("offline-run-*")):
            continue
        sweep = next(
            (launch.folder for launch in launches if run.is_relative_to(launch.folder)), run
        )
        depth = len(run.relative_to(sweep).parts)
        patterns[shlex.quote(str(sweep)) + "/*" * depth + "/wandb/offline-run-*"] = None
    return f"wandb sync {' '.join(patterns)}" if patterns else ""


def main(argv: list[str] | None = None) -> int:
    """``python -m multirun_analysis.wandb_report SPEC.json``: publish a saved specification."""
    parser = argparse.ArgumentParser(
        prog=PUBLISH, description="Publish a W&B report saved by multirun_analysis."
    )
    parser.add_argument(
        "spec", type=Path, help=f"the {SPEC_FILE} that multirun_analysis --wandb-report wrote"
    )
    args = parser.parse_args(argv)
    reason = unreachable()
    if reason is None and not args.spec.is_file():
        parser.error(
            f"{args.spec} does not exist: give the {SPEC_FILE} that multirun_analysis --wandb-report wrote"
        )
    if reason is not None:
        print(f"{PUBLISH}: error: the report cannot be published now: {reason}.", file=sys.stderr)
        return 1
    report = from_spec(json.loads(args.spec.read_text())["report"])
    try:
        print(f"W&B report: {report.save().url}")
    except Exception as error:  # W&B's API raises many kinds (auth, network, server)
        print(f"{PUBLISH}: error: saving the report failed ({_why(error)}).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
