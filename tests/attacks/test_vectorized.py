"""Vectorized attacks equal one-by-one attacks; same seed, same reconstruction; resume; sweeps."""

from __future__ import annotations

import json
import subprocess
import sys

import lightning as L
import pytest
import torch

from gradinv.attacks.base import AttackRuntime, ServerView
from gradinv.attacks.gradient_inversion import GradientInversion, InversionModule
from gradinv.attacks.variables import DropoutMask
from gradinv.data.spec import DataSpec
from gradinv.defenses.base import Defense
from gradinv.errors import ConfigError
from gradinv.federated.client import FederatedClient
from gradinv.models.dropout import active_sites, mask_key
from gradinv.models.mlp import MLP
from gradinv.models.resnet import ResNet18
from tests.conftest import REPO
from tests.helpers import run_config

MNIST_LIKE = DataSpec("tiny", 1, 8, 10, (0.5,), (0.5,))
CIFAR_LIKE = DataSpec("tiny-rgb", 3, 12, 10, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


class LearnedMasks(GradientInversion):
    """A DIA-like attack for the tests: one learnable mask per active dropout site and image."""

    def init_variables(self, problem, server, generator):
        probe = {}
        hooks = [
            site.register_forward_hook(lambda m, i, o, n=name: probe.__setitem__(n, o.shape))
            for name, site in active_sites(server.model).items()
        ]
        with torch.no_grad():
            server.model(torch.zeros(problem.update.batch_size, *server.spec.shape))
        for hook in hooks:
            hook.remove()
        return {
            mask_key(n): DropoutMask(torch.rand(shape, generator=generator), bounds=(0, 1), buffer=mask_key(n))
            for n, shape in probe.items()
        }


def quiet_trainer(callbacks: list) -> L.Trainer:
    return L.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, callbacks=callbacks,
        enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
    )


def shared_updates(model, spec: DataSpec, victims: int, batch: int = 1, client_mode: str = "train"):
    torch.manual_seed(1)
    client = FederatedClient(model, Defense(), mode=client_mode)
    images = torch.randn(victims, batch, *spec.shape)
    labels = torch.randint(0, spec.num_classes, (victims, batch))
    from gradinv.data.victims import VictimBatch

    return [client.share(VictimBatch(x, y, ()))[0] for x, y in zip(images, labels)]


def attack_images(
    attack: GradientInversion, model, spec: DataSpec, victims: int, client_mode: str = "train"
) -> list:
    torch.manual_seed(0)
    server = ServerView.of(model, spec, batch_statistics=client_mode == "train")
    updates = shared_updates(model, spec, victims, client_mode=client_mode)
    runtime = AttackRuntime(seed=3, make_trainer=quiet_trainer)
    return [rec for rec in attack.reconstruct(server, updates, runtime)]


def assert_same(first: list, second: list) -> None:
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a.images, b.images, atol=1e-4, rtol=1e-3)
        assert a.gradient_loss == pytest.approx(b.gradient_loss, rel=1e-3)
        assert a.iterations == b.iterations
        for key in a.masks or {}:
            torch.testing.assert_close(a.masks[key], b.masks[key], atol=1e-4, rtol=1e-3)


def mlp(dropout: float = 0.0) -> MLP:
    torch.manual_seed(0)
    return MLP(MNIST_LIKE.shape, 10, dropout=dropout, width=32, depth=2)


def ig(attack_cls=GradientInversion, **fields) -> GradientInversion:
    return attack_cls(iterations=8, restarts=2, signed=False, **fields)


def test_vectorized_ig_equals_one_by_one_on_mlp():
    loop = attack_images(ig(vectorize=False), mlp(), MNIST_LIKE, victims=2)
    batched = attack_images(ig(vectorize=True), mlp(), MNIST_LIKE, victims=2)
    assert_same(loop, batched)
    assert all(rec.iterations == 16 for rec in batched)


def test_vectorized_learned_masks_equal_one_by_one_with_early_stopping():
    """Extra variables and buffers go through vmap; stopped problems freeze at their step."""
    fields = dict(stop_loss=0.6, lr_schedule="plateau", plateau_patience=1)
    loop = attack_images(ig(LearnedMasks, vectorize=False, **fields), mlp(0.25), MNIST_LIKE, 2)
    batched = attack_images(ig(LearnedMasks, vectorize=True, **fields), mlp(0.25), MNIST_LIKE, 2)
    assert_same(loop, batched)
    assert batched[0].masks and set(batched[0].masks) == {"features.3.mask", "features.6.mask"}
    assert any(rec.iterations < 16 for rec in batched)


@pytest.mark.parametrize("client_mode", ["train", "eval"])
def test_vectorized_resnet_with_batch_norm_equals_one_by_one(client_mode, caplog):
    """Batch statistics (client in train mode) or running ones (eval): vmap matches the loop."""
    def resnet():
        torch.manual_seed(0)
        return ResNet18(CIFAR_LIKE.shape, 10)

    attack = dict(iterations=2, restarts=1, signed=False)
    loop = attack_images(GradientInversion(vectorize=False, **attack), resnet(), CIFAR_LIKE, 2, client_mode)
    with caplog.at_level("INFO"):
        batched = attack_images(GradientInversion(vectorize=True, **attack), resnet(), CIFAR_LIKE, 2, client_mode)
    assert "one by one" not in caplog.text  # two ResNet-18 problems fit the vmap path
    assert_same(loop, batched)


def test_batch_statistics_keep_problems_apart_so_products_do_not_apply():
    """A client in train mode normalizes per batch: problems may not share one forward batch."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.BatchNorm1d(16), torch.nn.Linear(16, 10)
    )
    updates = shared_updates(net, MNIST_LIKE, victims=2, batch=2)
    attack = GradientInversion(iterations=1, ignore_layers=["2.*"])  # match the linear layers only
    server = ServerView.of(net, MNIST_LIKE)
    problems = [attack.problem(server, v, 0, u, v) for v, u in enumerate(updates)]
    module = InversionModule(attack, server, problems)
    module.on_fit_start()
    assert module.batching == "vmap"
    module = InversionModule(attack, ServerView.of(net, MNIST_LIKE, batch_statistics=False), problems)
    module.on_fit_start()
    assert module.batching == "products"


def test_learned_masks_stay_vectorized():
    net = mlp(0.25)
    updates = shared_updates(net, MNIST_LIKE, victims=2)
    attack = LearnedMasks(iterations=1)
    server = ServerView.of(net, MNIST_LIKE)
    problems = [attack.problem(server, v, 0, u, v) for v, u in enumerate(updates)]
    module = InversionModule(attack, server, problems)
    module.on_fit_start()
    assert module.batching == "products"


def test_same_seed_gives_identical_reconstructions(tmp_path):
    overrides = ["model.width=32", "attack.iterations=4", "dataset.num_victims=2", "attack.restarts=2"]
    first = run_config(overrides, tmp_path / "a")
    second = run_config(overrides, tmp_path / "b")
    assert first["per_image"] == second["per_image"]
    assert first["metrics"]["psnr"] == second["metrics"]["psnr"]
    pictures = [(tmp_path / d / "reconstruction.png").read_bytes() for d in ("a", "b")]
    assert pictures[0] == pictures[1]


def test_resume_skips_only_a_finished_run_of_the_same_configuration(tmp_path):
    overrides = ["model.width=32", "attack.iterations=2", "resume=true"]
    first = run_config(overrides, tmp_path)
    stored = (tmp_path / "results.json").read_text()
    again = run_config(overrides, tmp_path)
    assert (tmp_path / "results.json").read_text() == stored
    assert again["metrics"] == json.loads(stored)["metrics"] == first["metrics"]
    with pytest.raises(ConfigError, match=r"another configuration .*attack.iterations: 2 -> 50"):
        run_config([*overrides, "attack.iterations=50"], tmp_path)
    assert (tmp_path / "results.json").read_text() == stored  # never overwritten


def test_resume_reruns_a_failed_run(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"status": "failed"}))
    outcome = run_config(["model.width=32", "attack.iterations=2", "resume=true"], tmp_path)
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "ok"
    assert outcome["timing"]["iterations"] == 2


@pytest.mark.slow
def test_joblib_sweep_runs_two_parallel_jobs(tmp_path):
    command = [
        sys.executable, "gradinv/main.py", "-m", "hydra/launcher=joblib_local",
        "logger=none", "trainer.enable_progress_bar=false", "model.width=32",
        "attack.iterations=2", "seed=0,1", f"hydra.sweep.dir={tmp_path}",
    ]
    done = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
    assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/results.json"))]
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert [r["choices"]["seed"] for r in results] == [0, 1]


def test_the_logger_gets_every_steps_loss(tmp_path):
    run_config(["model.width=32", "attack.iterations=12", "logger=csv"], tmp_path)
    rows = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    column, step = header.index("attack/loss"), header.index("step")
    logged = [int(r.split(",")[step]) for r in rows[1:] if r.split(",")[column]]
    assert logged == list(range(12))


def test_vectorized_attack_on_precode_draws_the_same_samples_as_one_by_one():
    """The attacker's bottleneck samples come from each problem's generator, so vmap and the
    loop see the same draws and reach the same reconstructions."""
    from gradinv.defenses.precode import Precode

    def model():
        torch.manual_seed(0)
        return Precode(latent=4).prepare_model(mlp())

    loop = attack_images(ig(vectorize=False), model(), MNIST_LIKE, victims=2)
    batched = attack_images(ig(vectorize=True), model(), MNIST_LIKE, victims=2)
    assert_same(loop, batched)
    assert loop[0].gradient_loss > 1e-4  # fresh samples: the distance does not vanish
