"""The loop's contract with an attack: optimizers, learned labels, typed variables."""

from __future__ import annotations

import pytest
import torch

from gradinv.attacks.gradient_inversion import GradientInversion, InversionModule
from gradinv.attacks.base import ServerView
from gradinv.attacks.optimization import Optimization
from gradinv.attacks.variables import LabelLogits
from gradinv.errors import ConfigError
from tests.attacks.helpers import MNIST_LIKE, assert_same, attack_images, mlp, shared_updates


class LearnedLabels(GradientInversion):
    """An attack for the tests that learns every problem's labels as logits."""

    def problem_labels(self, server, update):
        return None

    def init_variables(self, problem, server, generator):
        return {"labels": LabelLogits(torch.randn(problem.update.batch_size, 10, generator=generator))}


def test_lbfgs_steps_problems_one_by_one_with_the_same_result():
    fields = dict(iterations=3, restarts=2, optimizer="lbfgs", signed=False, lr=1.0, objective="l2")
    batched = attack_images(GradientInversion(vectorize=True, **fields), mlp(), MNIST_LIKE, victims=2)
    loop = attack_images(GradientInversion(vectorize=False, **fields), mlp(), MNIST_LIKE, victims=2)
    assert_same(loop, batched)
    assert all(rec.iterations == 6 for rec in batched)
    start = attack_images(GradientInversion(**{**fields, "iterations": 1}), mlp(), MNIST_LIKE, victims=2)
    assert not torch.allclose(batched[0].images, start[0].images)  # L-BFGS kept moving them


def test_lbfgs_refuses_signed_gradients_and_per_tensor_step_sizes():
    with pytest.raises(ConfigError, match="attack.signed must be false with attack.optimizer=lbfgs"):
        Optimization(optimizer="lbfgs", signed=True)
    with pytest.raises(ConfigError, match="attack.optimizer must be 'adam' or 'lbfgs', got 'sgd'"):
        Optimization(optimizer="sgd")


def test_learned_labels_enter_the_loss_as_softmax_and_come_back_as_argmax():
    net = mlp()
    server = ServerView.of(net, MNIST_LIKE)
    updates = shared_updates(net, MNIST_LIKE, victims=2, batch=2)
    attack = LearnedLabels(iterations=1)
    problems = [attack.problem(server, v, 0, u, v) for v, u in enumerate(updates)]
    module = InversionModule(attack, server, problems)
    module.on_fit_start()
    logits = module.learned[0]["labels"].value
    assert torch.equal(module.forward_labels(0), logits.softmax(dim=-1))
    (reconstruction, _) = module.reconstructions()
    assert torch.equal(reconstruction.labels, logits.argmax(dim=-1))


def test_vectorized_learned_labels_equal_one_by_one():
    fields = dict(iterations=6, restarts=2, signed=False, objective="l2")
    loop = attack_images(LearnedLabels(vectorize=False, **fields), mlp(), MNIST_LIKE, victims=2)
    batched = attack_images(LearnedLabels(vectorize=True, **fields), mlp(), MNIST_LIKE, victims=2)
    assert_same(loop, batched)
    assert [torch.equal(a.labels, b.labels) for a, b in zip(loop, batched)] == [True, True]
