"""Runs read back from W&B become the same records as results.json folders."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from multirun_analysis.wandb_source import to_record


def test_wandb_record_is_read_like_results_json(tmp_path: Path) -> None:
    table = {
        "columns": ["victim", "psnr", "lpips", "original", "reconstruction"],
        "data": [[0, 11.0, None, "Image", "Image"]],
    }
    (tmp_path / "t.json").write_text(json.dumps(table))
    run = SimpleNamespace(
        path=["me", "gradinv", "abc"],
        state="finished",
        config={
            "dataset": "mnist",
            "model": "mlp",
            "defense": "none",
            "attack": "ig",
            "dropout": 0.25,
            "seed": 0,
            "iterations": 5,
        },
        summary={
            "final/psnr": 11.0,
            "timing/total_seconds": 2.0,
            "per_image": {"_type": "table-file", "path": "media/table/t.json"},
        },
        file=lambda path: SimpleNamespace(download=lambda root, replace: open(tmp_path / "t.json")),
    )
    record = {**to_record(run, tmp_path), "run": "r"}
    assert record["status"] == "ok" and record["metrics"] == {"psnr": 11.0}
    assert record["per_image"] == [{"victim": 0, "psnr": 11.0, "lpips": None}]
    assert (
        to_record(SimpleNamespace(**{**vars(run), "state": "crashed"}), tmp_path)["status"]
        == "crashed"
    )
