"""A W&B Table of per-image metrics with each original beside its reconstruction, for browsing."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import torch
import wandb
from lightning.pytorch.loggers import WandbLogger

from gradinv.evaluation import Scores
from gradinv.schema import WANDB_IMAGE_COLUMNS, WANDB_TABLE, ImageScore


def _picture(image: torch.Tensor) -> wandb.Image:
    """A W&B image from one CxHxW tensor in [0, 1], converted explicitly to 8-bit HxWxC."""
    pixels = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    array = pixels.permute(1, 2, 0).numpy()
    return wandb.Image(array[..., 0] if array.shape[-1] == 1 else np.ascontiguousarray(array))


def log_per_image_table(logger: WandbLogger, scores: Scores) -> None:
    """One row per victim image: its per-image scores, original and reconstruction."""
    if not scores.per_image:
        return
    data = [
        [*row.to_dict().values(), _picture(original), _picture(guess)]
        for row, original, guess in zip(scores.per_image, scores.originals, scores.reconstructions)
    ]
    columns = [f.name for f in fields(ImageScore)] + list(WANDB_IMAGE_COLUMNS)
    logger.log_table(WANDB_TABLE, columns=columns, data=data)
