"""Every entry point runs at a tiny budget, so that a rename cannot break one silently.

The entry points are found, not listed by hand: every module with a ``__main__`` block; each
must have a command below. Hydra entry points run as a user types them (a process each);
the argparse ones through their ``main`` with a tiny argument set.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

QUIET = ["logger=none", "trainer.enable_progress_bar=false"]
#: Hydra entry points: the command-line arguments of a tiny run ({tmp} is the test's folder).
HYDRA = {
    "gradinv.main": [
        "gradinv/main.py",
        "attack.optim.iterations=2",
        "metrics.lpips_download=false",
        *QUIET,
        "hydra.run.dir={tmp}/run",
    ],
    "gradinv.train": ["gradinv/train.py", "train.epochs=1", *QUIET, "hydra.run.dir={tmp}/train"],
    "gradinv.rank_table": [
        "-m",
        "gradinv.rank_table",
        "model=fcn3",
        "dataset=cifar10",
        *QUIET,
        "hydra.run.dir={tmp}/rank",
    ],
}
#: argparse entry points: ``main``'s arguments, run after the Hydra ones (the analysis reads
#: the run that ``gradinv.main`` wrote).
ARGPARSE = {
    "gradinv.label_table": [
        "--datasets",
        "mnist",
        "--models",
        "mlp",
        "--batch-sizes",
        "2",
        "--seeds",
        "0",
        "--victims",
        "1",
    ],
    "gradinv.bench": ["--cells", "mlp:mnist:1", "--repeats", "1", "--out", "{tmp}/bench.json"],
    "multirun_analysis.__main__": ["{tmp}/run", "--out", "{tmp}/analysis"],
    "multirun_analysis.wandb_report": [
        "{tmp}/analysis/wandb_report.json"
    ],  # W&B is offline in tests
}


def entry_points() -> set[str]:
    """The modules of gradinv and multirun_analysis that run as a program."""
    found = set()
    for package in ("gradinv", "multirun_analysis"):
        for file in (REPO / package).rglob("*.py"):
            if 'if __name__ == "__main__":' in file.read_text():
                found.add(".".join(file.relative_to(REPO).with_suffix("").parts))
    return found


def test_every_entry_point_has_a_tiny_command() -> None:
    assert entry_points() == set(HYDRA) | set(ARGPARSE)


@pytest.mark.slow
def test_every_entry_point_runs_at_a_tiny_budget(tmp_path: Path, capsys) -> None:
    printed = {}
    for name, arguments in HYDRA.items():
        command = [sys.executable, *(a.format(tmp=tmp_path) for a in arguments)]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{name}: {done.stderr[-2000:]}"
        printed[name] = done.stdout
    for name, arguments in ARGPARSE.items():
        importlib.import_module(name).main([a.format(tmp=tmp_path) for a in arguments])
        printed[name] = "".join(capsys.readouterr())
    for run in ("run", "train"):
        assert json.loads((tmp_path / run / "results.json").read_text())["status"] == "ok"
    assert "head" in printed["gradinv.rank_table"] and "full" in printed["gradinv.rank_table"]
    assert "| mnist | mlp | 2 |" in printed["gradinv.label_table"]
    assert (tmp_path / "bench.json").is_file()  # the benchmark's numbers are not a test's business
    assert "1 of 1 runs ok" in printed["multirun_analysis.__main__"]
    assert (tmp_path / "analysis" / "table_psnr.md").is_file()
    assert (
        "the report cannot be published now: W&B is set offline"
        in printed["multirun_analysis.wandb_report"]
    )
