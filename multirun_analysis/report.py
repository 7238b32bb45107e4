"""Write everything the analysis produces for one collection of runs into one folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gradinv.schema import metric_label
from multirun_analysis.gallery import write_galleries
from multirun_analysis.html_report import REPORT_FILE, write_html
from multirun_analysis.loading import Collection
from multirun_analysis.plots import plot_against, plot_curves, plot_metric
from multirun_analysis.provenance import launches
from multirun_analysis.tables import (
    ROWS,
    TABLE_METRICS,
    numeric_table,
    summarize,
    text_table,
    to_latex,
    to_markdown,
)


def write_report(
    collection: Collection, out: Path, by: Sequence[str] = (), title: str = ""
) -> list[Path]:
    """Tidy CSVs, per-metric tables (Markdown, LaTeX, CSV), plots, convergence curves, galleries
    and report.html (all of it on one page, ``title`` at its top); the paths written. Table rows
    are split by ``collection.fields`` (``by`` and every other field that varies); each ``by``
    field also gets a plot of every metric against it."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "runs.csv", out / "images.csv", out / "summary.csv"]
    collection.runs.to_csv(written[0], index=False)
    collection.images.to_csv(written[1], index=False)
    rows = [*ROWS, *collection.fields]
    summary = summarize(collection.images, rows=rows)
    summary.to_csv(written[2], index=False)
    figures: list[tuple[Path, str]] = []  # (PNG, caption) for report.html
    for metric in TABLE_METRICS:
        title_of_table = f"{metric_label(metric)}: mean ± std over victim images, by dropout p"
        files = {suffix: out / f"table_{metric}.{suffix}" for suffix in ("md", "tex", "csv")}
        files["md"].write_text(to_markdown(text_table(summary, metric), title_of_table))
        files["tex"].write_text(to_latex(text_table(summary, metric, latex=True), title_of_table))
        numeric_table(summary, metric).to_csv(files["csv"])
        written += files.values()
        plot = out / f"plot_{metric}.png"
        if plot_metric(summary, metric, plot):
            figures.append((plot, f"{metric_label(metric)}: mean ± std over victim images"))
        for field in by:
            plot = out / f"plot_{metric}_by_{field.replace('.', '_')}.png"
            if plot_against(summary, metric, field, plot):
                figures.append((plot, f"{metric_label(metric)} against {field}"))
    if not collection.curves.empty:
        written.append(out / "curves.csv")
        collection.curves.to_csv(written[-1], index=False)
        for metric in ("psnr", "mask_accuracy", "loss"):
            plot = out / f"curve_{metric}.png"
            if plot_curves(collection.curves, metric, plot, rows):
                figures.append((plot, f"{metric_label(metric)} during the attack, mean over runs"))
    written += [path for path, _ in figures]
    written += write_galleries(collection.runs, out, collection.fields)
    made = launches(collection.runs["run"])
    written.append(
        write_html(out / REPORT_FILE, title or str(out), collection, summary, figures, made)
    )
    return written
