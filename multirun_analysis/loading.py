"""Collect runs from results.json records into two tidy frames: one row per run, one per image.

Only runs whose status is "ok" enter the frames; every other run (failed, still running,
unreadable) is listed in ``skipped`` with its reason. Missing metrics stay NaN, never 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gradinv.schema import CELL, OK, RESULTS_FILE, RunRecord
from multirun_analysis.settings import ABSENT, check_by, lookup, settings, split_fields
from multirun_analysis.tables import ROWS


@dataclass
class Collection:
    """The ok runs, their images and convergence curves as tidy frames, and the runs left out."""

    runs: pd.DataFrame
    images: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: The config fields that split table rows besides ``tables.ROWS``: ``--by``, then the rest
    #: that vary (e.g. ``client``, ``attack.optim.lr``); each is a column of the three frames.
    fields: list[str] = field(default_factory=list)


def find_results(paths: Iterable[str | Path]) -> list[Path]:
    """Every results.json at or below each path (a run folder, a sweep folder, or the file)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(path.rglob(RESULTS_FILE)))
        else:
            raise FileNotFoundError(f"{path} does not exist: pass run or sweep folders.")
    return found


def read_folders(paths: Iterable[str | Path], by: Sequence[str] = ()) -> Collection:
    """The runs whose results.json lie under ``paths``; the run's name is its folder; ``by``
    names groups (``client``) or config fields (``dataset.batch_size``) that become columns."""
    records: list[dict[str, Any]] = []
    unreadable: list[tuple[str, str]] = []
    for file in find_results(paths):
        try:
            record = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            unreadable.append((str(file.parent), f"unreadable results.json ({error})"))
            continue
        record["run"] = str(file.parent)
        records.append(record)
    collection = from_records(records, by)
    collection.skipped[:0] = unreadable
    return collection


def from_records(records: Iterable[dict[str, Any]], by: Sequence[str] = ()) -> Collection:
    """Tidy frames from results.json-shaped dicts, each with a ``run`` name; ``by`` as in
    ``read_folders``. Every other field that varies among the ok runs of one table row (see
    ``multirun_analysis.settings``) becomes a column too, named in ``fields`` after ``by``."""
    ok, skipped = [], []
    for data in records:
        record = RunRecord.from_dict(data)
        if record.status != OK:
            reason = f"status {record.status!r}" + (f": {record.error}" if record.error else "")
            skipped.append((data["run"], reason))
            continue
        ok.append((data["run"], record))
    records_ok = [record for _, record in ok]
    check_by(records_ok, by, ROWS)
    by = list(dict.fromkeys(field for field in by if field not in ROWS))
    fields = by + split_fields([settings(record) for record in records_ok], [*ROWS, "dropout", *by])
    runs, images, curves = [], [], []
    for run, record in ok:
        values = {field: lookup(record, field) for field in fields}
        cell = {
            "run": run,
            **_cell(record),
            **{k: None if v is ABSENT else v for k, v in values.items()},
        }
        runs.append({**cell, **_run_values(record)})
        images.extend({**cell, **_values(row.to_dict())} for row in record.per_image or [])
        curves.extend({**cell, **_values(point.to_dict())} for point in record.curve or [])
    return Collection(_frame(runs), _frame(images), skipped, _frame(curves), fields)


def _cell(record: RunRecord) -> dict[str, Any]:
    choices = record.choices or {}
    cell = {key: choices.get(key) for key in CELL}
    attack = (record.config or {}).get("attack") or {}
    # the budget: attack.optim.iterations (a flat attack.iterations in records before 0.2)
    cell["iterations"] = (attack.get("optim") or {}).get("iterations", attack.get("iterations"))
    return cell


def _run_values(record: RunRecord) -> dict[str, Any]:
    """The run's metrics by their own names, its device and number of victims, then timing,
    knowledge, privacy and report scalars, prefixed."""
    values = _values(record.metrics or {})
    values["device"] = record.device
    values["victims"] = len({row.victim for row in record.per_image or []})
    sections = {
        "timing": record.timing.to_dict() if record.timing else {},
        "knowledge": record.knowledge or {},
        "privacy": record.privacy or {},
        "attack_report": record.attack_report or {},
    }
    for prefix, section in sections.items():
        for key, value in _values(section).items():
            values[f"{prefix}_{key}"] = value
    return values


def _values(mapping: dict[str, Any]) -> dict[str, Any]:
    """Scalar entries only (nested reports stay in results.json); null becomes NaN."""
    return {
        key: math.nan if value is None else value
        for key, value in mapping.items()
        if value is None or isinstance(value, (int, float, str, bool))
    }


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    return frame if not frame.empty else pd.DataFrame(columns=["run", *CELL, "iterations"])
