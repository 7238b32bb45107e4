"""Score reconstructions against the private record; the only code that reads both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

import torch

from gradinv.attacks.base import Reconstruction
from gradinv.data.spec import DataSpec
from gradinv.federated.update import PrivateRecord
from gradinv.metrics.image_quality import image_quality
from gradinv.metrics.labels import label_multiset_accuracy
from gradinv.metrics.masks import mask_metrics
from gradinv.schema import IMAGE_METRICS, ImageScore


@dataclass
class Scores:
    """The run's mean metrics (with the reason for each unavailable one), its per-image scores,
    and the originals with their matched reconstructions (pixel space, [0, 1]) for the picture."""

    metrics: dict[str, float | None]
    unavailable: dict[str, str]
    per_image: list[ImageScore]
    originals: torch.Tensor
    reconstructions: torch.Tensor


def evaluate(
    records: Sequence[PrivateRecord],
    reconstructions: Sequence[Reconstruction],
    spec: DataSpec,
    gradient_metric: str,
) -> Scores:
    """Per-image and mean metrics, plus the matched pixel-space images for the picture;
    ``gradient_metric`` names what the reconstructions' ``gradient_distance`` is."""
    per_image: list[ImageScore] = []
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
                ImageScore(
                    victim=victim,
                    index=index,
                    label=int(record.labels[j]),
                    predicted_label=int(rec.labels[order[j]]),
                    **{name: quality[name][j] for name in IMAGE_METRICS},
                )
            )
        originals.append(truth)
        matched.append(guess[order])
    metrics = {name: _mean([getattr(row, name) for row in per_image]) for name in IMAGE_METRICS}
    metrics["label_accuracy"] = fmean(
        label_multiset_accuracy(record.labels.cpu(), rec.labels.cpu())
        for record, rec in zip(records, reconstructions)
    )
    metrics[gradient_metric] = fmean(rec.gradient_distance for rec in reconstructions)
    reasons = {"lpips": lpips_reason} if metrics["lpips"] is None else {}
    masks, mask_reason = mask_metrics(
        [record.masks for record in records], [rec.masks for rec in reconstructions], orders
    )
    metrics.update(masks)
    if mask_reason is not None:
        reasons["mask_accuracy"] = mask_reason
    return Scores(metrics, reasons, per_image, torch.cat(originals), torch.cat(matched))


def _mean(values: list[float | None]) -> float | None:
    """The mean, or None when any value is missing (a metric is never partly assumed)."""
    if any(v is None for v in values):
        return None
    return fmean(values)
