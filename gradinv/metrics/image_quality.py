"""Per-image reconstruction quality on de-normalized images in [0, 1] (torchmetrics conventions)."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from gradinv.metrics.lpips import lpips_per_image, unavailable_reason
from gradinv.metrics.matching import match_order

#: SSIM's Gaussian window in pixels: torchmetrics' default sigma 1.5 spans 11 x 11, as in Wang et al. 2004.
SSIM_WINDOW = 11
#: The smallest image side SSIM takes: torchmetrics reflect-pads each side by half the window,
#: and a reflection needs more pixels than it pads. Every model but ViT, whose patch size must
#: divide the image size, runs on images this small.
MIN_IMAGE_SIZE = SSIM_WINDOW // 2 + 1


def image_quality(originals: torch.Tensor, reconstructions: torch.Tensor) -> dict[str, list]:
    """MSE, PSNR, SSIM and LPIPS per image, after pairing each original with its best match.

    Returns lists of per-image values, ``order`` (the reconstruction index matched to each
    original) and ``lpips_reason`` when LPIPS is null.
    """
    originals = originals.detach().cpu().float()
    reconstructions = reconstructions.detach().cpu().float()
    order = match_order(originals, reconstructions)
    preds = reconstructions[order]
    mse = (preds - originals).pow(2).flatten(1).mean(dim=1)
    psnr = peak_signal_noise_ratio(
        preds, originals, data_range=1.0, reduction="none", dim=(1, 2, 3)
    )
    ssim = structural_similarity_index_measure(preds, originals, data_range=1.0, reduction="none")
    lpips = lpips_per_image(preds, originals)
    result = {
        "order": order.tolist(),
        "mse": mse.tolist(),
        "psnr": psnr.view(-1).tolist(),
        "ssim": ssim.view(-1).tolist(),
        "lpips": lpips if lpips is not None else [None] * len(originals),
    }
    if lpips is None:
        result["lpips_reason"] = unavailable_reason()
    return result
