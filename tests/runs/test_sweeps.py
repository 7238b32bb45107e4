"""Sweeps: a bad cell fails alone with its sentence, the summary counts exactly this sweep's
cells, folders are named by cell, resume finds them, a grid may mix R-GAP with IG, a killed
sweep says so, and the joblib and submitit launchers run the cells."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

QUIET = ["logger=none", "trainer.enable_progress_bar=false", "metrics.lpips_download=false"]
CELL = [*QUIET, "model.width=16", "attack.optim.iterations=2"]


def command(folder: Path, *overrides: str, cell: list[str] = CELL) -> list[str]:
    return [sys.executable, "gradinv/main.py", "-m", *cell, *overrides, f"hydra.sweep.dir={folder}"]


def sweep(folder: Path, *overrides: str, cell: list[str] = CELL) -> subprocess.CompletedProcess:
    arguments = command(folder, *overrides, cell=cell)
    return subprocess.run(arguments, cwd=REPO, capture_output=True, text=True, timeout=300)


def statuses(folder: Path) -> dict[str, str]:
    """Dropout p of each cell folder -> its status."""
    found = {}
    for path in folder.glob("*/results.json"):
        record = json.loads(path.read_text())
        found[path.parent.name.split("model.dropout=")[1].split(",")[0]] = record["status"]
    return found


def test_a_bad_cell_fails_alone_and_the_sweep_exits_nonzero_with_a_summary(tmp_path):
    done = sweep(tmp_path, "model.dropout=0,1.0,0.1")
    assert done.returncode == 1
    assert statuses(tmp_path) == {"0": "ok", "1.0": "failed", "0.1": "ok"}
    assert "gradinv: error: model.dropout must be a number in [0, 1), got 1.0." in done.stderr
    assert f"gradinv: sweep {tmp_path}: 2 ok, 1 not ok" in done.stderr
    failed = next(tmp_path.glob("*model.dropout=1.0*/results.json"))
    assert "model.dropout must be a number" in json.loads(failed.read_text())["error"]
    # where the sweep stands, with the per-cell progress bar off
    assert (
        "gradinv: cell 1 of 3 (attack.optim.iterations=2,metrics.lpips_download=False,model.dropout=0,"
        in done.stderr
    )
    started = r"gradinv: cell 3 of 3 \(.*\): \d:\d\d:\d\d elapsed, about \d:\d\d:\d\d left"
    assert re.search(started, done.stderr)


def test_the_summary_counts_the_cells_of_this_sweep_only(tmp_path):
    """A refused cell is not ok although its folder holds an ok run; a failed run left by an
    earlier sweep is listed apart and does not fail a later good sweep."""
    earlier = {"cell0": {"status": "ok", "config": {"seed": 7}}, "old": {"status": "failed"}}
    for folder, record in earlier.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "results.json").write_text(json.dumps(record))
    by_number = (
        "hydra.sweep.subdir=cell${hydra.job.num}"  # cell0 is the ok run of another configuration
    )
    refused = sweep(tmp_path, "model.dropout=0,0.25", "resume=true", by_number)
    assert refused.returncode == 1
    assert f"gradinv: sweep {tmp_path}: 1 ok, 1 not ok\n" in refused.stderr
    assert (
        "gradinv:   failed: cell0: ConfigError: resume=true found a finished run of another"
        in refused.stderr
    )
    assert (
        f"gradinv:   not counted, left in {tmp_path} by earlier sweeps: 1 failed\n"
        in refused.stderr
    )
    good = sweep(tmp_path, "model.dropout=0.5")
    assert good.returncode == 0, good.stderr[-2000:]
    assert f"gradinv: sweep {tmp_path}: 1 ok, 0 not ok\n" in good.stderr
    assert (
        f"gradinv:   not counted, left in {tmp_path} by earlier sweeps: 1 failed, 2 ok\n"
        in good.stderr
    )
    assert not (tmp_path / ".sweeps").exists()  # each sweep's ledger of its cells is removed


def test_a_reordered_and_extended_grid_resumes_only_the_cells_it_ran(tmp_path):
    assert sweep(tmp_path, "model.dropout=0,0.1,0.25").returncode == 0
    before = {p: p.read_text() for p in tmp_path.glob("*/results.json")}
    done = sweep(tmp_path, "model.dropout=0.5,0.1", "resume=true")
    assert done.returncode == 0, done.stderr[-2000:]
    assert statuses(tmp_path) == {"0": "ok", "0.1": "ok", "0.25": "ok", "0.5": "ok"}
    assert all(path.read_text() == text for path, text in before.items())  # 0.1 was skipped
    assert (
        done.stderr.count("already finished; skipped")
        + done.stdout.count("already finished; skipped")
        == 1
    )


def test_wiig_alone_gets_the_masks_in_a_sweep_over_attacks(tmp_path):
    assert sweep(tmp_path, "attack=ig,dia,wiig", "model.dropout=0.25").returncode == 0
    records = [json.loads(path.read_text()) for path in tmp_path.glob("*/results.json")]
    assert sorted(record["choices"]["attack"] for record in records) == ["dia", "ig", "wiig"]
    for record in records:
        wiig = record["choices"]["attack"] == "wiig"
        assert record["config"]["threat"]["masks"] is wiig
        assert record["config"]["client"]["share_masks"] is wiig
        assert record["knowledge"].get("masks_known", False) is wiig


@pytest.mark.slow
def test_joblib_sweep_runs_two_parallel_jobs(tmp_path):
    command = [
        sys.executable,
        "gradinv/main.py",
        "-m",
        "hydra/launcher=joblib_local",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "model.width=32",
        "attack.optim.iterations=2",
        "seed=0,1",
        f"hydra.sweep.dir={tmp_path}",
    ]
    done = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
    assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/results.json"))]
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert [r["choices"]["seed"] for r in results] == [0, 1]


def test_a_grid_mixing_rgap_and_ig_runs_both_and_rgap_ignores_the_iterations(tmp_path):
    small_fcn3 = [*QUIET, "model=fcn3", "model.widths=[64,32]"]
    done = sweep(tmp_path, "attack=rgap,ig", "attack.optim.iterations=2", cell=small_fcn3)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(path.read_text()) for path in tmp_path.glob("*/results.json")]
    records = {record["choices"]["attack"]: record for record in records}
    assert records["ig"]["status"] == records["rgap"]["status"] == "ok"
    assert (
        records["ig"]["config"]["attack"]["optim"]["iterations"]
        == records["ig"]["timing"]["iterations"]
        == 2
    )
    assert "optim" not in records["rgap"]["config"]["attack"]  # recorded as what ran
    assert records["rgap"]["timing"]["iterations"] is None
    log = next(tmp_path.glob("*attack=rgap*/gradinv.log")).read_text()
    assert (
        "attack=rgap does not use attack.optim.iterations=2 (set for the other attacks of a sweep): ignored."
        in log
    )


def test_sigterm_ends_a_sweep_with_status_143_its_summary_so_far_and_the_resume_hint(tmp_path):
    endless = ["attack.optim.stop_patience=null", "attack.optim.stop_loss=null"]
    job = subprocess.Popen(
        command(tmp_path, "attack.optim.iterations=2,100000", *endless),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    long_cell = None
    for _ in range(240):  # until the long cell is under way
        long_cell = next(tmp_path.glob("*attack.optim.iterations=100000*/results.json"), None)
        if long_cell is not None and json.loads(long_cell.read_text())["status"] == "running":
            break
        time.sleep(0.5)
    time.sleep(2)
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == 128 + signal.SIGTERM == 143
    assert (
        "gradinv: sweep interrupted by SIGTERM; the cell that was running is recorded failed."
        in stderr
    )
    assert f"gradinv: sweep {tmp_path} so far: 1 ok, 1 not ok\n" in stderr
    hint = (
        f"gradinv: rerun the same command with resume=true hydra.sweep.dir={tmp_path} to pick it up"
    )
    assert hint in stderr
    record = json.loads(long_cell.read_text())
    assert (record["status"], record["error"]) == (
        "failed",
        "interrupted by SIGTERM before it finished",
    )


@pytest.mark.slow
def test_submitit_local_sweep_runs_two_cells_as_jobs(tmp_path):
    """The cluster path as README's SLURM example runs it, through submitit's local executor:
    the same pickling, job folders and result collection as on SLURM, as local processes."""
    example = readme_slurm_example()
    assert "hydra/launcher=slurm_gpu" in example and "hydra.launcher.partition=gpu" in example
    local = {
        "hydra/launcher=slurm_gpu": "hydra/launcher=submitit_local",
        "hydra.launcher.partition=gpu": None,
        "trainer.accelerator=gpu": "trainer.accelerator=cpu",
        "attack.optim.iterations=24000": "attack.optim.iterations=2",
    }
    overrides = [local.get(word, word) for word in example[example.index("-m") + 1 :]]
    done = sweep(tmp_path, *filter(None, overrides), cell=[*QUIET, "model.width=16"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"gradinv: sweep {tmp_path}: 2 ok, 0 not ok" in done.stderr
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/results.json"))]
    assert [(r["status"], r["choices"]["dropout"]) for r in results] == [("ok", 0.0), ("ok", 0.25)]
    assert (
        len(list((tmp_path / ".submitit").glob("*/*_result.pkl"))) == 2
    )  # collected from the jobs


def readme_slurm_example() -> list[str]:
    """The words of README's SLURM command (continuation lines joined)."""
    text = (REPO / "README.md").read_text().replace("\\\n", " ")
    return shlex.split(
        next(line for line in text.splitlines() if "main.py -m hydra/launcher=slurm_gpu" in line)
    )
