"""The engine's host side: what reaches the logger, and that it never changes the results."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import Logger

from gradinv.attacks.base import AttackRuntime, ServerView
from tests.attacks.helpers import MNIST_LIKE, make_attack, mlp, shared_updates


class Recorder(Logger):
    """A logger that keeps every (step, metrics) it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[tuple[int, dict]] = []

    name = "recorder"
    version = 0

    def log_metrics(self, metrics, step=None):
        self.logged.append((step, dict(metrics)))

    def log_hyperparams(self, params, *args, **kwargs):
        pass


def run(sync_every: int):
    recorder = Recorder()

    def trainer(callbacks):
        return L.Trainer(
            max_epochs=1,
            accelerator="cpu",
            logger=recorder,
            callbacks=callbacks,
            log_every_n_steps=1,
            enable_progress_bar=False,
            enable_checkpointing=False,
            enable_model_summary=False,
        )

    model = mlp(0.25)
    torch.manual_seed(0)
    server = ServerView.of(model, MNIST_LIKE)
    updates = shared_updates(model, MNIST_LIKE, victims=2)
    attack = make_attack(
        "dia",
        restarts=1,
        sync_every=sync_every,
        optim={"iterations": 30, "schedule": "multistep", "stop_loss": 0.3},
    )
    reconstructions = attack.reconstruct(
        server, updates, AttackRuntime(seed=3, make_trainer=trainer)
    )
    return reconstructions, recorder.logged


@pytest.mark.parametrize("sync_every", [1, 7])
def test_the_host_reads_every_k_steps_without_changing_results_or_the_log(sync_every):
    """Problems stop at different steps; the fit ends once all have, whatever K is, and the
    logger receives the same mean loss of every step in which a problem ran."""
    expected, expected_log = run(50)
    results, logged = run(sync_every)
    steps = [rec.iterations for rec in expected]
    assert len(set(steps)) > 1 and max(steps) < 30  # problems stopped at different steps, all early
    for a, b in zip(expected, results, strict=True):
        assert torch.equal(a.images, b.images) and a.iterations == b.iterations
    assert logged == expected_log
    assert [step for step, _ in logged] == list(range(max(steps)))
