"""Every batched path equals the loop, for every configured model and defense.

For each model in ``conf/model/`` and each defense in ``conf/defense/`` that leaves the update
exact (and, for models with batch norm, a client that normalizes with running statistics),
two DIA problems at p = 0.25 with batches of 2 take whichever path ``attack.vectorize``
chooses given room for many problems per call, as on a GPU (folded, vmap, or the loop, with
its logged reason); in float64 each problem's distance and its gradient for the images and
every learned mask equal those of one problem at a time, as do those of a GPU's paths (each
problem's gradient formed as one vector, on the chosen path and on the loop). New configs are covered without editing this file; a configured ``depth`` is cut to 2
at most (the same modules, fewer repeats: ViT-B/16's 12 blocks in float64 take 20 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gradinv.attacks import per_call
from gradinv.attacks.base import ServerView
from gradinv.attacks.batching import Batching
from gradinv.attacks.problem_loss import ProblemLoss
from gradinv.data.datasets import CIFAR10
from gradinv.data.victims import VictimBatch
from gradinv.errors import instantiate
from gradinv.federated.client import FederatedClient
from gradinv.models.build import build_model
from tests.attacks.helpers import engine_for, make_attack
from tests.helpers import CONF, option

MODELS = sorted(p.stem for p in (Path(CONF) / "model").glob("*.yaml"))
DEFENSES = sorted(
    p.stem
    for p in (Path(CONF) / "defense").glob("*.yaml")
    if not instantiate(option("defense", p.stem)).perturbs_update
)


def _expected(name: str, defense: str, normalization: str) -> str:
    """The path a cell must take: folded unless PRECODE's KL term (an auxiliary loss) rules it
    out: then vmap, except through layer norm or batch statistics (no torch.func through
    them: the loop)."""
    if defense == "precode":
        statistics = name.startswith("vit") or (name == "resnet18" and normalization == "batch")
        return "loop" if statistics else "vmap"
    return "folded"


def _cells():
    for name in MODELS:
        for defense in DEFENSES:
            yield pytest.param(name, defense, "batch", id=f"{name}-{defense}")
    yield pytest.param("resnet18", "none", "running", id="resnet18-none-running-norm")


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize(("name", "defense", "normalization"), list(_cells()))
def test_batched_distances_and_gradients_equal_the_loop(
    name, defense, normalization, float64, caplog, monkeypatch
):
    monkeypatch.setattr(per_call, "CPU_CALL_ELEMENTS", 2**40)
    spec = CIFAR10.spec
    cfg = option("model", name)
    cfg.dropout = 0.25
    if "depth" in cfg:
        cfg.depth = min(cfg.depth, 2)
    protect = instantiate(option("defense", defense))
    model = build_model(cfg, spec, seed=0, prepare=protect.prepare_model)
    client = FederatedClient(model, protect, mode="train", normalization=normalization)
    server = ServerView.of(model, spec, client.batch_statistics)
    generator = torch.Generator().manual_seed(1)
    updates = [
        client.share(
            VictimBatch(
                torch.randn(2, *spec.shape, generator=generator),
                torch.randint(0, spec.num_classes, (2,), generator=generator),
                (0, 1),
            )
        )[0]
        for _ in range(2)
    ]
    with caplog.at_level("INFO"):
        engine = engine_for(make_attack("dia"), server, updates)
    assert engine.batching == _expected(name, defense, normalization), caplog.text
    if engine.batching == "loop":
        assert "one by one" in caplog.text
    assert len(engine.layout.columns) > 1, "DIA learns no mask at p = 0.25"
    # A GPU's paths: each problem's gradient formed as one vector, on the chosen path and the loop.
    flat = ProblemLoss(
        engine.attack,
        engine.model,
        engine.problems,
        engine.loss.names,
        engine.layout,
        engine.theta.device,
        engine.theta.dtype,
        flat=True,
    )
    counters = engine.progress.steps
    chosen = engine.loss.value_and_grad(engine.theta, counters)
    flat.batching = engine.loss.batching
    flat_chosen = flat.value_and_grad(engine.theta, counters)
    flat.batching = Batching("loop")
    flat_loop = flat.value_and_grad(engine.theta, counters)
    engine.loss.batching = Batching("loop")
    loop = engine.loss.value_and_grad(engine.theta, counters)
    for fast in (chosen, flat_chosen, flat_loop):
        torch.testing.assert_close(fast[0], loop[0], rtol=1e-10, atol=1e-12)
        (fast_images, fast_masks), (images, masks) = (
            engine.layout.views(g) for g in (fast[1], loop[1])
        )
        pairs = [(fast_images, images)] + [(fast_masks[k].value, masks[k].value) for k in masks]
        for a, b in pairs:  # each problem's gradient of each tensor
            for i in range(len(updates)):
                torch.testing.assert_close(
                    a[i], b[i], rtol=1e-8, atol=1e-8 * float(b[i].abs().max())
                )
