"""Loggers: W&B offline runs with their per-image table and the keys the W&B report reads, sweep
jobs grouped by their sweep folder, and every optimizer step's loss."""

from __future__ import annotations

import json
from pathlib import Path

import wandb
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import WandbLogger
from omegaconf import read_write

from gradinv.schema import (
    IMAGE_METRICS,
    WANDB_CONFIG,
    WANDB_CURVES,
    WANDB_METRICS_PREFIX,
    WANDB_PICTURE,
    WANDB_STEP,
    WANDB_TABLE,
)
from gradinv.tracking.wandb_logger import sweep_group
from tests.helpers import compose_config, run_config


def test_sweep_jobs_share_the_sweep_folder_as_group(tmp_path: Path) -> None:
    cfg = compose_config([], tmp_path)
    for mode, group in ((RunMode.MULTIRUN, "multirun/2026-01-01/10-00-00"), (RunMode.RUN, None)):
        with read_write(cfg.hydra):
            cfg.hydra.mode = mode
            cfg.hydra.sweep.dir = "multirun/2026-01-01/10-00-00"
        HydraConfig.instance().set_config(cfg)
        assert sweep_group() == group


def test_wandb_offline_run_holds_the_per_image_table_and_every_key_the_report_reads(
    tmp_path: Path, monkeypatch
):
    """The run folder holds the offline run and its table; the table's images travel in its
    artifact, staged under WANDB_DATA_DIR until `wandb sync`. The run logs the config keys the
    W&B report filters and groups by, the curves and their step, the final metrics and the picture
    (multirun_analysis.wandb_report reads them from gradinv.schema)."""
    staging = tmp_path / "wandb-data"
    monkeypatch.setenv("WANDB_DATA_DIR", str(staging))
    config, history = [], set()
    log, hyperparams = wandb.Run.log, WandbLogger.log_hyperparams
    monkeypatch.setattr(
        wandb.Run,
        "log",
        lambda run, data, *a, **k: (history.update(data), log(run, data, *a, **k))[1],
    )
    monkeypatch.setattr(
        WandbLogger,
        "log_hyperparams",
        lambda logger, params, *a: (config.extend(params), hyperparams(logger, params, *a))[1],
    )
    run_config(
        [
            "logger=wandb",
            "attack.optim.iterations=3",
            "attack.log_psnr_every=1",
            "dataset.batch_size=2",
        ],
        tmp_path,
    )
    assert config == list(WANDB_CONFIG)
    finals = {
        WANDB_METRICS_PREFIX + metric for metric in IMAGE_METRICS if metric != "lpips"
    }  # no weights offline
    assert {*WANDB_CURVES, WANDB_STEP, WANDB_PICTURE, WANDB_TABLE, *finals} <= history
    tables = list(tmp_path.glob("wandb/offline-run-*/files/media/table/per_image_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"] == [
        "victim",
        "index",
        "label",
        "predicted_label",
        "mse",
        "psnr",
        "ssim",
        "lpips",
        "original",
        "reconstruction",
    ]
    assert len(table["data"]) == 2
    results = json.loads((tmp_path / "results.json").read_text())
    assert [row[5] for row in table["data"]] == [row["psnr"] for row in results["per_image"]]
    staged = [path for path in staging.rglob("*") if path.is_file()]
    artifact = next(json.loads(p.read_text()) for p in staged if p.read_bytes()[:1] == b"{")
    types = artifact["column_types"]["params"]["type_map"]
    for column in ("original", "reconstruction"):
        assert "image-file" in json.dumps(types[column])
    assert sum(p.read_bytes()[:4] == b"\x89PNG" for p in staged) == 4


def test_the_logger_gets_every_steps_loss(tmp_path):
    run_config(["model.width=32", "attack.optim.iterations=12", "logger=csv"], tmp_path)
    rows = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    column, step = header.index("attack/loss"), header.index("step")
    logged = [int(r.split(",")[step]) for r in rows[1:] if r.split(",")[column]]
    assert logged == list(range(12))
