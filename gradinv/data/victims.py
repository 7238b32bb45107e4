"""Victim batches: the private images one simulated client trains on in one round."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gradinv.errors import ConfigError


@dataclass(frozen=True)
class VictimBatch:
    """One client's private batch: normalized images, labels and their dataset indices."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: tuple[int, ...]


def select_indices(
    available: int,
    num_victims: int,
    batch_size: int,
    victim_indices: list[int] | None,
    seed: int,
    source_field: str = "dataset.root",
) -> list[list[int]]:
    """Pick ``num_victims`` disjoint batches of ``batch_size`` indices, given or drawn by the seed."""
    if num_victims < 1:
        raise ConfigError(f"dataset.num_victims must be a positive integer, got {num_victims}.")
    if batch_size < 1:
        raise ConfigError(f"dataset.batch_size must be a positive integer, got {batch_size}.")
    wanted = num_victims * batch_size
    if victim_indices is not None:
        indices = [int(i) for i in victim_indices]
        if len(indices) != wanted:
            raise ConfigError(
                f"dataset.victim_indices must list num_victims x batch_size = {wanted} indices, "
                f"got {len(indices)}."
            )
        bad = [i for i in indices if not 0 <= i < available]
        if bad:
            raise ConfigError(f"dataset.victim_indices must lie in [0, {available}), got {bad[0]}.")
        repeated = next((i for n, i in enumerate(indices) if i in indices[:n]), None)
        if repeated is not None:
            raise ConfigError(
                f"dataset.victim_indices must name distinct images, got {repeated} twice."
            )
    else:
        if wanted > available:
            raise ConfigError(
                f"dataset.num_victims x dataset.batch_size = {wanted} exceeds the {available} "
                f"images available; lower them or point {source_field} at more images."
            )
        generator = torch.Generator().manual_seed(seed)
        indices = torch.randperm(available, generator=generator)[:wanted].tolist()
    return [indices[v * batch_size : (v + 1) * batch_size] for v in range(num_victims)]
