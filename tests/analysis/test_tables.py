"""Experiment tracking: W&B offline records, multirun_analysis tables, and a QUICK make target."""

from __future__ import annotations

import json
import os
import math
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from matplotlib import pyplot as plt
from omegaconf import read_write

from multirun_analysis.__main__ import main as analyse
from multirun_analysis.loading import read_folders
from multirun_analysis.tables import summarize, text_table
from multirun_analysis.wandb_source import to_record
from tests.conftest import REPO
from tests.helpers import compose_config, run_config
from gradinv.tracking.wandb_logger import sweep_group


def _image(psnr, ssim, lpips="absent"):
    row = {"victim": 0, "index": 1, "label": 3, "predicted_label": 3, "mse": 0.01, "psnr": psnr, "ssim": ssim}
    if lpips != "absent":
        row["lpips"] = lpips
    return row


def _write_run(folder: Path, status: str, attack: str, p: float, seed: int, images: list, **extra):
    folder.mkdir(parents=True)
    record = {
        "status": status,
        "choices": {"dataset": "mnist", "model": "mlp", "defense": "none", "attack": attack,
                    "dropout": p, "seed": seed},
        "config": {"attack": {"iterations": 7}},
        "metrics": {"psnr": float(np.mean([i["psnr"] for i in images])) if images else None,
                    "lpips": None, "mask_accuracy": 0.75},
        "per_image": images,
        "timing": {"total_seconds": 1.5},
        **extra,
    }
    (folder / "results.json").write_text(json.dumps(record))
    plt.imsave(folder / "reconstruction.png", np.full((8, 4), 0.5), cmap="gray")


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Fabricated sweep: 4 ok runs, one failed, one still running, one unreadable file.

    IG at p=0 has PSNR 10, 14 (seed 0) and 12 (seed 1): mean 12, std 2; LPIPS only once (0.5),
    null once and absent once. DIA exists only at p=0.5 and has no LPIPS at all.
    """
    root = tmp_path / "sweep"
    _write_run(root / "0", "ok", "ig", 0.0, 0, [_image(10.0, 0.2, 0.5), _image(14.0, 0.4, None)])
    _write_run(root / "1", "ok", "ig", 0.0, 1, [_image(12.0, 0.3)])
    _write_run(root / "2", "ok", "ig", 0.5, 0, [_image(20.0, 0.9, 0.1)])
    curve = [{"fit": 0, "step": s, "loss": 1 / s, "psnr": s / 4, "mask_accuracy": 0.6 + s / 1000}
             for s in (50, 100)]
    _write_run(root / "3", "ok", "dia", 0.5, 0, [_image(25.0, 0.95, None)], curve=curve)
    _write_run(root / "4", "failed", "dia", 0.0, 0, [], error="RuntimeError: boom")
    _write_run(root / "5", "running", "dia", 0.0, 1, [])
    (root / "6").mkdir()
    (root / "6" / "results.json").write_text('{"status": "ok", "choi')
    return root


def test_analysis_tables_have_the_expected_values(sweep: Path) -> None:
    collection = read_folders([sweep])
    assert len(collection.runs) == 4 and len(collection.images) == 5
    assert [(Path(run).name, reason.split(" (")[0]) for run, reason in collection.skipped] == [
        ("6", "unreadable results.json"),
        ("4", "status 'failed': RuntimeError: boom"),
        ("5", "status 'running'"),
    ]
    assert math.isnan(collection.runs.set_index("run").loc[str(sweep / "0"), "lpips"])
    assert collection.runs["mask_accuracy"].tolist() == [0.75] * 4  # metrics read generically

    summary = summarize(collection.images).set_index(["attack", "dropout", "metric"])
    ig0 = summary.loc[("ig", 0.0)]
    assert ig0.loc["psnr", ["mean", "std", "n", "total"]].tolist() == [12.0, 2.0, 3, 3]
    assert ig0.loc["ssim", "mean"] == pytest.approx(0.3) and ig0.loc["ssim", "std"] == pytest.approx(0.1)
    assert ig0.loc["lpips", "mean"] == 0.5 and ig0.loc["lpips", ["n", "total"]].tolist() == [1, 3]

    psnr = text_table(summarize(collection.images), "psnr").reset_index()
    assert psnr.to_dict("records") == [
        {"dataset": "mnist", "model": "mlp", "defense": "none", "attack": "dia", "p=0": "–", "p=0.5": "25.00"},
        {"dataset": "mnist", "model": "mlp", "defense": "none", "attack": "ig", "p=0": "12.00 ± 2.00", "p=0.5": "20.00"},
    ]
    lpips = text_table(summarize(collection.images), "lpips")
    assert lpips["p=0"].tolist() == ["–", "0.500 (1/3)"]
    assert lpips["p=0.5"].tolist() == ["–", "0.100"]


def test_cli_writes_csvs_tables_plots_and_gallery(sweep: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert analyse([str(sweep), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 of 7 runs ok, 3 left out" in printed and "RuntimeError: boom" in printed
    expected = {"runs.csv", "images.csv", "summary.csv", "plot_psnr.png", "plot_ssim.png",
                "plot_lpips.png", "gallery_mnist.png", "curves.csv", "curve_psnr.png",
                "curve_mask_accuracy.png", "curve_loss.png"}
    expected |= {f"table_{m}.{s}" for m in ("psnr", "ssim", "lpips") for s in ("md", "tex", "csv")}
    assert {p.name for p in out.iterdir()} == expected
    assert "| mnist | mlp | none | ig | 12.00 ± 2.00 | 20.00 |" in (out / "table_psnr.md").read_text()
    assert r"12.00 $\pm$ 2.00 & 20.00 \\" in (out / "table_psnr.tex").read_text()
    numeric = pd.read_csv(out / "table_psnr.csv")
    assert numeric.loc[numeric["attack"] == "ig", "p=0 std"].item() == 2.0
    assert pd.read_csv(out / "images.csv").shape[0] == 5
    curves = pd.read_csv(out / "curves.csv")
    assert curves[["attack", "step", "psnr", "mask_accuracy"]].values.tolist() == [
        ["dia", 50, 12.5, 0.65], ["dia", 100, 25.0, 0.7]
    ]


def test_wandb_record_is_read_like_results_json(tmp_path: Path) -> None:
    table = {"columns": ["victim", "psnr", "lpips", "original", "reconstruction"],
             "data": [[0, 11.0, None, "Image", "Image"]]}
    (tmp_path / "t.json").write_text(json.dumps(table))
    run = SimpleNamespace(
        path=["me", "gradinv", "abc"], state="finished",
        config={"dataset": "mnist", "model": "mlp", "defense": "none", "attack": "ig",
                "dropout": 0.25, "seed": 0, "iterations": 5},
        summary={"final/psnr": 11.0, "timing/total_seconds": 2.0,
                 "per_image": {"_type": "table-file", "path": "media/table/t.json"}},
        file=lambda path: SimpleNamespace(download=lambda root, replace: open(tmp_path / "t.json")),
    )
    record = {**to_record(run, tmp_path), "run": "r"}
    assert record["status"] == "ok" and record["metrics"] == {"psnr": 11.0}
    assert record["per_image"] == [{"victim": 0, "psnr": 11.0, "lpips": None}]
    assert to_record(SimpleNamespace(**{**vars(run), "state": "crashed"}), tmp_path)["status"] == "crashed"


def test_sweep_jobs_share_the_sweep_folder_as_group(tmp_path: Path) -> None:
    cfg = compose_config([], tmp_path)
    for mode, group in ((RunMode.MULTIRUN, "multirun/2026-01-01/10-00-00"), (RunMode.RUN, None)):
        with read_write(cfg.hydra):
            cfg.hydra.mode = mode
            cfg.hydra.sweep.dir = "multirun/2026-01-01/10-00-00"
        HydraConfig.instance().set_config(cfg)
        assert sweep_group() == group


def test_wandb_offline_run_holds_the_per_image_table(tmp_path: Path, monkeypatch) -> None:
    """The run folder holds the offline run and its table; the table's images travel in its
    artifact, staged under WANDB_DATA_DIR until `wandb sync`."""
    staging = tmp_path / "wandb-data"
    monkeypatch.setenv("WANDB_DATA_DIR", str(staging))
    run_config(["logger=wandb", "attack.iterations=3", "dataset.batch_size=2"], tmp_path)
    tables = list(tmp_path.glob("wandb/offline-run-*/files/media/table/per_image_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"] == ["victim", "index", "label", "predicted_label", "mse", "psnr",
                                "ssim", "lpips", "original", "reconstruction"]
    assert len(table["data"]) == 2
    results = json.loads((tmp_path / "results.json").read_text())
    assert [row[5] for row in table["data"]] == [row["psnr"] for row in results["per_image"]]
    staged = [path for path in staging.rglob("*") if path.is_file()]
    artifact = next(json.loads(p.read_text()) for p in staged if p.read_bytes()[:1] == b"{")
    types = artifact["column_types"]["params"]["type_map"]
    for column in ("original", "reconstruction"):
        assert "image-file" in json.dumps(types[column])
    assert sum(p.read_bytes()[:4] == b"\x89PNG" for p in staged) == 4


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


def test_results_json_is_readable_by_colleagues(tmp_path: Path) -> None:
    """mkstemp creates 0600 files; results.json gets the mode any new file gets (0644 here)."""
    from gradinv.schema import OK, RunRecord
    from gradinv.tracking.results import ResultsFile

    previous = os.umask(0o022)
    try:
        ResultsFile(tmp_path, RunRecord()).write(status=OK)
    finally:
        os.umask(previous)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o644


def test_reconstruction_figure_is_readable_and_the_tensors_are_kept(tmp_path: Path) -> None:
    from PIL import Image

    outcome = run_config(["attack.iterations=3", "dataset.num_victims=2"], tmp_path)
    width, height = Image.open(tmp_path / "reconstruction.png").size
    assert width >= 2 * 96 and height >= 2 * 96  # two 28 px digits, each scaled to >= 96 px
    saved = torch.load(tmp_path / "reconstruction.pt", weights_only=True)
    assert saved["originals"].shape == saved["reconstructions"].shape == (2, 1, 28, 28)
    assert outcome["per_image"][0]["psnr"] > 0
