"""resume=true: a finished run of the same configuration is skipped and never overwritten; a
failed one runs again. Without it, a folder that holds a finished run is refused, not overwritten."""

from __future__ import annotations

import json

import pytest

from gradinv.errors import ConfigError
from tests.helpers import run_config


def test_resume_skips_only_a_finished_run_of_the_same_configuration(tmp_path):
    overrides = ["model.width=32", "attack.optim.iterations=2", "resume=true"]
    first = run_config(overrides, tmp_path)
    stored = (tmp_path / "results.json").read_text()
    again = run_config(overrides, tmp_path)
    assert (tmp_path / "results.json").read_text() == stored
    assert again["metrics"] == json.loads(stored)["metrics"] == first["metrics"]
    with pytest.raises(
        ConfigError, match=r"another configuration .*attack.optim.iterations: 2 -> 50"
    ):
        run_config([*overrides, "attack.optim.iterations=50"], tmp_path)
    assert (tmp_path / "results.json").read_text() == stored  # never overwritten


def test_resume_reruns_a_failed_run(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"status": "failed"}))
    outcome = run_config(["model.width=32", "attack.optim.iterations=2", "resume=true"], tmp_path)
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "ok"
    assert outcome["timing"]["iterations"] == 2


def test_a_rerun_without_resume_keeps_the_finished_run(tmp_path):
    overrides = ["model.width=32", "attack.optim.iterations=2"]
    run_config(overrides, tmp_path)
    stored = (tmp_path / "results.json").read_text()
    with pytest.raises(
        ConfigError,
        match=(
            rf"^{tmp_path} already holds a finished run \(its results.json says ok\), which is kept: add "
            r"resume=true to skip finished runs, or point hydra.run.dir \(in a sweep: hydra.sweep.dir\) at a new folder.$"
        ),
    ):
        run_config([*overrides, "attack.optim.iterations=3"], tmp_path)
    assert (tmp_path / "results.json").read_text() == stored
