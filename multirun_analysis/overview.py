"""A sweep at a glance: its grid, its budget, and the headline PSNR of each attack against p.

report.html and the W&B report open with these, so that both state the same numbers.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from multirun_analysis.tables import MISSING, key_text

GRID = ["dataset", "model", "defense", "attack", "dropout"]
LINES = ["attack", "defense"]  # what the headline compares: one row per combination that occurs


def grid(runs: pd.DataFrame, fields: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(name, values) of every key of the grid, the fields that split rows and the seeds."""
    names = {"dropout": "p", "seed": "seeds"}
    return [
        (names.get(key, key), ", ".join(_values(runs[key])))
        for key in [*GRID, *fields, "seed"] if key in runs
    ]


def budget(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(name, value) of what the sweep spent: iterations (per model when they differ), victim
    images per run, devices and wall time summed over runs."""
    iterations = []
    for value, part in runs.groupby(runs["iterations"].fillna(-1), sort=True):
        models = ", ".join(_values(part["model"]))
        iterations.append(f"{'closed form' if value == -1 else f'{value:g}'} ({models})")
    seconds = pd.to_numeric(runs.get("timing_total_seconds", pd.Series(dtype=float)), errors="coerce")
    return [
        ("iterations", "; ".join(iterations)),
        ("victims per run", ", ".join(_values(runs["victims"]))),
        ("device", ", ".join(_values(runs["device"]))),
        ("wall time", f"{duration(seconds.sum())} summed over {len(runs)} runs "
                      f"(median {duration(seconds.median())} a run)"),
    ]


def headline_axis(images: pd.DataFrame, fields: Sequence[str] = ()) -> str:
    """What the headline's columns are: dropout p when it varies, else the first field that
    splits rows (a ``--by`` field first, e.g. DP-SGD's ``defense.epsilon``), else p."""
    if images["dropout"].nunique(dropna=False) > 1:
        return "dropout"
    return next((f for f in fields if f in images and images[f].nunique(dropna=False) > 1), "dropout")


def headline(images: pd.DataFrame, axis: str = "dropout", metric: str = "psnr") -> pd.DataFrame:
    """Mean ``metric`` over every image of each attack (x defense, where defenses differ),
    one column per value of ``axis`` (``headline_axis``): the papers' finding in one small table."""
    lines = [k for k in LINES if images[k].nunique(dropna=False) > 1] or LINES[:1]
    values = pd.to_numeric(images.get(metric, pd.Series(index=images.index, dtype=float)), errors="coerce")
    table = values.groupby([images[k] for k in [*lines, axis]], dropna=False).mean().unstack(axis)
    name = "p" if axis == "dropout" else axis.split(".")[-1]
    table.columns = [f"{name}={key_text(value)}" for value in table.columns]
    table.index = pd.Index([" / ".join(map(key_text, i if isinstance(i, tuple) else (i,))) for i in table.index],
                           name=" / ".join(lines))
    return table


def change(table: pd.DataFrame, unit: str = "dB") -> str:
    """The headline in words: each row from the first column to the last, e.g.
    'p=0 → p=0.25: ig 40.53 → 16.80 dB (-23.73), dia ...'; empty with a single column."""
    if len(table.columns) < 2:
        return ""
    first, last = table.columns[0], table.columns[-1]
    moves = [
        f"{name} {row[first]:.2f} → {row[last]:.2f} {unit} ({row[last] - row[first]:+.2f})"
        for name, row in table.iterrows() if math.isfinite(row[first]) and math.isfinite(row[last])
    ]
    return f"{first} → {last}: " + ", ".join(moves) if moves else ""


def duration(seconds: float) -> str:
    """'1 h 05 min', '3 min 20 s', '12 s'; '–' without a time."""
    if seconds is None or math.isnan(seconds):
        return MISSING
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def _values(column: pd.Series) -> list[str]:
    """The distinct values of a column as tables show them, in order."""
    return sorted({key_text(v) for v in column}, key=_order)


def _order(text: str):
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)
