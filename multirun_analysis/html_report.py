"""report.html: a sweep on one page that any browser opens, without a server or the network.

Everything is inside the file (pictures as data URIs, styles inline, no script), so that it can be
mailed or archived as it is. The first screen holds the sweep's grid and budget and its finding:
the mean PSNR of each attack against p beside its figure. The paper tables, the figures, the
galleries with each image's PSNR, the failed cells with their errors and the commands that
reproduce the sweep follow.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from html import escape
from pathlib import Path

import pandas as pd

from gradinv.schema import IMAGE_METRICS, metric_label
from multirun_analysis.gallery import ROWS as GALLERY_ROWS
from multirun_analysis.gallery import pictured
from multirun_analysis.loading import Collection
from multirun_analysis.overview import budget, grid, headline
from multirun_analysis.provenance import Launch
from multirun_analysis.tables import (
    DIGITS,
    MISSING,
    STATS,
    TABLE_METRICS,
    format_cell,
    key_text,
    numeric_table,
)

REPORT_FILE = "report.html"
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 0 auto; max-width: 1280px; padding: 0 20px 40px; }
header { border-bottom: 1px solid #ccc; padding: 10px 0 6px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 22px 0 8px; } h3 { font-size: 15px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 1px 12px; margin: 4px 0; font-size: 13px; }
dt { color: #666; } dd { margin: 0; }
.glance { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
.glance > div { flex: 1 1 560px; } .glance > div:first-child { flex: 0 1 420px; } .glance img { max-width: 100%; }
.note { color: #555; font-size: 13px; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; vertical-align: top; }
th { background: #f4f4f4; text-align: left; } td.num { text-align: right; white-space: nowrap; }
td.big { font-size: 17px; font-weight: 600; } small { color: #666; display: block; }
figure { display: inline-block; margin: 0 12px 12px 0; vertical-align: top; }
figure img { max-width: 100%; } figcaption { font-size: 12px; color: #444; max-width: 360px; }
.gallery td { text-align: center; } .gallery img { max-width: 320px; }
pre { background: #f6f6f6; padding: 8px; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
.bad { color: #a00; }
"""


def write_html(
    path: Path,
    title: str,
    collection: Collection,
    summary: pd.DataFrame,
    figures: Sequence[tuple[Path, str]],
    launches: Sequence[Launch],
) -> Path:
    """Write report.html to ``path``: ``figures`` are (PNG, caption), PSNR's against the
    headline's axis drawn beside it; ``launches`` the commands that made the runs."""
    runs = collection.runs
    left_out = len(collection.skipped)
    counts = f"{len(runs)} of {len(runs) + left_out} runs ok" + (
        f", <a class=bad href='#failed'>{left_out} left out</a>" if left_out else ""
    )
    glance = headline(collection.images, collection.fields)
    beside = (
        "plot_psnr" if glance.axis == "dropout" else f"plot_psnr_by_{glance.axis.replace('.', '_')}"
    )
    first = next(
        (_figure(*f) for f in figures if f[0].stem == beside),
        _figure(*figures[0]) if figures else "",
    )
    body = [
        f"<header><h1>{escape(title)}</h1><div>{counts}</div><div class=glance>",
        f"<div>{_definitions(grid(runs, collection.fields))}</div><div>{_definitions(budget(runs))}</div>",
        "</div></header>",
        f"<section id=glance><h2>At a glance: PSNR (dB) of each attack, by {escape(_axis_name(glance.axis))}</h2>"
        "<div class=glance><div>",
        _table(glance.table, glance.table.columns, "psnr", big=True),
        f"<p><b>{escape(glance.change())}</b></p>",
        f"<p class=note>{escape(glance.scope())} Higher means more of the private image leaked; "
        "per setting: the tables below.</p>",
        f"</div><div>{first}</div></div></section>",
        *_metric_tables(summary),
        "<section id=figures><h2>Figures</h2>",
        *(_figure(*f) for f in figures),
        "</section>",
        _galleries(collection),
        _failed(collection.skipped),
        _commands(launches),
    ]
    page = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
    path.write_text(page)
    return path


def _axis_name(axis: str) -> str:
    return "dropout p" if axis == "dropout" else axis


def _definitions(items: Sequence[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items) + "</dl>"


def _metric_tables(summary: pd.DataFrame) -> list[str]:
    """Each paper table: rows the settings, columns p, cells mean ± std over images and n."""
    sections = []
    for metric in TABLE_METRICS:
        part = summary[summary["metric"] == metric]
        if not part["n"].sum():
            continue
        numeric = numeric_table(summary, metric)
        ps = [
            column.removesuffix(" mean") for column in numeric.columns if column.endswith(" mean")
        ]
        digits = DIGITS.get(metric, 3)
        cells = pd.DataFrame(
            {
                p: [
                    (row[f"{p} mean"], _cell(*(row[f"{p} {s}"] for s in STATS), digits))
                    for _, row in numeric.iterrows()
                ]
                for p in ps
            },
            index=numeric.index,
        )
        sections.append(
            f"<section id=table-{metric}><h2>{escape(metric_label(metric))}</h2>"
            "<p class=note>mean ± standard deviation over victim images (all victims and seeds "
            "of a setting); n: images with a value.</p>" + _table(cells, ps, metric) + "</section>"
        )
    return sections


def _cell(mean: float, std: float, n: float, total: float, digits: int) -> str:
    text = escape(format_cell(mean, std, n, total, digits, latex=False))
    return text + (f"<small>n={int(n)}</small>" if n and n == total else "")


def _table(frame: pd.DataFrame, columns: Sequence[str], metric: str, big: bool = False) -> str:
    """An HTML table: the index levels as leading columns, then ``columns``; a cell is a number
    or (value, html). Cells are shaded from red (least leaked) to green (most) within the table."""
    keys = [name or "" for name in frame.index.names]
    values = [c[0] if isinstance(c, tuple) else c for column in columns for c in frame[column]]
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    head = "".join(f"<th>{escape(str(k))}</th>" for k in [*keys, *columns])
    rows = []
    for index, row in frame.iterrows():
        index = index if isinstance(index, tuple) else (index,)
        cells = [f"<th>{escape(key_text(k))}</th>" for k in index]
        for column in columns:
            value, text = row[column] if isinstance(row[column], tuple) else (row[column], None)
            if text is None:
                text = f"{value:.{DIGITS.get(metric, 3)}f}" if math.isfinite(value) else MISSING
            cells.append(
                f"<td class='num{' big' if big else ''}'{_shade(value, low, high, metric)}>{text}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _shade(value: float, low: float, high: float, metric: str) -> str:
    if not (isinstance(value, float) and math.isfinite(value)) or high <= low:
        return ""
    share = (value - low) / (high - low)
    share = share if IMAGE_METRICS[metric].higher_is_better else 1 - share
    return f" style='background: hsl({120 * share:.0f}, 55%, 88%)'"


def _figure(path: Path, caption: str) -> str:
    return (
        f"<figure><img src='{_data_uri(path)}' alt='{escape(caption)}'>"
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _galleries(collection: Collection) -> str:
    """Per dataset, each cell's reconstruction.png (its lowest seed) and each image's PSNR."""
    cells = pictured(collection.runs, collection.fields)
    if cells.empty:
        return ""
    keys = [*GALLERY_ROWS, *collection.fields]
    images = collection.images.reindex(columns=["run", "psnr"])
    psnr = images.groupby("run")["psnr"].apply(list)
    parts = ["<section id=galleries><h2>Galleries: originals above reconstructions</h2>"]
    for dataset, part in cells.groupby("dataset", sort=True):
        ps = sorted(part["dropout"].unique())
        rows = []
        for row, row_cells in part.groupby(keys, sort=True, dropna=False):
            tiles = []
            for p in ps:
                match = row_cells[row_cells["dropout"] == p]
                tiles.append(
                    "<td></td>"
                    if match.empty
                    else _tile(match.iloc[0], psnr.get(match.iloc[0]["run"], []))
                )
            names = "<br>".join(escape(key_text(v)) for v in row)
            rows.append(f"<tr><th>{names}</th>{''.join(tiles)}</tr>")
        head = "".join(f"<th>p={p:g}</th>" for p in ps)
        parts.append(
            f"<h3>{escape(dataset)}</h3><table class=gallery><thead><tr><th>"
            f"{' / '.join(keys)}</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    return "".join(parts) + "</section>"


def _tile(run: pd.Series, psnr: list[float]) -> str:
    values = ", ".join(f"{v:.1f}" for v in psnr if v == v) or MISSING
    return (
        f"<td><img src='{_data_uri(run['picture'])}' alt='{escape(str(run['run']))}'>"
        f"<small>PSNR per image (dB): {values}; seed {key_text(run['seed'])}</small></td>"
    )


def _failed(skipped: Sequence[tuple[str, str]]) -> str:
    if not skipped:
        return ""
    rows = "".join(
        f"<tr><td>{escape(run)}</td><td class=bad>{escape(reason)}</td></tr>"
        for run, reason in skipped
    )
    return (
        f"<section id=failed><h2>Left out: {len(skipped)} runs</h2><p class=note>Runs that "
        "did not finish ok are in no table; each with the reason its results.json gives.</p>"
        f"<table><thead><tr><th>run</th><th>why</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _commands(launches: Sequence[Launch]) -> str:
    if not launches:
        return ""
    blocks = "".join(
        f"<p class=note>{escape(str(launch.folder))}, run from {escape(launch.cwd)}:</p>"
        f"<pre>{escape(launch.command)}</pre>"
        for launch in launches
    )
    return f"<section id=reproduce><h2>Reproduce</h2>{blocks}</section>"
