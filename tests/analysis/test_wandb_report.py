"""The W&B report of a real sweep, built offline: its panels, their metrics and groupings, the
specification saved when W&B cannot be reached, its address when it can, and the checks of
``--wandb-report`` before anything is written."""

from __future__ import annotations

import io
import json
import shutil
import socket
from contextlib import redirect_stdout
from types import SimpleNamespace

import pytest
import wandb_workspaces.reports.v2 as wr
from wandb_workspaces.reports.v2 import interface

from gradinv.defenses.dpsgd import DPSGD
from gradinv.schema import IMAGE_METRICS, WANDB_METRICS_PREFIX, WANDB_PRIVACY
from multirun_analysis import wandb_report
from multirun_analysis.__main__ import main as analyse
from multirun_analysis.wandb_report import WANDB_NAMES, from_spec, to_spec
from tests.analysis.conftest import Sweep

pytestmark = pytest.mark.slow  # the real sweep runs once, ~20 s


def run_analysis(arguments: list[str]) -> tuple[int, str]:
    printed = io.StringIO()
    with redirect_stdout(printed):
        status = analyse(arguments)
    return status, printed.getvalue()


def test_the_report_shows_the_sweeps_group_by_the_keys_its_runs_logged(
    real_sweep: Sweep, tmp_path, monkeypatch
) -> None:
    """Offline (WANDB_MODE=offline in tests), the command says why in one sentence and saves the
    specification; the report built from it holds, per dataset x model, bars per attack x p and
    the curves, then every run and the reconstructions; nothing reaches the network."""
    monkeypatch.setattr(socket.socket, "connect", lambda *a: pytest.fail("the network was reached"))
    status, printed = run_analysis(
        [str(real_sweep.folder), "--out", str(tmp_path), "--wandb-report", "me/gradinv"]
    )
    assert status == 0
    spec = tmp_path / "wandb_report.json"
    sync = f"wandb sync {real_sweep.folder}/*/wandb/offline-run-*"
    publish = f"python -m multirun_analysis.wandb_report {spec}"
    assert printed.splitlines()[-1] == (
        f"W&B report not published: W&B is set offline (WANDB_MODE); its specification is in {spec}, "
        f"published later by `{sync} && {publish}`"
    )
    saved = json.loads(spec.read_text())
    assert saved["publish"] == [sync, publish]
    report = from_spec(saved["report"])
    assert to_spec(report) == saved["report"]
    assert (report.entity, report.project) == ("me", "gradinv")
    assert [type(b).__name__ for b in report.blocks] == [
        "MarkdownBlock",
        "H2",
        "H3",
        "PanelGrid",
        "H2",
        "PanelGrid",
        "H2",
        "PanelGrid",
    ]
    assert (
        f"python gradinv/main.py -m 'hydra.sweep.dir={real_sweep.given}' attack=ig,dia"
        in report.blocks[0].text
    )

    cell, every, pictures = report.blocks[3], report.blocks[5], report.blocks[7]
    group = f"Metric('Group') in [{real_sweep.group!r}] and Metric('State') == 'finished'"
    assert [(r.filters, r.groupby) for r in cell.runsets] == [
        (
            f"{group} and Config('dataset') == 'mnist' and Config('model') == 'mlp'",
            ["config.attack", "config.dropout"],
        )
    ]
    finals = [
        WANDB_METRICS_PREFIX + m for m in IMAGE_METRICS if m != "lpips"
    ]  # no LPIPS offline: no bar
    assert finals[:3] == ["final/mse", "final/psnr", "final/ssim"]
    assert [(type(p).__name__, getattr(p, "metrics", None) or p.y) for p in cell.panels] == [
        *(("BarPlot", [final]) for final in finals),
        ("LinePlot", ["attack/loss"]),
        ("LinePlot", ["attack/psnr"]),
    ]
    assert all(p.x == "trainer/global_step" for p in cell.panels[len(finals) :])
    assert {(p.groupby_aggfunc, p.groupby_rangefunc) for p in cell.panels} == {("mean", "stddev")}
    assert [(r.filters, r.groupby) for r in (*every.runsets, *pictures.runsets)] == [
        (group, [])
    ] * 2
    coordinates, comparer = every.panels
    assert [c.metric for c in coordinates.columns] == [
        *map(wr.Config, ["attack", "model", "dataset", "dropout", "defense"]),
        *map(wr.SummaryMetric, finals),
    ]
    assert isinstance(comparer, wr.RunComparer)
    media, table = pictures.panels
    assert (media.media_keys, table.table_name) == (["reconstruction"], "per_image")

    # what report.save() would send, built offline (the project's id is W&B's only question)
    monkeypatch.setattr(interface, "_get_api", lambda: None)
    monkeypatch.setattr(
        interface, "execute_graphql", lambda api, query, variables: {"project": {"internalId": "P"}}
    )
    sent = json.loads(report._to_model().spec.model_dump_json(by_alias=True, exclude_none=True))
    grid = next(block for block in sent["blocks"] if block["type"] == "panel-grid")
    assert [key["name"] for key in grid["metadata"]["runSets"][0]["grouping"]] == [
        "attack.value",
        "dropout.value",
    ]


def test_a_report_that_w_and_b_can_take_is_published_and_its_address_printed(
    real_sweep: Sweep, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(wandb_report, "unreachable", lambda: None)
    monkeypatch.setattr(
        wr.Report,
        "save",
        lambda self: SimpleNamespace(url="https://wandb.ai/me/gradinv/reports/r--1"),
    )
    status, printed = run_analysis(
        [str(real_sweep.folder), "--out", str(tmp_path), "--wandb-report", "me/gradinv"]
    )
    assert (
        status == 0
        and printed.splitlines()[-1] == "W&B report: https://wandb.ai/me/gradinv/reports/r--1"
    )
    assert not (tmp_path / "wandb_report.json").exists()


def test_wandb_report_checks_its_destination_before_anything_is_written(
    real_sweep: Sweep, tmp_path, capsys
) -> None:
    unlogged = tmp_path / "unlogged"
    run = next(
        path.parent
        for path in real_sweep.folder.glob("*/results.json")
        if "dropout=0," in path.parent.name
    )
    shutil.copytree(run, unlogged, ignore=shutil.ignore_patterns("wandb"))
    cases = [
        (
            real_sweep.folder,
            "gradinv",
            "--wandb-report needs ENTITY/PROJECT (e.g. me/gradinv), got 'gradinv'.",
        ),
        (
            real_sweep.folder,
            "me/other",
            "--wandb-report me/other: these runs logged to W&B project gradinv; give ENTITY/gradinv.",
        ),
        (
            unlogged,
            "me/gradinv",
            "--wandb-report: none of these 1 runs logged to W&B (logger=none or csv); run "
            "the sweep with logger=wandb, the default, to get a W&B report of it.",
        ),
    ]
    for folder, destination, sentence in cases:
        out = tmp_path / "out"
        assert analyse([str(folder), "--out", str(out), "--wandb-report", destination]) == 2
        assert capsys.readouterr().err == f"multirun_analysis: error: {sentence}\n"
        assert not out.exists()


def test_dp_sgd_settings_split_bars_through_the_privacy_block_its_runs_log() -> None:
    """defense.epsilon and its kin are W&B config only inside the run's ``privacy`` block."""
    privacy = DPSGD(epsilon=2.0, clip=0.5).privacy(4, 1)
    found = {
        field: privacy[key.removeprefix(f"{WANDB_PRIVACY}.")] for field, key in WANDB_NAMES.items()
    }
    assert found == {
        "defense.epsilon": 2.0,
        "defense.noise_multiplier": privacy["noise_multiplier"],
        "defense.delta": 1e-5,
        "defense.clip": 0.5,
    }
