"""Vectorized attacks equal one-by-one attacks end to end, and each set of problems takes the
batched path it can (folded into one batch, vmap, or the loop); ``test_batched_paths`` checks
each path's distances and gradients for every configured model."""

from __future__ import annotations

import pytest
import torch

from gradinv.attacks import batching, per_call
from gradinv.attacks.base import ServerView
from gradinv.attacks.gradient_inversion import GradientInversion
from gradinv.attacks.variables import DropoutMask
from gradinv.data.spec import DataSpec
from gradinv.models.cnn import CNN
from gradinv.models.dropout import active_sites, mask_key
from gradinv.models.resnet import ResNet18
from tests.attacks.helpers import (
    MNIST_LIKE,
    assert_same,
    attack_images,
    engine_for,
    make_attack,
    mlp,
    shared_updates,
)

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
            mask_key(n): DropoutMask(
                torch.rand(shape, generator=generator), bounds=(0, 1), buffer=mask_key(n)
            )
            for n, shape in probe.items()
        }


def ig(attack_cls=None, optim=None, **fields) -> GradientInversion:
    """IG's setting, 8 unsigned steps, 2 restarts (``attack_cls``: a test's subclass)."""
    return make_attack(
        cls=attack_cls,
        restarts=2,
        optim={"iterations": 8, "signed": False, **(optim or {})},
        **fields,
    )


def test_vectorized_ig_equals_one_by_one_on_mlp():
    loop = attack_images(ig(vectorize=False), mlp(), MNIST_LIKE, victims=2)
    batched = attack_images(ig(vectorize=True), mlp(), MNIST_LIKE, victims=2)
    assert_same(loop, batched)
    assert all(rec.iterations == 16 for rec in batched)


def test_vectorized_learned_masks_equal_one_by_one_with_early_stopping():
    """Extra variables and buffers go through vmap; stopped problems freeze at their step."""
    optim = dict(stop_loss=0.6, schedule="plateau", plateau_patience=1)
    loop = attack_images(ig(LearnedMasks, optim, vectorize=False), mlp(0.25), MNIST_LIKE, 2)
    batched = attack_images(ig(LearnedMasks, optim, vectorize=True), mlp(0.25), MNIST_LIKE, 2)
    assert_same(loop, batched)
    assert batched[0].masks and set(batched[0].masks) == {"features.3.mask", "features.6.mask"}
    assert any(rec.iterations < 16 for rec in batched)


@pytest.mark.parametrize("client_mode", ["train", "eval"])
def test_vectorized_resnet_with_batch_norm_equals_one_by_one(client_mode, caplog):
    """Folded, batch statistics (client in train mode: each problem's own) or running ones
    (eval), with torchvision's in-place ReLU after each batch norm, match one fit per problem.
    On a CPU fewer than MIN_PER_CALL ResNet-18 problems fit one call: they take the loop,
    unless ``attack.per_call`` says how many share one."""

    def resnet():
        torch.manual_seed(0)
        return ResNet18(CIFAR_LIKE.shape, 10)

    updates = shared_updates(resnet(), CIFAR_LIKE, victims=2, client_mode=client_mode)
    server = ServerView.of(resnet(), CIFAR_LIKE, client_mode == "train")
    with caplog.at_level("INFO"):
        engine = engine_for(make_attack(), server, updates)
    assert engine.batching == "loop"
    assert (
        "stepping problems one by one (a folded call holds 3 problem(s) of 11169354 entries each on "
        "cpu, fewer than 4: no faster than the loop)." in caplog.text
    )
    optim = dict(iterations=2, signed=False)
    loop = attack_images(
        make_attack(vectorize=False, optim=optim), resnet(), CIFAR_LIKE, 2, client_mode
    )
    caplog.clear()
    with caplog.at_level("INFO"):  # attack.per_call chooses for the user: both problems in one call
        batched = attack_images(
            make_attack(vectorize=True, per_call=2, optim=optim),
            resnet(),
            CIFAR_LIKE,
            2,
            client_mode,
        )
    assert "one by one" not in caplog.text and "not folding" not in caplog.text, caplog.text
    assert_same(loop, batched)


def test_batch_norm_folds_on_batch_or_running_statistics():
    """A client in train mode normalizes per batch: folded, each problem's rows are normalized
    by their own statistics (exactness: ``test_folded``, ``test_batched_paths``)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(64, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.Linear(16, 10),
    )
    updates = shared_updates(net, MNIST_LIKE, victims=2, batch=2)
    for batch_statistics in (True, False):
        server = ServerView.of(net, MNIST_LIKE, batch_statistics=batch_statistics)
        assert engine_for(make_attack(), server, updates).batching == "folded"


def test_learned_masks_stay_vectorized():
    net = mlp(0.25)
    updates = shared_updates(net, MNIST_LIKE, victims=2)
    server = ServerView.of(net, MNIST_LIKE)
    assert engine_for(make_attack(cls=LearnedMasks), server, updates).batching == "folded"


def test_vectorized_attack_on_precode_draws_the_same_samples_as_one_by_one():
    """The attacker's bottleneck samples are a function of each problem's seed and step, so
    vmap and the loop see the same draws and reach the same reconstructions."""
    from gradinv.defenses.precode import Precode

    def model():
        torch.manual_seed(0)
        return Precode(latent=4).prepare_model(mlp())

    loop = attack_images(ig(vectorize=False), model(), MNIST_LIKE, victims=2)
    batched = attack_images(ig(vectorize=True), model(), MNIST_LIKE, victims=2)
    assert_same(loop, batched)
    assert loop[0].gradient_distance > 1e-4  # fresh samples: the distance does not vanish


def _small_cnn():
    torch.manual_seed(0)
    return CNN(CIFAR_LIKE.shape, 10, channels=[4, 8], hidden=16)


def _precode_cnn():
    from gradinv.defenses.precode import Precode

    torch.manual_seed(0)
    return Precode(latent=4).prepare_model(CNN(CIFAR_LIKE.shape, 10, channels=[4, 8], hidden=16))


@pytest.mark.parametrize(("model", "path"), [(_small_cnn, "folded"), (_precode_cnn, "vmap")])
def test_batched_paths_in_chunks_equal_one_by_one(model, path, monkeypatch):
    """Problems whose formed entries exceed CPU_CALL_ELEMENTS share a batched call in chunks
    (4 + 1 here): folded (convolutions' gradients, linear layers' rows) or vmap (gradients)."""
    server = ServerView.of(model(), CIFAR_LIKE)
    updates = shared_updates(model(), CIFAR_LIKE, victims=5)
    engine = engine_for(make_attack(), server, updates)
    assert engine.batching == path
    if path == "folded":
        formed = engine.loss.batching.folding.entries
    else:
        formed = sum(t[0].numel() for t in engine.loss.targets.values())
    assert engine.loss.batching.chunk == per_call.CPU_CALL_ELEMENTS // formed
    monkeypatch.setattr(per_call, "CPU_CALL_ELEMENTS", 4 * formed)
    optim = dict(iterations=3, signed=False)
    loop = attack_images(make_attack(vectorize=False, optim=optim), model(), CIFAR_LIKE, 5)
    batched = attack_images(make_attack(vectorize=True, optim=optim), model(), CIFAR_LIKE, 5)
    assert_same(loop, batched)
    engine = engine_for(make_attack(), server, updates)
    assert (engine.batching, engine.loss.batching.chunk) == (path, 4)


def test_problems_per_call_on_a_gpu_are_what_half_its_free_memory_holds(monkeypatch):
    """On CUDA the count follows the device's free memory and one problem's measured peak; on a
    CPU the formed entries alone decide, and nothing is measured."""
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (8 * 2**30, 80 * 2**30))
    assert per_call.problems_per_call(10**9, torch.device("cuda", 0), lambda: 2**28) == 16
    assert per_call.problems_per_call(10**9, torch.device("cuda", 0), lambda: 2**34) == 1

    def unmeasured():
        raise AssertionError("a CPU's count is not measured")

    assert (
        per_call.problems_per_call(2**20, torch.device("cpu"), unmeasured)
        == per_call.CPU_CALL_ELEMENTS // 2**20
    )


@pytest.mark.parametrize(("model", "path"), [(_small_cnn, "folded"), (_precode_cnn, "vmap")])
def test_measuring_a_step_for_the_gpu_leaves_the_attack_unchanged(model, path, monkeypatch):
    """The probe step that ``peak_bytes`` measures on CUDA runs the path on the first problem;
    the attack's draws (PRECODE's samples) depend on no state it could advance, so the
    attack's first loss is unchanged."""
    for name in ("synchronize", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, lambda device: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 100)  # before the step
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 3 * 2**20)
    server = ServerView.of(model(), CIFAR_LIKE)
    updates = shared_updates(model(), CIFAR_LIKE, victims=2)
    engine = engine_for(make_attack(), server, updates)
    assert engine.batching == path
    counters = engine.progress.steps
    before = engine.loss.losses(engine.theta, counters)
    probe = batching._probe(engine.loss, engine.theta, engine.loss.batching)
    assert per_call.peak_bytes(probe, torch.device("cuda", 0)) == 3 * 2**20 - 100
    torch.testing.assert_close(engine.loss.losses(engine.theta, counters), before, rtol=0, atol=0)


@pytest.mark.parametrize(("name", "path"), [("cnn", "folded"), ("vit", "loop"), ("lenet", "loop")])
def test_a_single_problem_is_folded_only_where_it_forms_far_less(name, path, caplog):
    """One CNN problem folds (its large linear layer sees one row per image); one ViT or LeNet
    problem runs in the loop, where it is faster, and that is no fallback to log."""
    from gradinv.data.datasets import CIFAR10
    from gradinv.models.build import build_model
    from tests.helpers import option

    model = build_model(option("model", name), CIFAR10.spec, seed=0)
    server = ServerView.of(model, CIFAR10.spec)
    updates = shared_updates(model, CIFAR10.spec, victims=1)
    with caplog.at_level("INFO"):
        engine = engine_for(make_attack(), server, updates)
    assert engine.batching == path
    assert "one by one" not in caplog.text
