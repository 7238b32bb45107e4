"""Per-image reconstruction quality on de-normalized images in [0, 1] (torchmetrics conventions)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from gradinv.metrics.lpips import lpips_per_image, unavailable_reason
from gradinv.metrics.matching import match_order
from gradinv.schema import IMAGE_METRICS

#: SSIM's Gaussian window in pixels: torchmetrics' default sigma 1.5 spans 11 x 11, as in Wang et al. 2004.
SSIM_WINDOW = 11
#: The smallest image side SSIM takes: torchmetrics reflect-pads each side by half the window,
#: and a reflection needs more pixels than it pads. Every model but ViT, whose patch size must
#: divide the image size, runs on images this small.
MIN_IMAGE_SIZE = SSIM_WINDOW // 2 + 1

#: A metric of each image pair: (reconstructions, originals), both (N, C, H, W) in [0, 1], to
#: its (N,) values, or None when it cannot be computed (LPIPS without verified weights).
PerImage = Callable[[torch.Tensor, torch.Tensor], "torch.Tensor | None"]


def mse_per_image(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each image over its pixels and channels (see ``schema.IMAGE_METRICS``)."""
    return F.mse_loss(preds, target, reduction="none").flatten(1).mean(dim=1)


def psnr_per_image(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR of each image in dB, peak 1."""
    return peak_signal_noise_ratio(
        preds, target, data_range=1.0, reduction="none", dim=(1, 2, 3)
    ).view(-1)


def ssim_per_image(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM of each image with torchmetrics' 11 x 11 Gaussian window."""
    return structural_similarity_index_measure(
        preds, target, data_range=1.0, reduction="none"
    ).view(-1)


#: The function of each metric in ``schema.IMAGE_METRICS`` (which holds its label and direction).
PER_IMAGE: dict[str, PerImage] = {
    "mse": mse_per_image,
    "psnr": psnr_per_image,
    "ssim": ssim_per_image,
    "lpips": lpips_per_image,
}


def image_quality(originals: torch.Tensor, reconstructions: torch.Tensor) -> dict[str, list]:
    """Every metric of ``IMAGE_METRICS`` per image, after pairing each original with its best match.

    Returns lists of per-image values (None for an unavailable metric), ``order`` (the
    reconstruction index matched to each original) and ``lpips_reason`` when LPIPS is null.
    """
    originals = originals.detach().cpu().float()
    reconstructions = reconstructions.detach().cpu().float()
    order = match_order(originals, reconstructions)
    preds = reconstructions[order]
    values = {name: PER_IMAGE[name](preds, originals) for name in IMAGE_METRICS}
    result: dict[str, list] = {"order": order.tolist()}
    result.update(
        {name: [None] * len(preds) if v is None else v.tolist() for name, v in values.items()}
    )
    if values["lpips"] is None:
        result["lpips_reason"] = unavailable_reason()
    return result
