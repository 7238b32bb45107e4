"""A whole run from the command line: records, picture, W&B offline, and a sweep."""

import json
import subprocess
import sys

from gradinv.schema import IMAGE_METRICS
from tests.helpers import REPO_ROOT

QUIET = ["trainer.enable_progress_bar=false"]


def _main(*args, cwd=REPO_ROOT):
    return subprocess.run(
        [sys.executable, "gradinv/main.py", *args, *QUIET],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_default_run_writes_results_picture_and_offline_wandb(tmp_path):
    done = _main("attack.optim.iterations=3", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "ok"
    assert results["choices"] == {
        "dataset": "mnist",
        "model": "mlp",
        "threat": "default",
        "client": "fedsgd",
        "defense": "none",
        "attack": "ig",
        "experiment": None,
        "dropout": 0.0,
        "seed": 0,
    }
    assert set(results["metrics"]) >= set(IMAGE_METRICS) and set(results["per_image"][0]) >= set(
        IMAGE_METRICS
    )
    assert all(results["metrics"][m] is not None for m in IMAGE_METRICS if m != "lpips")
    assert results["metrics"]["lpips"] is None and "lpips" in results["unavailable"]
    timing = results["timing"]
    assert timing["iterations"] == 3 and timing["optimizer_steps"] == 3
    assert timing["seconds_per_iteration"] * 3 <= timing["attack_seconds"] + 1e-9
    assert len(results["per_image"]) == 1
    assert (tmp_path / "reconstruction.png").is_file()
    assert list((tmp_path / "wandb").glob("offline-run-*"))
    said = done.stdout + done.stderr
    assert said.count(f"run folder: {tmp_path}\n") == 1
    assert "Downloading" not in said  # torchvision's line, shown with verbose=true only
    assert "LPIPS is recorded as null" in said and "metrics.lpips_download=false" in said


def test_sweep_runs_every_cell_into_its_own_folder(tmp_path):
    done = _main(
        "-m",
        "attack=ig",
        "model.dropout=0,0.25",
        "attack.optim.iterations=2",
        "logger=csv",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert done.returncode == 0, done.stderr
    cells = sorted(tmp_path.glob("*/results.json"))
    assert len(cells) == 2
    dropouts = sorted(json.loads(p.read_text())["choices"]["dropout"] for p in cells)
    assert dropouts == [0.0, 0.25]
    assert all(json.loads(p.read_text())["status"] == "ok" for p in cells)
