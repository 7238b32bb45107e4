"""make targets: a paper table's QUICK twin runs its sweep and its analysis end to end."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_table_dia_quick_twin_runs_end_to_end(tmp_path: Path) -> None:
    """`make table-dia QUICK=1` narrowed to a CPU-second twin: IG and DIA on the MLP, two p."""
    sweep = tmp_path / "sweep"
    command = [
        "make", "-s", "-o", ".venv/.installed", f"PYTHON={sys.executable}", "table-dia", "QUICK=1",
        "DIA_ATTACKS=ig,dia", "DIA_QUICK_BUDGETS=mlp:3", "DIA_QUICK_DATASETS=mnist",
        "DIA_QUICK_P=0,0.25",
        f"SWEEP={sweep}", "ARGS=logger=none",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 of 4 runs ok, 0 left out" in done.stdout
    rows = (sweep / "analysis" / "table_psnr.md").read_text().splitlines()
    assert rows[2] == "| dataset | model | defense | attack | p=0 | p=0.25 |"
    assert rows[4].startswith("| mnist | mlp | none | dia | ")
    assert rows[5].startswith("| mnist | mlp | none | ig | ")
    assert (sweep / "analysis" / "plot_psnr.png").is_file()
    assert (sweep / "analysis" / "gallery_mnist.png").is_file()
