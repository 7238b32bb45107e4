"""A picture per dataset of what leaked: one tile per grid cell, each its run's reconstruction.png
(originals above reconstructions); rows are (model, defense, attack) and the fields that split
table rows, columns dropout p."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from gradinv.schema import PICTURE_FILE  # noqa: E402
from multirun_analysis.tables import describe  # noqa: E402

ROWS = ["model", "defense", "attack"]


def write_galleries(runs: pd.DataFrame, out: Path, fields: Sequence[str] = ()) -> list[Path]:
    """One gallery_<dataset>.png per dataset (``pictured``); ``fields`` (``Collection.fields``)
    split the rows as they split the tables'."""
    written = []
    for dataset, cells in pictured(runs, fields).groupby("dataset", sort=True):
        path = out / f"gallery_{dataset}.png"
        _gallery(cells, [*ROWS, *fields], dataset, path)
        written.append(path)
    return written


def pictured(runs: pd.DataFrame, fields: Sequence[str] = ()) -> pd.DataFrame:
    """One run per gallery tile (dataset, ``ROWS``, ``fields``, dropout p): the lowest seed
    whose folder holds its picture, with the picture's path in column ``picture``."""
    runs = runs.assign(picture=[Path(run) / PICTURE_FILE for run in runs["run"]])
    runs = runs[[picture.is_file() for picture in runs["picture"]]]
    return runs.sort_values("seed").drop_duplicates(["dataset", *ROWS, *fields, "dropout"])


def _gallery(cells: pd.DataFrame, keys: list[str], dataset: str, path: Path) -> None:
    rows = list(cells.groupby(keys, sort=True, dropna=False))
    ps = sorted(cells["dropout"].unique())
    figure, axes = plt.subplots(
        len(rows), len(ps), figsize=(2.2 * len(ps) + 1.5, 1.6 * len(rows) + 0.6), squeeze=False
    )
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
    for i, (row, row_cells) in enumerate(rows):
        axes[i, 0].set_ylabel(
            describe(keys, row, "\n"), fontsize=8, rotation=0, ha="right", va="center"
        )
        for j, p in enumerate(ps):
            match = row_cells[row_cells["dropout"] == p]
            if i == 0:
                axes[i, j].set_title(f"p={p:g}", fontsize=9)
            if not match.empty:
                axes[i, j].imshow(mpimg.imread(match["picture"].iloc[0]), cmap="gray")
                psnr = match["psnr"].iloc[0] if "psnr" in match else None
                if psnr is not None and psnr == psnr:  # NaN when the run has no PSNR
                    axes[i, j].set_xlabel(f"PSNR {psnr:.1f} dB", fontsize=8)
    figure.suptitle(f"{dataset}: originals above reconstructions", fontsize=9, wrap=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
