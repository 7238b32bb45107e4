"""Score reconstructions against the private record; the only code that reads both."""

from __future__ import annotations

from statistics import fmean
from typing import Any, Sequence

import torch

from gradinv.attacks.base import Reconstruction
from gradinv.data.spec import DataSpec
from gradinv.federated.update import PrivateRecord
from gradinv.metrics.image_quality import image_quality
from gradinv.metrics.masks import mask_metrics

METRICS = ("mse", "psnr", "ssim", "lpips")


def evaluate(
    records: Sequence[PrivateRecord], reconstructions: Sequence[Reconstruction], spec: DataSpec
) -> dict[str, Any]:
    """Per-image and mean metrics, plus the matched pixel-space images for the picture."""
    per_image: list[dict[str, Any]] = []
    originals, matched, orders = [], [], []
    lpips_reason = None
    for victim, (record, rec) in enumerate(zip(records, reconstructions)):
        truth = spec.denormalize(record.images.detach().cpu())
        guess = spec.denormalize(rec.images.detach().cpu())
        quality = image_quality(truth, guess)
        lpips_reason = quality.get("lpips_reason", lpips_reason)
        order = quality["order"]
        orders.append(order)
        for j, index in enumerate(record.indices):
            per_image.append(
                {
                    "victim": victim,
                    "index": index,
                    "label": int(record.labels[j]),
                    "predicted_label": int(rec.labels[order[j]]),
                    **{name: quality[name][j] for name in METRICS},
                }
            )
        originals.append(truth)
        matched.append(guess[order])
    metrics = {name: _mean([row[name] for row in per_image]) for name in METRICS}
    metrics["label_accuracy"] = fmean(
        float(row["label"] == row["predicted_label"]) for row in per_image
    )
    metrics["gradient_loss"] = fmean(rec.gradient_loss for rec in reconstructions)
    reasons = {"lpips": lpips_reason} if metrics["lpips"] is None else {}
    masks, mask_reason = mask_metrics(
        [record.masks for record in records], [rec.masks for rec in reconstructions], orders
    )
    metrics.update(masks)
    if mask_reason is not None:
        reasons["mask_accuracy"] = mask_reason
    return {
        "metrics": metrics,
        "unavailable": reasons,
        "per_image": per_image,
        "originals": torch.cat(originals),
        "reconstructions": torch.cat(matched),
    }


def _mean(values: list[float | None]) -> float | None:
    """The mean, or None when any value is missing (a metric is never partly assumed)."""
    if any(v is None for v in values):
        return None
    return fmean(values)
