"""An evaluation-side callback that logs the attack's PSNR while it runs.

It holds the private originals; the attack module never sees them, it only exposes its
current candidates.
"""

from __future__ import annotations

import lightning as L
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio

from gradinv.data.spec import DataSpec


class PSNRMonitor(L.Callback):
    """Every ``every`` steps, log the mean PSNR of the current candidates against the originals."""

    def __init__(self, originals: list[torch.Tensor], spec: DataSpec, every: int) -> None:
        self.originals = originals
        self.spec = spec
        self.every = every

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.every <= 0 or (batch_idx + 1) % self.every:
            return
        values = [
            peak_signal_noise_ratio(
                self.spec.denormalize(images).cpu(),
                self.spec.denormalize(self.originals[victim]).cpu(),
                data_range=1.0,
            )
            for victim, images in pl_module.current_images()
        ]
        pl_module.log("attack/psnr", torch.stack(values).mean())
