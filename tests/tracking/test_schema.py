"""The results schema: torch-free for analysis, records that round-trip, metric names that say
what they measure."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields

import pytest

from gradinv.attacks.objectives import OBJECTIVES
from gradinv.attacks.rgap import RGAP
from gradinv.schema import IMAGE_METRICS, LABELS, CurvePoint, ImageScore, RunRecord, Timing
from gradinv.tracking.results import ResultsFile, recording
from tests.attacks.helpers import make_attack
from tests.conftest import REPO


def test_analysis_and_schema_import_no_torch() -> None:
    modules = [
        "gradinv.schema",
        "multirun_analysis",
        "multirun_analysis.__main__",
        "multirun_analysis.loading",
        "multirun_analysis.tables",
        "multirun_analysis.plots",
        "multirun_analysis.gallery",
        "multirun_analysis.report",
        "multirun_analysis.wandb_source",
        "multirun_analysis.settings",
        "multirun_analysis.overview",
        "multirun_analysis.provenance",
        "multirun_analysis.html_report",
        "multirun_analysis.wandb_report",
        "gradinv.tracking.wandb_server",
    ]
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nassert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_run_record_round_trips_through_json(tmp_path) -> None:
    row = ImageScore(
        victim=0, index=7, label=3, predicted_label=5, mse=0.1, psnr=10.0, ssim=0.5, lpips=None
    )
    record = RunRecord(
        status="ok",
        choices={"attack": "ig"},
        config={"seed": 0},
        knowledge={"labels_known": True},
        privacy={"epsilon": 1.0, "delta": 1e-5},
        attack_report={},
        metrics={"psnr": 10.0, "gradient_cosine_distance": 0.2},
        unavailable={},
        per_image=[row],
        timing=Timing(2.0, 1.0, 5, 5, 0.2),
        curve=[CurvePoint(fit=0, step=5, loss=0.3, psnr=9.0)],
        picture="reconstruction.png",
        device="cpu",
    )
    results = ResultsFile(tmp_path, record)
    results.write()
    written = json.loads(results.path.read_text())
    assert RunRecord.from_dict(written) == record
    assert list(written) == [
        "status",
        "choices",
        "config",
        *[f.name for f in fields(RunRecord)][4:],
    ]
    assert written["per_image"][0]["lpips"] is None  # an unavailable metric stays null
    assert written["curve"] == [
        {"fit": 0, "step": 5, "loss": 0.3, "psnr": 9.0}
    ]  # unmeasured: absent


def test_failed_run_records_only_what_it_knew(tmp_path) -> None:
    with pytest.raises(RuntimeError):
        with recording(tmp_path, RunRecord(choices={"seed": 0}, config={})):
            raise RuntimeError("boom")
    written = json.loads((tmp_path / "results.json").read_text())
    assert written == {
        "status": "failed",
        "choices": {"seed": 0},
        "config": {},
        "error": "RuntimeError: boom",
    }


def test_image_score_holds_every_image_metric_in_order() -> None:
    assert [f.name for f in fields(ImageScore)] == [
        "victim",
        "index",
        "label",
        "predicted_label",
        *IMAGE_METRICS,
    ]


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_each_gradient_distance_has_its_own_labelled_metric(objective: str) -> None:
    assert make_attack(objective=objective).gradient_metric in LABELS


def test_every_distance_gets_its_own_column() -> None:
    assert RGAP.gradient_metric == "gradient_relative_squared_distance"
    names = [make_attack(objective=o).gradient_metric for o in sorted(OBJECTIVES)] + [
        RGAP.gradient_metric
    ]
    assert len(set(names)) == len(names) and set(names) <= set(LABELS)
