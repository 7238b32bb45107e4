"""multirun_analysis on a fabricated sweep: the tables' values and every file its command writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.core.hydra_config import HydraConfig
from matplotlib import pyplot as plt
from omegaconf import OmegaConf, open_dict

from gradinv.experiment import choices
from gradinv.schema import IMAGE_METRICS
from multirun_analysis import plots
from multirun_analysis.__main__ import main as analyse
from multirun_analysis.loading import from_records, read_folders
from multirun_analysis.tables import ROWS, summarize, text_table, to_markdown
from tests.helpers import compose_config


def _image(psnr, ssim, lpips="absent"):
    row = {
        "victim": 0,
        "index": 1,
        "label": 3,
        "predicted_label": 3,
        "mse": 0.01,
        "psnr": psnr,
        "ssim": ssim,
    }
    if lpips != "absent":
        row["lpips"] = lpips
    return row


def _write_run(folder: Path, status: str, attack: str, p: float, seed: int, images: list, **extra):
    folder.mkdir(parents=True)
    record = {
        "status": status,
        "choices": {
            "dataset": "mnist",
            "model": "mlp",
            "defense": "none",
            "attack": attack,
            "dropout": p,
            "seed": seed,
        },
        "config": {"attack": {"optim": {"iterations": 7}}},
        "metrics": {
            "psnr": float(np.mean([i["psnr"] for i in images])) if images else None,
            "lpips": None,
            "mask_accuracy": 0.75,
        },
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
    curve = [
        {"fit": 0, "step": s, "loss": 1 / s, "psnr": s / 4, "mask_accuracy": 0.6 + s / 1000}
        for s in (50, 100)
    ]
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
    assert ig0.loc["ssim", "mean"] == pytest.approx(0.3) and ig0.loc[
        "ssim", "std"
    ] == pytest.approx(0.1)
    assert ig0.loc["lpips", "mean"] == 0.5 and ig0.loc["lpips", ["n", "total"]].tolist() == [1, 3]

    psnr = text_table(summarize(collection.images), "psnr").reset_index()
    assert psnr.to_dict("records") == [
        {
            "dataset": "mnist",
            "model": "mlp",
            "defense": "none",
            "attack": "dia",
            "p=0": "–",
            "p=0.5": "25.00",
        },
        {
            "dataset": "mnist",
            "model": "mlp",
            "defense": "none",
            "attack": "ig",
            "p=0": "12.00 ± 2.00",
            "p=0.5": "20.00",
        },
    ]
    lpips = text_table(summarize(collection.images), "lpips")
    assert lpips["p=0"].tolist() == ["–", "0.500 (1/3)"]
    assert lpips["p=0.5"].tolist() == ["–", "0.100"]


def test_cli_writes_csvs_tables_plots_and_gallery(sweep: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert analyse([str(sweep), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 of 7 runs ok, 3 left out" in printed and "RuntimeError: boom" in printed
    expected = {
        "runs.csv",
        "images.csv",
        "summary.csv",
        "gallery_mnist.png",
        "curves.csv",
        "curve_psnr.png",
        "curve_mask_accuracy.png",
        "curve_loss.png",
        "report.html",
    }
    # a table and a plot of every image metric, one added later too
    expected |= {f"table_{m}.{s}" for m in IMAGE_METRICS for s in ("md", "tex", "csv")}
    expected |= {f"plot_{m}.png" for m in IMAGE_METRICS}
    assert {p.name for p in out.iterdir()} == expected
    assert (
        "| mnist | mlp | none | ig | 12.00 ± 2.00 | 20.00 |" in (out / "table_psnr.md").read_text()
    )
    assert r"12.00 $\pm$ 2.00 & 20.00 \\" in (out / "table_psnr.tex").read_text()
    assert (
        "| mnist | mlp | none | ig | 0.0100 ± 0.0000 | 0.0100 |"
        in (out / "table_mse.md").read_text()
    )
    numeric = pd.read_csv(out / "table_psnr.csv")
    assert numeric.loc[numeric["attack"] == "ig", "p=0 std"].item() == 2.0
    assert pd.read_csv(out / "images.csv").shape[0] == 5
    curves = pd.read_csv(out / "curves.csv")
    assert curves[["attack", "step", "psnr", "mask_accuracy"]].values.tolist() == [
        ["dia", 50, 12.5, 0.65],
        ["dia", 100, 25.0, 0.7],
    ]


def _sweep_record(overrides: list[str], seed: int, psnrs: list[float], tmp: Path) -> dict:
    """A results.json of the config ``overrides`` composes, with choices as a run records them."""
    cfg = compose_config([*overrides, f"seed={seed}"], tmp)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    images = [_image(psnr, 0.5) | {"victim": victim} for victim, psnr in enumerate(psnrs)]
    return {
        "run": f"{' '.join(overrides)} seed={seed}",
        "status": "ok",
        "choices": choices(cfg),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "per_image": images,
    }


@pytest.fixture(scope="module")
def setting_sweep(tmp_path_factory) -> list[dict]:
    """Five settings of one (dataset, model, defense, attack) cell, two seeds of two victims each;
    the seeds differ in fields that change no result (logger, progress bar, victims)."""
    tmp = tmp_path_factory.mktemp("compose")
    settings = [
        [],
        ["client=fedavg"],
        ["client=fedavg", "client.local_steps=1"],
        ["threat.labels=false"],
        ["attack.optim.lr=0.05"],
    ]
    watch = [
        ["logger=none", "dataset.num_victims=2"],
        ["logger=csv", "trainer.enable_progress_bar=true", "dataset.victim_indices=[3,4]"],
    ]
    return [
        _sweep_record([*overrides, *watch[seed]], seed, [10.0 * i + seed, 10.0 * i + seed + 2], tmp)
        for i, overrides in enumerate(settings)
        for seed in (0, 1)
    ]


def test_every_field_that_varies_splits_the_rows(setting_sweep: list[dict]) -> None:
    collection = from_records(setting_sweep)
    assert collection.fields == ["client", "threat.labels", "attack.optim.lr", "client.local_steps"]
    summary = summarize(collection.images, rows=[*ROWS, *collection.fields])
    psnr = summary[summary["metric"] == "psnr"]
    # n: 2 seeds x 2 victims; -1: FedSGD has no local steps
    assert psnr[[*collection.fields, "mean", "n"]].fillna(-1).values.tolist() == [
        ["fedavg", True, 0.1, 1, 21.5, 4],
        ["fedavg", True, 0.1, 5, 11.5, 4],
        ["fedsgd", False, 0.1, -1, 31.5, 4],
        ["fedsgd", True, 0.05, -1, 41.5, 4],
        ["fedsgd", True, 0.1, -1, 1.5, 4],
    ]
    table = to_markdown(text_table(summary, "psnr"), "PSNR").splitlines()
    assert (
        table[2]
        == "| dataset | model | defense | attack | client | threat.labels | attack.optim.lr | client.local_steps | p=0 |"
    )
    assert table[4] == "| mnist | mlp | none | ig | fedavg | True | 0.1 | 1 | 21.50 ± 1.29 |"
    assert table[8] == "| mnist | mlp | none | ig | fedsgd | True | 0.1 | – | 1.50 ± 1.29 |"


def test_by_names_a_group_or_a_field_and_a_field_no_run_has_is_an_error(
    setting_sweep: list[dict], tmp_path: Path, capsys
) -> None:
    for i, record in enumerate(setting_sweep):
        folder = tmp_path / "sweep" / str(i)
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(record))
    out = tmp_path / "out"
    assert analyse([str(tmp_path / "sweep"), "--out", str(out), "--by", "client"]) == 0
    assert (
        "rows split by: client, threat.labels, attack.optim.lr, client.local_steps"
        in capsys.readouterr().out
    )
    assert (out / "plot_psnr_by_client.png").is_file()
    # one p: report.html's headline is by the --by field instead
    assert "by client</h2>" in (out / "report.html").read_text()
    assert (
        "<th>attack</th><th>client=fedavg</th><th>client=fedsgd</th>"
        in (out / "report.html").read_text()
    )
    assert (
        analyse([str(tmp_path / "sweep"), "--out", str(tmp_path / "typo"), "--by", "client.typo"])
        == 2
    )
    assert capsys.readouterr().err == (
        "multirun_analysis: error: --by client.typo: no run has this field; give a group (e.g. client) "
        "or a config field (e.g. dataset.batch_size); fields that vary across these runs: client, "
        "threat.labels, attack.optim.lr, client.local_steps.\n"
    )
    assert not (tmp_path / "typo").exists()


def test_a_plot_draws_what_varies_on_one_y_scale(monkeypatch, tmp_path: Path) -> None:
    """With one p (table-rgap), PSNR is drawn against the models, a panel per dataset."""
    records = [
        {
            "run": f"{dataset} {model} {attack}",
            "status": "ok",
            "per_image": [_image(psnr, 0.5)],
            "choices": {
                "dataset": dataset,
                "model": model,
                "defense": "none",
                "attack": attack,
                "dropout": 0.0,
                "seed": 0,
            },
        }
        for dataset, scale in (("cifar10", 1), ("mnist", 2))
        for attack, base in (("ig", 10.0), ("rgap", 30.0))
        for model, psnr in zip(
            ("fcn3", "cnn6", "cnn6d"), (base * scale, base * scale + 1, base * scale + 2)
        )
    ]
    drawn = []
    monkeypatch.setattr(
        plots, "_save", lambda figure, axes, used, path: drawn.append((figure, axes))
    )
    assert plots.plot_metric(summarize(from_records(records).images), "psnr", tmp_path / "p.png")
    ((figure, axes),) = drawn
    left, right = axes.flat[:2]
    assert [t.get_text() for t in left.get_xticklabels()] == ["cnn6", "cnn6d", "fcn3"]
    assert (left.get_title(), right.get_title(), figure.get_suptitle()) == (
        "cifar10",
        "mnist",
        "p=0",
    )
    assert left.get_ylim() == right.get_ylim() and right.get_ylim()[1] > 62
    assert [line.get_label() for line in left.containers] == ["ig", "rgap"]
