"""An evaluation-side callback that records how the attack converges while it runs.

It holds the private originals and true dropout masks; the attack module never sees them, it
only exposes its current candidates and variables. Every ``every`` steps it logs, and keeps as
``curve`` for results.json, the mean PSNR over the current candidates' images (the function of
the final ``psnr``), the mean attack loss of that step and, when the attack learns dropout
masks, their accuracy (binarized at 0.5, pooled over sites and problems). Images and masks are
compared in batch order, without the final matching.
Each point names its Lightning fit: one for a vectorized attack, one per problem otherwise.
"""

from __future__ import annotations

import lightning as L
import torch

from gradinv.data.spec import DataSpec
from gradinv.metrics.image_quality import psnr_per_image
from gradinv.metrics.masks import mask_accuracy, mask_agreement
from gradinv.schema import CurvePoint


class ConvergenceMonitor(L.Callback):
    """Every ``every`` steps: PSNR, loss and mask accuracy of the running attack."""

    def __init__(
        self,
        originals: list[torch.Tensor],
        masks: list[dict[str, torch.Tensor]],
        spec: DataSpec,
        every: int,
    ) -> None:
        self.originals = originals
        self.masks = masks
        self.spec = spec
        self.every = every
        self.curve: list[CurvePoint] = []
        self.fits = 0  # Lightning fits so far: one per problem when the attack is not vectorized

    def on_train_start(self, trainer, pl_module) -> None:
        self.fits += 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.every <= 0 or (batch_idx + 1) % self.every:
            return
        loss = pl_module.last_loss
        if loss is None:  # every problem had stopped: the fit is ending
            return
        point = CurvePoint(fit=self.fits - 1, step=batch_idx + 1, loss=loss)
        psnr = [
            psnr_per_image(
                self.spec.denormalize(images).detach().cpu(),
                self.spec.denormalize(self.originals[victim]).cpu(),
            )
            for victim, images in pl_module.current_images()
        ]
        point.psnr = float(torch.cat(psnr).mean())
        pl_module.log("attack/psnr", point.psnr)
        counts = [
            mask_agreement(self.masks[victim], learned, list(range(len(self.originals[victim]))))
            for victim, learned in pl_module.current_masks()
            if self.masks[victim] and set(self.masks[victim]) <= set(learned)
        ]
        if counts:
            point.mask_accuracy = mask_accuracy(counts)["mask_accuracy"]
            pl_module.log("attack/mask_accuracy", point.mask_accuracy)
        self.curve.append(point)
