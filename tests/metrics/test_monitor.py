"""The convergence monitor measures PSNR with the final metric's function, per image."""

from types import SimpleNamespace

import pytest
import torch

from gradinv.data.spec import DataSpec
from gradinv.metrics.monitor import ConvergenceMonitor


def test_the_curve_psnr_is_the_mean_over_the_candidates_images():
    spec = DataSpec("tiny", 1, 4, 10, (0.0,), (1.0,))
    originals = [torch.zeros(2, 1, 4, 4), torch.zeros(1, 1, 4, 4)]
    # errors 0.1, 0.01 and 0.1 on every pixel: PSNR 20, 40 and 20 dB
    candidates = [
        torch.tensor([0.1, 0.01]).view(2, 1, 1, 1).expand(2, 1, 4, 4),
        torch.full((1, 1, 4, 4), 0.1),
    ]
    attack = SimpleNamespace(
        last_loss=0.5,
        current_images=lambda: list(enumerate(candidates)),
        current_masks=lambda: [],
        log=lambda *args, **kwargs: None,
    )
    monitor = ConvergenceMonitor(originals, [{}, {}], spec, every=3)
    monitor.on_train_start(None, attack)
    for batch_idx in range(3):
        monitor.on_train_batch_end(None, attack, None, None, batch_idx)
    (point,) = monitor.curve
    assert (point.fit, point.step, point.loss, point.mask_accuracy) == (0, 3, 0.5, None)
    assert point.psnr == pytest.approx((20 + 40 + 20) / 3, rel=1e-5)  # not PSNR of each batch's MSE
