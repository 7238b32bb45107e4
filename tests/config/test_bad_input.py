"""Bad input stops before any work with one sentence naming the field; failures never look ok."""

import json
import subprocess
import sys

import pytest
from hydra.errors import HydraException

from gradinv.config_names import composition_message
from gradinv.errors import ConfigError
from tests.helpers import REPO_ROOT, compose_config, run_config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.dropout=1.0"], "model.dropout must be a number in [0, 1), got 1.0."),
        (["model.dropout=-0.1"], "model.dropout must be a number in [0, 1), got -0.1."),
        (
            ["attack.optim.iterations=-5"],
            "attack.optim.iterations must be a positive integer, got -5.",
        ),
        (["attack.restarts=0"], "attack.restarts must be a positive integer, got 0."),
        (
            ["attack.per_call=0"],
            "attack.per_call must be a positive integer or null (automatic), got 0.",
        ),
        (
            ["model=vit_b16"],
            "model.patch_size must be a positive integer dividing the image size 28, got 16.",
        ),
        (
            ["dataset=folder"],
            "dataset.path is required for dataset=folder: set it to a folder of images.",
        ),
        (["dataset=imagenet"], "dataset.root is required for dataset=imagenet"),
        (
            ["dataset.batch_size=200"],
            "dataset.num_victims x dataset.batch_size = 200 exceeds the 128",
        ),
        (["attack.objective=l1"], "attack.objective must be one of ['cosine', 'l2'], got 'l1'."),
        # A value of the wrong type, checked against the type hints of the group's target:
        (["model.dropout=high"], "model.dropout must be a number, got 'high'."),
        (["model.dropout=null"], "model.dropout must be a number, got None."),
        (["seed=abc"], "seed must be an integer in [0, 4294967295], got 'abc'."),
        (["seed=-1"], "seed must be an integer in [0, 4294967295], got -1."),
        # what the attacks cannot run on or in
        (
            ["trainer.accelerator=tpu"],
            "trainer.accelerator must be one of auto, cpu, cuda, gpu, got 'tpu'.",
        ),
        (
            ["trainer.precision=bf16-true"],
            "trainer.precision must be 32-true, the precision every attack runs in, got 'bf16-true'.",
        ),
        (
            ["trainer.precision=16-mixed"],
            "trainer.precision must be 32-true, the precision every attack runs in, got '16-mixed'.",
        ),
        (
            ["trainer.precision=64-true"],
            "trainer.precision must be 32-true, the precision every attack runs in, got '64-true'.",
        ),
        (
            ["dataset.num_victims=2", "dataset.victim_indices=[3,3]"],
            "dataset.victim_indices must name distinct images, got 3 twice.",
        ),
        # a name Hydra lets through when added with +: no one would read it
        (
            ["+attak=dia"],
            "the config has no group or field 'attak' (attack, client, dataset, defense, experiment, logger, metrics, model, resume, seed, threat, trainer, verbose); did you mean attack?",
        ),
        (
            ["+model.dropuot=0.1"],
            "model has no field 'dropuot' (checkpoint, depth, dropout, width); did you mean model.dropout?",
        ),
        (["dataset.batch_size=2.0"], "dataset.batch_size must be an integer, got 2.0."),
        (["client=fedavg", "client.local_lr=abc"], "client.local_lr must be a number, got 'abc'."),
        (
            ["attack.regularizers.total_variation.weight=abc"],
            "attack.regularizers.total_variation.weight must be a number, got 'abc'.",
        ),
        (
            ["attack.optim.decay_at=[0.5,x]"],
            "attack.optim.decay_at must be a list of numbers, got [0.5, 'x'].",
        ),
        (
            ["attack.optim.decay_at=[2.0]"],
            "attack.optim.decay_at must list fractions of the iterations in (0, 1)",
        ),
    ],
)
def test_bad_values_raise_one_clear_sentence(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as error:
        run_config(overrides, tmp_path)
    assert str(error.value).startswith(message)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "failed"
    assert "reconstruction.png" not in {p.name for p in tmp_path.iterdir()}


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "model=mpl",
            "model has no option 'mpl' (cnn, cnn6, cnn6d, fcn3, lenet, mlp, resnet18, vit, vit_b16); did you mean mlp?",
        ),
        (
            "model=transformer",
            "model has no option 'transformer' (cnn, cnn6, cnn6d, fcn3, lenet, mlp, resnet18, vit, vit_b16).",
        ),
        (
            "attak=dia",
            "the config has no group or field 'attak' (attack, client, dataset, defense, experiment, logger, metrics, model, resume, seed, threat, trainer, verbose); did you mean attack?",
        ),
        (
            "model.dropuot=0.1",
            "model has no field 'dropuot' (checkpoint, depth, dropout, width); did you mean model.dropout?",
        ),
        (
            "experiment=ig_paper",
            "experiment is an optional group: add it with +experiment=ig_paper.",
        ),
        (
            "experiment=ig_pape",
            "experiment is an optional group: add it with +experiment=<option> (dia_paper, ig_paper, precode_paper, rgap_paper); did you mean +experiment=ig_paper?",
        ),
        (
            "model=[",
            "no viable alternative at input '['; See https://hydra.cc/docs/1.2/advanced/override_grammar/basic for details.",
        ),
    ],
)
def test_misspelt_names_get_the_allowed_names_and_the_closest(tmp_path, override, message):
    with pytest.raises(HydraException) as error:
        compose_config([override], tmp_path)
    assert composition_message(error.value) == message


def test_command_line_hydra_cannot_compose_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "gradinv/main.py", "-m", "model=mlp,mpl", f"hydra.sweep.dir={tmp_path}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "gradinv: error: model has no option 'mpl' (cnn, cnn6, cnn6d, fcn3, lenet, mlp, resnet18, "
        "vit, vit_b16); did you mean mlp?\n"
    )
    assert not any(p.is_dir() for p in tmp_path.iterdir())  # no cell ran


def test_model_that_does_not_fit_the_data_shape(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"model.patch_size must be a positive integer dividing the image size 32, got 5",
    ):
        run_config(["dataset=cifar10", "model=vit", "model.patch_size=5"], tmp_path)


def test_command_line_error_is_one_line_and_exits_nonzero(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "gradinv/main.py",
            "model.dropout=1.5",
            "logger=none",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "gradinv: error: model.dropout must be a number in [0, 1), got 1.5." in done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "failed"


def _picture(path, color=(10, 20, 30)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 40), color).save(path)


@pytest.mark.parametrize(
    "make, overrides, message",
    [
        # the user's own image folder
        (
            lambda d: (_picture(d / "a.png"), (d / "b.png").write_bytes(b"not a png")),
            ["dataset=folder", "dataset.path={d}", "dataset.label=1", "dataset.num_victims=2"],
            "dataset.path holds an image that cannot be read, '{d}/b.png'",
        ),
        (
            lambda d: _picture(d / "cats" / "a.png"),
            ["dataset=folder", "dataset.path={d}", "dataset.label=1"],
            "dataset.label applies to a flat folder only",
        ),
        (
            lambda d: _picture(d / "a.png"),
            ["dataset=folder", "dataset.path={d}", "dataset.label=1", "dataset.num_victims=3"],
            "dataset.num_victims x dataset.batch_size = 3 exceeds the 1 images available; lower them or point dataset.path",
        ),
        (
            lambda d: _picture(d / "a.png"),
            [
                "dataset=folder",
                "dataset.path={d}",
                "dataset.label=1",
                "dataset.size=5",
                "model=cnn",
            ],
            "dataset.size must be at least 6 pixels, the smallest image SSIM's 11-pixel window takes, got 5.",
        ),
        # a dataset.root that is no dataset: a file, an empty folder, a missing folder
        (
            lambda d: (d / "notes.txt").write_text("hello"),
            ["dataset.root={d}/notes.txt"],
            "dataset.root '{d}/notes.txt' does not hold torchvision's mnist files",
        ),
        (
            lambda d: None,
            ["dataset.root={d}"],
            "dataset.root '{d}' does not hold torchvision's mnist files",
        ),
        (lambda d: None, ["dataset.root={d}/missing"], "dataset.root '{d}/missing' does not hold"),
        # a checkpoint that is no state_dict
        (
            lambda d: (d / "w.pt").write_text("junk"),
            ["model.checkpoint={d}/w.pt"],
            "model.checkpoint '{d}/w.pt' is not a PyTorch state_dict file",
        ),
        # hardware and services that are not there
        (
            lambda d: None,
            ["trainer.accelerator=gpu"],
            "trainer.accelerator=gpu is not available here",
        ),
        (
            lambda d: None,
            ["logger=wandb", "logger.mode=online"],
            "logger.mode=online needs a W&B API key",
        ),
    ],
)
def test_inputs_that_are_not_there_name_their_field(
    tmp_path, monkeypatch, make, overrides, message
):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    data = tmp_path / "data"
    data.mkdir()
    make(data)
    with pytest.raises(ConfigError) as error:
        run_config([o.format(d=data) for o in overrides], tmp_path / "run")
    assert str(error.value).startswith(message.format(d=data)), str(error.value)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["status"] == "failed"


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.batch_size=0", "train.batch_size must be a positive integer, got 0."),
        ("train.epochs=abc", "train.epochs must be a positive integer, got 'abc'."),
        ("train.epochs=0", "train.epochs must be a positive integer, got 0."),
        ("train.lr=-1", "train.lr must be a positive number, got -1."),
    ],
)
def test_training_fields_are_checked(tmp_path, override, message):
    from gradinv.utility import train
    from tests.helpers import compose_train

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train(compose_train([override], tmp_path))


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--cells", "mlp:mnist"],
            "--cells takes model:dataset:iterations[:attack] with a positive count",
        ),
        (
            ["--cells", "mlp:mnist:0"],
            "--cells takes model:dataset:iterations[:attack] with a positive count",
        ),
        (["--cells", "transformer:mnist:3"], "--cells names model 'transformer'; known: cnn"),
        (["--cells", "mlp:mnist:3:dlgg"], "--cells names attack 'dlgg'; known: dia, dlg"),
        (["--dropout", "1.5"], "--dropout must lie in [0, 1), got 1.5"),
        (["--repeats", "0"], "--repeats must be a positive count, got 0"),
        (["--per-call", "0"], "--per-call must be a positive count, got 0"),
    ],
)
def test_bench_arguments_are_one_sentence(argv, message, capsys):
    from gradinv.bench import main as bench

    with pytest.raises(SystemExit) as exit_:
        bench(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
