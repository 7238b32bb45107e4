"""A sweep at a glance: its grid, its budget, and the headline PSNR of each attack against p.

report.html and the W&B report open with these, so that both state the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from multirun_analysis.tables import MISSING, key_text

GRID = ["dataset", "model", "defense", "attack", "dropout"]
LINES = ["attack", "defense"]  # what the headline compares: one row per combination that occurs


def grid(runs: pd.DataFrame, fields: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(name, values) of every key of the grid, the fields that split rows and the seeds."""
    names = {"dropout": "p", "seed": "seeds"}
    return [
        (names.get(key, key), ", ".join(_values(runs[key])))
        for key in [*GRID, *fields, "seed"]
        if key in runs
    ]


def budget(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(name, value) of what the sweep spent: iterations (per model when they differ), victim
    images per run, devices and wall time summed over runs."""
    iterations = []
    for value, part in runs.groupby(runs["iterations"].fillna(-1), sort=True):
        models = ", ".join(_values(part["model"]))
        iterations.append(f"{'closed form' if value == -1 else f'{value:g}'} ({models})")
    seconds = pd.to_numeric(
        runs.get("timing_total_seconds", pd.Series(dtype=float)), errors="coerce"
    )
    return [
        ("iterations", "; ".join(iterations)),
        ("victims per run", ", ".join(_values(runs["victims"]))),
        ("device", ", ".join(_values(runs["device"]))),
        (
            "wall time",
            f"{duration(seconds.sum())} summed over {len(runs)} runs "
            f"(median {duration(seconds.median())} a run)",
        ),
    ]


@dataclass
class Headline:
    """The papers' finding in one small table: the mean ``metric`` of each attack (x defense,
    where defenses differ) at each value of ``axis``, over the settings (dataset x model, x
    defense where it is not a row) where every row has a value in every column; ``left_out``
    settings lack one."""

    table: pd.DataFrame
    axis: str
    settings: int
    left_out: int
    #: What a setting is (e.g. 'dataset x model'); empty when the sweep has one.
    setting: str = ""

    def change(self, unit: str = "dB") -> str:
        """In words, each row from the first column to the last, e.g.
        'p=0 → p=0.25: ig 40.53 → 16.80 dB (-23.73), dia ...'; empty with a single column."""
        table = self.table
        if len(table.columns) < 2:
            return ""
        first, last = table.columns[0], table.columns[-1]
        moves = [
            f"{name} {row[first]:.2f} → {row[last]:.2f} {unit} ({row[last] - row[first]:+.2f})"
            for name, row in table.iterrows()
            if math.isfinite(row[first]) and math.isfinite(row[last])
        ]
        return f"{first} → {last}: " + ", ".join(moves) if moves else ""

    def scope(self) -> str:
        """What the means run over, in a sentence."""
        rows, column = self.table.index.name, "p" if self.axis == "dropout" else self.axis
        if not self.settings:
            return (
                f"Mean over every victim image there is (seeds and other fields pooled); no setting "
                f"has every {rows} at every {column}, so the cells may pool different settings."
            )
        if not self.setting:
            return "Mean over every victim image of the sweep (seeds and other fields pooled)."
        text = (
            f"Mean over the victim images of the {self.settings} {self.setting} "
            f"setting{'s' * (self.settings != 1)} where every "
            f"{rows} has a value at every {column} (seeds and other fields pooled)"
        )
        return text + (f"; {self.left_out} incomplete left out." if self.left_out else ".")


def headline(images: pd.DataFrame, fields: Sequence[str] = (), metric: str = "psnr") -> Headline:
    """The ``Headline`` of ``metric``: its columns dropout p when p varies, else the first of
    ``fields`` (``Collection.fields``, ``--by`` first; e.g. DP-SGD's ``defense.epsilon``) that varies."""
    axis = "dropout"
    if images["dropout"].nunique(dropna=False) < 2:
        axis = next(
            (f for f in fields if f in images and images[f].nunique(dropna=False) > 1), axis
        )
    lines = [k for k in LINES if images[k].nunique(dropna=False) > 1] or LINES[:1]
    settings = [k for k in ["dataset", "model", *LINES] if k not in lines]
    values = pd.to_numeric(images[metric], errors="coerce") if metric in images else float("nan")
    frame = images.assign(value=values).dropna(subset=["value"])
    setting = _keys(frame, settings)
    cell = _keys(frame, [*lines, axis])
    present = cell.groupby(setting).nunique()  # the (row, column) cells each setting fills
    complete = present[present == cell.nunique()].index
    if len(complete):  # else no setting has every cell: pool what there is, and say so
        frame = frame[setting.isin(complete)]
    table = frame.groupby([*lines, axis], dropna=False)["value"].mean().unstack(axis)
    name = "p" if axis == "dropout" else axis.split(".")[-1]
    table.columns = [f"{name}={key_text(value)}" for value in table.columns]
    table.index = pd.Index(
        [" / ".join(map(key_text, i if isinstance(i, tuple) else (i,))) for i in table.index],
        name=" / ".join(lines),
    )
    varying = " x ".join(k for k in settings if images[k].nunique(dropna=False) > 1)
    return Headline(table, axis, len(complete), len(present) - len(complete), varying)


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


def _keys(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Each row's values of ``columns`` as one comparable text (missing values included)."""
    return (
        frame[list(columns)].map(str).agg(" | ".join, axis=1)
        if columns
        else pd.Series("", index=frame.index)
    )


def _values(column: pd.Series) -> list[str]:
    """The distinct values of a column as tables show them, in order."""
    return sorted({key_text(v) for v in column}, key=_order)


def _order(text: str):
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)
