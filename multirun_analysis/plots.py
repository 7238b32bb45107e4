"""Each metric against dropout p: one panel per (model, dataset), one line per attack (x defense)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS"}


def plot_metric(summary: pd.DataFrame, metric: str, path: Path) -> bool:
    """Write the metric's figure to ``path``; False (and no file) when the metric has no value."""
    part = summary[(summary["metric"] == metric) & (summary["n"] > 0)]
    if part.empty:
        return False
    panels = sorted(part[["dataset", "model"]].drop_duplicates().itertuples(index=False))
    several_defenses = part["defense"].nunique() > 1
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(3.6 * columns, 2.8 * rows), squeeze=False, sharex=True
    )
    for ax, (dataset, model) in zip(axes.flat, panels):
        panel = part[(part["dataset"] == dataset) & (part["model"] == model)]
        for (attack, defense), line in panel.groupby(["attack", "defense"], sort=True):
            line = line.sort_values("dropout")
            label = f"{attack} / {defense}" if several_defenses else attack
            ax.errorbar(line["dropout"], line["mean"], yerr=line["std"].fillna(0),
                        marker="o", capsize=3, label=label)
        ax.set_title(f"{model} on {dataset}", fontsize=10)
        ax.set_xlabel("dropout p")
        ax.set_ylabel(LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
