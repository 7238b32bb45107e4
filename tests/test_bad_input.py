"""Bad input stops before any work with one sentence naming the field; failures never look ok."""

import json
import subprocess
import sys

import pytest
from hydra.errors import HydraException

from gradinv.errors import ConfigError
from tests.helpers import REPO_ROOT, compose_config, run_config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.dropout=1.0"], "model.dropout must be a number in [0, 1), got 1.0."),
        (["model.dropout=-0.1"], "model.dropout must be a number in [0, 1), got -0.1."),
        (["attack.iterations=-5"], "attack.iterations must be a positive integer, got -5."),
        (["attack.restarts=0"], "attack.restarts must be a positive integer, got 0."),
        (["model=vit_b16"], "model.patch_size must be a positive integer dividing the image size 28, got 16."),
        (["dataset=folder"], "dataset.path is required for dataset=folder: set it to a folder of images."),
        (["dataset=imagenet"], "dataset.root is required for dataset=imagenet"),
        (["dataset.batch_size=200"], "dataset.num_victims x dataset.batch_size = 200 exceeds the 128"),
        (["attack.objective=l1"], "attack.objective must be one of ['cosine', 'l2'], got 'l1'."),
        # A value of the wrong type, checked against the type hints of the group's target:
        (["model.dropout=high"], "model.dropout must be a number, got 'high'."),
        (["model.dropout=null"], "model.dropout must be a number, got None."),
        (["seed=abc"], "seed must be an integer, got 'abc'."),
        (["dataset.batch_size=2.0"], "dataset.batch_size must be an integer, got 2.0."),
        (["attack.tv_weight=abc"], "attack.tv_weight must be a number, got 'abc'."),
        (["attack.lr_decay_at=[0.5,x]"], "attack.lr_decay_at must be a list of numbers, got [0.5, 'x']."),
        (["attack.lr_decay_at=[2.0]"], "attack.lr_decay_at must list fractions of the iterations in (0, 1)"),
    ],
)
def test_bad_values_raise_one_clear_sentence(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as error:
        run_config(overrides, tmp_path)
    assert str(error.value).startswith(message)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "failed"
    assert "reconstruction.png" not in {p.name for p in tmp_path.iterdir()}


def test_unknown_group_option_names_the_group_and_the_choices(tmp_path):
    with pytest.raises(HydraException, match="Could not find 'model/transformer'"):
        compose_config(["model=transformer"], tmp_path)


def test_model_that_does_not_fit_the_data_shape(tmp_path):
    with pytest.raises(ConfigError, match=r"model.patch_size must be a positive integer dividing the image size 32, got 5"):
        run_config(["dataset=cifar10", "model=vit", "model.patch_size=5"], tmp_path)


def test_command_line_error_is_one_line_and_exits_nonzero(tmp_path):
    done = subprocess.run(
        [sys.executable, "gradinv/main.py", "model.dropout=1.5", "logger=none",
         f"hydra.run.dir={tmp_path}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert "gradinv: error: model.dropout must be a number in [0, 1), got 1.5." in done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "failed"
