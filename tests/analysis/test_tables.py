"""multirun_analysis on a fabricated sweep: the tables' values and every file its command writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt

from multirun_analysis.__main__ import main as analyse
from multirun_analysis.loading import read_folders
from multirun_analysis.tables import summarize, text_table


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
