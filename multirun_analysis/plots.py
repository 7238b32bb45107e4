"""Figures: each metric against what varies (dropout p when it does), and each convergence curve
against the attack's steps.

One line per attack (x defense), one panel per setting of the other row keys; the panels of a
figure share their axes, so that they can be compared at a glance. An axis never spans a
single value: with one p, a metric is drawn against the settings that vary (e.g. the models).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from gradinv.schema import metric_label  # noqa: E402
from multirun_analysis.tables import ROWS, describe, key_text, row_keys  # noqa: E402

LINES = ["attack", "defense"]  # what one panel compares: one line per combination
UNSHARED = ("loss",)  # curves whose scale depends on the attack's objective (cosine vs squared)


def plot_metric(summary: pd.DataFrame, metric: str, path: Path) -> bool:
    """Write the metric's figure to ``path``; False (and no file) when the metric has no value.

    Against dropout p when it varies (a panel per setting of the other keys); with one p, against
    the settings that vary besides the dataset (models, fields), a panel per dataset.
    """
    part = _scored(summary, metric)
    if part.empty:
        return False
    keys = [*row_keys(summary), "dropout"]
    if part["dropout"].nunique() > 1:
        _plot(part, metric, "dropout", keys, path)
        return True
    varying = [
        k for k in keys if k not in (*LINES, "dataset") and part[k].nunique(dropna=False) > 1
    ]
    if not varying:  # only the attacks (or defenses) differ
        _plot(part, metric, LINES[0], keys, path)
        return True
    settings = [describe(varying, row, "\n") for row in part[varying].itertuples(index=False)]
    keys = [k for k in keys if k not in varying]
    _plot(
        part.assign(setting=settings),
        metric,
        "setting",
        [*keys, "setting"],
        path,
        ", ".join(varying),
    )
    return True


def plot_against(summary: pd.DataFrame, metric: str, field: str, path: Path) -> bool:
    """``metric`` against a ``--by`` config field: one panel per setting of the other row keys
    and dropout p; False (and no file) without values or when the field takes one value."""
    part = _scored(summary, metric)
    if part.empty or field not in part or part[field].nunique(dropna=False) < 2:
        return False
    _plot(part, metric, field, [*row_keys(summary), "dropout"], path)
    return True


def plot_curves(curves: pd.DataFrame, metric: str, path: Path, rows: Sequence[str] = ROWS) -> bool:
    """``metric`` against optimizer steps, averaged over the runs and fits of each table row
    (``rows``) and p, one panel per setting besides the attack and defense; False (and no file)
    when no run recorded it. Panels share their y scale, except the loss's."""
    if metric not in curves or curves[metric].isna().all():
        return False
    panel_keys = [k for k in [*rows, "dropout"] if k not in LINES]
    part = curves.dropna(subset=[metric])
    mean = (
        part.groupby([*panel_keys, *LINES, "step"], sort=True, dropna=False)[metric]
        .mean()
        .reset_index()
    )
    panels = list(mean.groupby(panel_keys, sort=True, dropna=False))
    shown = _shown(mean, LINES)
    figure, axes = _panel_grid(len(panels), sharey=metric not in UNSHARED)
    for ax, title, (_, panel) in zip(axes.flat, _titles(figure, mean, panel_keys, panels), panels):
        for values, line in panel.groupby(LINES, sort=True, dropna=False):
            ax.plot(line["step"], line[metric], label=_label(LINES, values, shown))
        if metric == "loss":
            ax.set_yscale("log")
        _finish_panel(ax, title, "optimizer step", metric)
    _save(figure, axes, len(panels), path)
    return True


def _scored(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The summary rows of ``metric`` that have a value."""
    return summary[(summary["metric"] == metric) & (summary["n"] > 0)]


def _plot(
    part: pd.DataFrame, metric: str, x: str, keys: list[str], path: Path, xlabel: str = ""
) -> None:
    """``metric`` against ``x``: a line per attack (x defense), a panel per setting of the other
    ``keys``; a categorical ``x`` (models, group choices, flags) is drawn as points, side by side."""
    lines = [k for k in LINES if k != x]
    panel_keys = [k for k in keys if k not in (x, *lines)]
    panels = list(part.groupby(panel_keys, sort=True, dropna=False))
    numeric = pd.api.types.is_numeric_dtype(part[x]) and not pd.api.types.is_bool_dtype(part[x])
    positions = (
        {} if numeric else {v: i for i, v in enumerate(sorted(part[x].unique(), key=key_text))}
    )
    names = [key_text(v) for v in positions]
    shown = _shown(part, lines)
    figure, axes = _panel_grid(len(panels), sharex=True, sharey=True, categories=names)
    for ax, title, (_, panel) in zip(axes.flat, _titles(figure, part, panel_keys, panels), panels):
        groups = list(panel.groupby(lines, sort=True, dropna=False))
        for i, (values, line) in enumerate(groups):
            line = line.sort_values(x) if numeric else line
            xs = line[x] if numeric else line[x].map(positions) + 0.1 * (i - (len(groups) - 1) / 2)
            ax.errorbar(
                xs,
                line["mean"],
                yerr=line["std"].fillna(0),
                marker="o",
                capsize=3,
                linestyle="-" if numeric else "none",
                label=_label(lines, values, shown),
            )
        if not numeric:
            ax.set_xticks(range(len(names)), names, fontsize=8)
        elif _spans_decades(part[x]):
            ax.set_xscale("log")
        _finish_panel(ax, title, xlabel or ("dropout p" if x == "dropout" else x), metric)
    _save(figure, axes, len(panels), path)


def _spans_decades(values: pd.Series) -> bool:
    """Whether positive values span two decades or more (epsilon, a learning rate): a log axis."""
    finite = values.dropna()
    return not finite.empty and finite.min() > 0 and finite.max() >= 100 * finite.min()


def _titles(figure, frame: pd.DataFrame, keys: list[str], panels: list) -> list[str]:
    """Each panel's title names the keys that differ between panels; the figure's title names
    the rest, which all panels share (e.g. 'mnist, p=0')."""
    varying = [i for i, k in enumerate(keys) if frame[k].nunique(dropna=False) > 1]
    shared = [i for i in range(len(keys)) if i not in varying]
    first = panels[0][0]
    if shared:
        figure.suptitle(
            describe([keys[i] for i in shared], [first[i] for i in shared]), fontsize=10
        )
    return [describe([keys[i] for i in varying], [key[i] for i in varying]) for key, _ in panels]


def _shown(frame: pd.DataFrame, lines: list[str]) -> list[str]:
    """The line keys worth naming in a legend: those that vary, or the first one."""
    return [k for k in lines if frame[k].nunique(dropna=False) > 1] or lines[:1]


def _label(lines: list[str], values: tuple, shown: list[str]) -> str:
    return " / ".join(key_text(v) for k, v in zip(lines, values) if k in shown)


def _panel_grid(
    count: int, sharex: bool = False, sharey: bool = False, categories: Sequence[str] = ()
) -> tuple[Any, Any]:
    """A figure with ``count`` panels, at most four per row, wide and tall enough for the
    ``categories`` of a categorical x axis (one line per field of a label)."""
    columns = min(4, count)
    rows = -(-count // columns)
    width = max(3.6, 1.2 * len(categories))
    height = 2.8 + 0.15 * max((name.count("\n") for name in categories), default=0)
    return plt.subplots(
        rows,
        columns,
        figsize=(width * columns, height * rows),
        squeeze=False,
        sharex=sharex,
        sharey=sharey,
    )


def _finish_panel(ax, title: str, xlabel: str, metric: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric_label(metric))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _save(figure, axes, used: int, path: Path) -> None:
    """Hide the unused panels and write the figure."""
    for ax in axes.flat[used:]:
        ax.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
