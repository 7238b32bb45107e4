"""How well an attack recovered the client's dropout masks (DIA's mask accuracy).

Learned masks are continuous; binarized at 0.5 they are compared element-wise with the
recorded binary masks, per dropout site and pooled over all sites.
"""

from __future__ import annotations

import torch


def mask_agreement(
    truth: dict[str, torch.Tensor], learned: dict[str, torch.Tensor], order: list[int]
) -> dict[str, tuple[int, int]]:
    """(matching elements, elements) per mask key.

    ``order[j]`` is the learned batch row matched to original ``j``, as in the image matching.
    """
    counts = {}
    for key, true_mask in truth.items():
        guess = learned[key].detach().cpu()[order] >= 0.5
        counts[key] = (int((guess == (true_mask.detach().cpu() >= 0.5)).sum()), true_mask.numel())
    return counts


def mask_accuracy(counts: list[dict[str, tuple[int, int]]]) -> dict[str, float]:
    """Accuracy per site (``mask_accuracy/<site>``) and overall, pooled over victims and sites."""
    totals: dict[str, list[int]] = {}
    for victim in counts:
        for key, (hits, size) in victim.items():
            total = totals.setdefault(key.removesuffix(".mask"), [0, 0])
            total[0] += hits
            total[1] += size
    result = {f"mask_accuracy/{site}": hits / size for site, (hits, size) in totals.items()}
    hits, size = (sum(t[i] for t in totals.values()) for i in (0, 1))
    return {"mask_accuracy": hits / size, **result}


def mask_metrics(
    truths: list[dict[str, torch.Tensor]],
    learned: list[dict[str, torch.Tensor] | None],
    orders: list[list[int]],
) -> tuple[dict[str, float | None], str | None]:
    """Mask accuracy over all victims, or (null, the reason) if nothing compares."""
    if not any(truths):
        return {"mask_accuracy": None}, "no dropout masks were sampled (p = 0 or client.mode=eval)"
    if not all(learned):
        return {"mask_accuracy": None}, "the attack learns no dropout masks"
    counts = [mask_agreement(t, m, o) for t, m, o in zip(truths, learned, orders)]
    return mask_accuracy(counts), None
