"""The engine's contract with an attack: optimizers, learned labels, typed variables."""

from __future__ import annotations

import pytest
import torch

from gradinv.attacks.base import ServerView
from gradinv.attacks.gradient_inversion import GradientInversion
from gradinv.attacks.variables import LabelLogits
from gradinv.errors import ConfigError
from tests.attacks.helpers import (
    MNIST_LIKE,
    assert_same,
    attack_images,
    engine_for,
    make_attack,
    mlp,
    shared_updates,
)


class LearnedLabels(GradientInversion):
    """An attack for the tests that learns every problem's labels as logits."""

    def problem_labels(self, server, update):
        return None

    def init_variables(self, problem, server, generator):
        return {
            "labels": LabelLogits(torch.randn(problem.update.batch_size, 10, generator=generator))
        }


def test_lbfgs_steps_problems_one_by_one_with_the_same_result():
    optim = dict(iterations=3, optimizer="lbfgs", signed=False, lr=1.0)
    fields = dict(restarts=2, objective="l2")
    batched = attack_images(
        make_attack(vectorize=True, optim=optim, **fields), mlp(), MNIST_LIKE, victims=2
    )
    loop = attack_images(
        make_attack(vectorize=False, optim=optim, **fields), mlp(), MNIST_LIKE, victims=2
    )
    assert_same(loop, batched)
    assert all(rec.iterations == 6 for rec in batched)
    once = make_attack(optim={**optim, "iterations": 1}, **fields)
    start = attack_images(once, mlp(), MNIST_LIKE, victims=2)
    assert not torch.allclose(batched[0].images, start[0].images)  # L-BFGS kept moving them


def test_lbfgs_refuses_signed_gradients_and_unknown_optimizers():
    with pytest.raises(
        ConfigError, match="attack.optim.signed must be false with attack.optim.optimizer=lbfgs"
    ):
        make_attack(optim={"optimizer": "lbfgs", "signed": True})
    with pytest.raises(
        ConfigError, match="attack.optim.optimizer must be 'adam' or 'lbfgs', got 'sgd'"
    ):
        make_attack(optim={"optimizer": "sgd"})


def test_learned_labels_enter_the_loss_as_softmax_and_come_back_as_argmax():
    net = mlp()
    server = ServerView.of(net, MNIST_LIKE)
    updates = shared_updates(net, MNIST_LIKE, victims=2, batch=2)
    engine = engine_for(make_attack(cls=LearnedLabels, optim={"iterations": 1}), server, updates)
    _, variables = engine.layout.views(engine.theta)
    logits = variables["labels"].value
    assert torch.equal(engine.loss.forward_labels(variables), logits.softmax(dim=-1))
    reconstruction, _ = engine.reconstructions()
    assert torch.equal(reconstruction.labels, logits[0].argmax(dim=-1))


def test_vectorized_learned_labels_equal_one_by_one():
    optim = dict(iterations=6, signed=False)
    fields = dict(restarts=2, objective="l2")
    loop = attack_images(
        make_attack(cls=LearnedLabels, vectorize=False, optim=optim, **fields), mlp(), MNIST_LIKE, 2
    )
    batched = attack_images(
        make_attack(cls=LearnedLabels, vectorize=True, optim=optim, **fields), mlp(), MNIST_LIKE, 2
    )
    assert_same(loop, batched)
    assert [torch.equal(a.labels, b.labels) for a, b in zip(loop, batched)] == [True, True]
