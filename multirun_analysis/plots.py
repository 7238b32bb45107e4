"""Figures: each metric against dropout p, and each convergence curve against the attack's steps.

One panel per (model, dataset) (and dropout p for curves), one line per attack (x defense).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from multirun_analysis.tables import row_keys  # noqa: E402

from gradinv.schema import metric_label  # noqa: E402


def plot_metric(summary: pd.DataFrame, metric: str, path: Path) -> bool:
    """Write the metric's figure to ``path``; False (and no file) when the metric has no value."""
    part = summary[(summary["metric"] == metric) & (summary["n"] > 0)]
    if part.empty:
        return False
    panels = sorted(part[["dataset", "model"]].drop_duplicates().itertuples(index=False))
    several_defenses = part["defense"].nunique() > 1
    figure, axes = _panel_grid(len(panels), sharex=True)
    for ax, (dataset, model) in zip(axes.flat, panels):
        panel = part[(part["dataset"] == dataset) & (part["model"] == model)]
        for (attack, defense), line in panel.groupby(["attack", "defense"], sort=True):
            line = line.sort_values("dropout")
            label = f"{attack} / {defense}" if several_defenses else attack
            ax.errorbar(line["dropout"], line["mean"], yerr=line["std"].fillna(0),
                        marker="o", capsize=3, label=label)
        _finish_panel(ax, f"{model} on {dataset}", "dropout p", metric)
    _save(figure, axes, len(panels), path)
    return True


def plot_against(summary: pd.DataFrame, metric: str, field: str, path: Path) -> bool:
    """``metric`` against a ``--by`` config field: one panel per setting of the other row keys
    and dropout p, one line per attack (x defense); False (and no file) without values."""
    part = summary[(summary["metric"] == metric) & (summary["n"] > 0)]
    if part.empty or field not in part:
        return False
    lines = ["attack", "defense"]
    keys = [k for k in row_keys(summary) if k not in (field, *lines)] + ["dropout"]
    panels = sorted(part[keys].drop_duplicates().itertuples(index=False))
    figure, axes = _panel_grid(len(panels), sharex=True)
    for ax, panel_key in zip(axes.flat, panels):
        panel = part[(part[keys] == list(panel_key)).all(axis=1)]
        for (attack, defense), line in panel.groupby(lines, sort=True):
            line = line.sort_values(field)
            label = attack if defense == "none" else f"{attack} / {defense}"
            ax.errorbar(line[field], line["mean"], yerr=line["std"].fillna(0), marker="o", capsize=3, label=label)
        title = ", ".join(
            f"{k.split('.')[-1]}={v:g}" if isinstance(v, (int, float)) else str(v) for k, v in zip(keys, panel_key)
        )
        _finish_panel(ax, title, field, metric)
    _save(figure, axes, len(panels), path)
    return True


def plot_curves(curves: pd.DataFrame, metric: str, path: Path) -> bool:
    """``metric`` against optimizer steps, averaged over the runs and fits of each cell; False
    (and no file) when no run recorded it."""
    if metric not in curves or curves[metric].isna().all():
        return False
    part = curves.dropna(subset=[metric])
    mean = part.groupby(["dataset", "model", "dropout", "attack", "defense", "step"])[metric].mean()
    mean = mean.reset_index()
    panels = sorted(mean[["dataset", "model", "dropout"]].drop_duplicates().itertuples(index=False))
    figure, axes = _panel_grid(len(panels))
    for ax, (dataset, model, dropout) in zip(axes.flat, panels):
        panel = mean[(mean["dataset"] == dataset) & (mean["model"] == model) & (mean["dropout"] == dropout)]
        for (attack, defense), line in panel.groupby(["attack", "defense"], sort=True):
            label = attack if defense == "none" else f"{attack} / {defense}"
            ax.plot(line["step"], line[metric], label=label)
        if metric == "loss":
            ax.set_yscale("log")
        _finish_panel(ax, f"{model} on {dataset}, p={dropout:g}", "optimizer step", metric)
    _save(figure, axes, len(panels), path)
    return True


def _panel_grid(count: int, sharex: bool = False):
    """A figure with ``count`` panels, at most four per row."""
    columns = min(4, count)
    rows = -(-count // columns)
    return plt.subplots(rows, columns, figsize=(3.6 * columns, 2.8 * rows), squeeze=False, sharex=sharex)


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
