"""report.html of a real sweep: one self-contained page with the grid, budget, headline, tables,
figures, galleries, failed cells and the command; and what a headless browser shows of it."""

from __future__ import annotations

import io
import json
import re
import shlex
from contextlib import redirect_stdout
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib import pyplot as plt

from gradinv.schema import IMAGE_METRICS
from multirun_analysis.__main__ import main as analyse
from multirun_analysis.overview import duration
from tests.analysis.browser import find_browser, open_page
from tests.analysis.conftest import SWEEP, Sweep

BROWSER = find_browser()

pytestmark = pytest.mark.slow  # the real sweep runs once, ~20 s


@pytest.fixture(scope="module")
def analysed(real_sweep: Sweep, tmp_path_factory) -> tuple[Path, str]:
    """The analysis folder of the real sweep and what the command printed."""
    out = tmp_path_factory.mktemp("analysis")
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert analyse([str(real_sweep.folder), "--out", str(out)]) == 0
    return out, printed.getvalue()


class Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.found.append((tag, dict(attrs)))


def section(page: str, name: str) -> str:
    return page.split(f"<section id={name}>", 1)[1].split("</section>", 1)[0]


def test_report_html_holds_the_whole_sweep_in_one_self_contained_page(
    real_sweep: Sweep, analysed
) -> None:
    out, printed = analysed
    assert f"report.html: {out / 'report.html'}" in printed
    page = (out / "report.html").read_text()
    tags = Tags()
    tags.feed(page)
    names = {tag for tag, _ in tags.found}
    assert not names & {"script", "link", "iframe", "object", "embed"}
    sources = [attrs["src"] for tag, attrs in tags.found if tag == "img"]
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)
    assert not [
        v for _, attrs in tags.found for v in attrs.values() if v and re.match(r"\w+://", v)
    ]

    records = {
        path.parent: json.loads(path.read_text())
        for path in real_sweep.folder.glob("*/results.json")
    }
    ok = {run: r for run, r in records.items() if r["status"] == "ok"}
    seconds = sum(r["timing"]["total_seconds"] for r in ok.values())
    header = page.split("</header>", 1)[0]
    for name, value in [
        ("attack", "dia, ig"),
        ("p", "0, 0.25"),
        ("iterations", "4 (mlp)"),
        ("victims per run", "1"),
        ("device", "cpu"),
        ("wall time", duration(seconds)),
    ]:
        assert re.search(rf"<dt>{name}</dt><dd>{re.escape(value)}", header), name
    assert "4 of 6 runs ok" in header
    glance = section(page, "glance")
    for attack in ("dia", "ig"):
        cells = [
            f"{r['metrics']['psnr']:.2f}</td>"
            for r in ok.values()
            if r["choices"]["attack"] == attack
        ]
        assert len(cells) == 2 and all(cell in glance for cell in cells)
    table = section(page, "table-psnr")
    assert all(f"{r['metrics']['psnr']:.2f}<small>n=1</small>" in table for r in ok.values())
    for metric, about in IMAGE_METRICS.items():  # a table of each, its best value greenest
        values = [r["metrics"][metric] for r in ok.values()]
        if metric == "lpips":  # no weights offline: no values, no table
            assert values == [None] * 4 and "id=table-lpips" not in page
            continue
        best = (max if about.higher_is_better else min)(values)
        assert f"hsl(120, 55%, 88%)'>{best:.{about.digits}f}<small>" in section(
            page, f"table-{metric}"
        )
    gallery = section(page, "galleries")
    assert all(
        f"PSNR per image (dB): {r['per_image'][0]['psnr']:.1f}" in gallery for r in ok.values()
    )
    failed = section(page, "failed")
    assert failed.count("model.dropout must be a number in [0, 1), got 1.0.") == 2
    command = shlex.join(
        ["python", "gradinv/main.py", "-m", f"hydra.sweep.dir={real_sweep.given}", *SWEEP]
    )
    assert f"<pre>{command}</pre>" in section(page, "reproduce").replace("&#x27;", "'")


@pytest.mark.skipif(
    BROWSER is None, reason="needs Chromium (Debian: apt-get install chromium; .ci/run installs it)"
)
def test_a_browser_renders_every_table_and_image_with_the_finding_on_the_first_screen(
    analysed, tmp_path
) -> None:
    out, _ = analysed
    report = out / "report.html"
    page = open_page(BROWSER, report, width=1280, height=800)
    screenshot = tmp_path / "first_screen.png"
    screenshot.write_bytes(page.screenshot)
    assert page.errors == []
    assert [
        url for url in page.requests if url != report.as_uri() and not url.startswith("data:")
    ] == []
    html = report.read_text()
    images, tables = page.measured["images"], page.measured["tables"]
    assert (
        len(images) == html.count("<img ") >= 7
    )  # the headline figure, 2 metrics, curves, 4 tiles
    assert all(
        i["complete"] and i["width"] > 0 and i["height"] > 0 and i["shown"] > 0 for i in images
    )
    assert len(tables) == html.count("<table>") + html.count("<table ") >= 5
    assert all(t["rows"] >= 2 and t["height"] > 0 for t in tables)
    assert page.measured["glance"] <= page.measured["screen"]  # the headline is on the first screen
    pixels = plt.imread(screenshot)
    assert (
        pixels.shape[:2] == (800, 1280)
        and np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0).shape[0] > 50
    )
