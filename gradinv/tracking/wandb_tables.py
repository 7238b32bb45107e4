"""A W&B Table of per-image metrics with each original beside its reconstruction, for browsing."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import wandb
from lightning.pytorch.loggers import WandbLogger

TABLE_KEY = "per_image"


def _picture(image: torch.Tensor) -> wandb.Image:
    """A W&B image from one CxHxW tensor in [0, 1], converted explicitly to 8-bit HxWxC."""
    pixels = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    array = pixels.permute(1, 2, 0).numpy()
    return wandb.Image(array[..., 0] if array.shape[-1] == 1 else np.ascontiguousarray(array))


def log_per_image_table(logger: WandbLogger, scored: dict[str, Any]) -> None:
    """One row per victim image: its per-image metrics, original and reconstruction."""
    rows = scored["per_image"]
    if not rows:
        return
    fields = list(rows[0])
    data = [
        [row[name] for name in fields] + [_picture(original), _picture(guess)]
        for row, original, guess in zip(rows, scored["originals"], scored["reconstructions"])
    ]
    logger.log_table(TABLE_KEY, columns=[*fields, "original", "reconstruction"], data=data)
