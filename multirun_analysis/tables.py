"""The papers' tables: mean and standard deviation of each metric per grid cell, across dropout p.

A row is one setting: ``ROWS`` and every field that varies among its runs
(``multirun_analysis.settings``), so that different experiments never share a number. The unit
is one victim image: a cell's mean and sample standard deviation (ddof=1) run over all its
images (all victims and seeds of the setting). Missing values (e.g. LPIPS without its weights)
are left out of the statistics and counted: ``n`` is the number of values used, ``total`` the
images in the cell. A cell shows "–" when it has no value, and "(n/total)" when some were missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from gradinv.schema import IMAGE_METRICS

ROWS = ["dataset", "model", "defense", "attack"]
#: A table (and plot) per image metric, and the decimals of its cells.
TABLE_METRICS = tuple(IMAGE_METRICS)
DIGITS = {name: metric.digits for name, metric in IMAGE_METRICS.items()}
MISSING = "–"
STATS = ("mean", "std", "n", "total")


def summarize(
    images: pd.DataFrame, metrics: tuple[str, ...] = TABLE_METRICS, rows: Sequence[str] = ROWS
) -> pd.DataFrame:
    """Long form: one row per (cell, dropout, metric) with mean, std, n and total; ``rows`` are
    the keys that name a table row (``ROWS`` and the fields that split it, ``Collection.fields``)."""
    rows = list(rows)
    frame = images.reindex(columns=[*rows, "dropout", *metrics])
    frame[list(metrics)] = frame[list(metrics)].apply(pd.to_numeric, errors="coerce")
    long = frame.melt(id_vars=[*rows, "dropout"], value_vars=list(metrics), var_name="metric")
    grouped = long.groupby([*rows, "dropout", "metric"], sort=True, dropna=False)["value"]
    summary = grouped.agg(mean="mean", std="std", n="count", total="size").reset_index()
    return summary


def numeric_table(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One metric laid out like the papers: rows = (dataset, model, defense, attack, ...), columns = p."""
    part = summary[summary["metric"] == metric]
    wide = part.set_index([*row_keys(summary), "dropout"])[list(STATS)].unstack("dropout")
    ps = sorted(part["dropout"].unique())
    wide = wide.reorder_levels([1, 0], axis=1).reindex(
        columns=pd.MultiIndex.from_product([ps, STATS])
    )
    wide.columns = [f"p={p:g} {stat}" for p, stat in wide.columns]
    return wide


def row_keys(summary: pd.DataFrame) -> list[str]:
    """The keys naming a summary's table rows: every column before ``dropout``."""
    columns = list(summary.columns)
    return columns[: columns.index("dropout")]


def format_cell(mean: float, std: float, n: float, total: float, digits: int, latex: bool) -> str:
    """'mean ± std', '(n/total)' when values were missing, '–' when there is none."""
    if not n or math.isnan(n):
        return MISSING
    text = f"{mean:.{digits}f}"
    if not math.isnan(std):
        text += (r" $\pm$ " if latex else " ± ") + f"{std:.{digits}f}"
    if n < total:
        text += f" ({int(n)}/{int(total)})"
    return text


def text_table(summary: pd.DataFrame, metric: str, latex: bool = False) -> pd.DataFrame:
    """The table of ``metric`` with formatted cells, ready for Markdown or LaTeX."""
    numeric = numeric_table(summary, metric)
    digits = DIGITS.get(metric, 3)
    ps = sorted(summary.loc[summary["metric"] == metric, "dropout"].unique())
    cells = {
        f"p={p:g}": [
            format_cell(*(row[f"p={p:g} {stat}"] for stat in STATS), digits, latex)
            for _, row in numeric.iterrows()
        ]
        for p in ps
    }
    return pd.DataFrame(cells, index=numeric.index)


def key_text(value: object) -> str:
    """A row key as a table shows it: '–' for a field the run does not have, numbers short."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe(keys: Sequence[str], values: Sequence[object], separator: str = ", ") -> str:
    """'mnist, mlp, p=0, local_steps=5': the row names by value, other fields by name=value."""
    return separator.join(
        key_text(v) if k in ROWS else f"{'p' if k == 'dropout' else k.split('.')[-1]}={key_text(v)}"
        for k, v in zip(keys, values)
    )


def to_markdown(table: pd.DataFrame, title: str) -> str:
    """A GitHub Markdown table with the row keys as leading columns."""
    header = [*table.index.names, *table.columns]
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |"]
    lines.append(
        "|" + "|".join(["---"] * len(table.index.names) + ["---:"] * len(table.columns)) + "|"
    )
    for keys, row in table.iterrows():
        lines.append("| " + " | ".join([*map(key_text, keys), *row]) + " |")
    return "\n".join(lines) + "\n"


def to_latex(table: pd.DataFrame, caption: str) -> str:
    """A booktabs LaTeX table (needs \\usepackage{booktabs})."""
    keys = len(table.index.names)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{_escape(caption)}}}",
        rf"\begin{{tabular}}{{{'l' * keys}{'r' * len(table.columns)}}}",
        r"\toprule",
        " & ".join(map(_escape, [*table.index.names, *table.columns])) + r" \\",
        r"\midrule",
    ]
    for index, row in table.iterrows():
        cells = [*(_escape(key_text(key)) for key in index), *(c.replace("–", "--") for c in row)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _escape(text: object) -> str:
    return (
        str(text).replace("_", r"\_").replace("%", r"\%").replace("±", r"$\pm$").replace("–", "--")
    )
