"""Image archives in NumPy ``.npz`` form: the shipped samples and any user file of that layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from gradinv.errors import ConfigError

SAMPLES = Path(__file__).parent / "samples"


def load_archive(path: str | Path, channels: int) -> TensorDataset:
    """Load ``images`` (N,H,W or N,H,W,C uint8) and ``labels`` into a dataset of [0, 1] tensors."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"dataset.root must be an existing folder or .npz file, got '{path}'.")
    with np.load(path) as archive:
        if "images" not in archive or "labels" not in archive:
            raise ConfigError(f"dataset.root '{path}' must hold arrays 'images' and 'labels'.")
        images = torch.from_numpy(archive["images"]).float().div(255)
        labels = torch.from_numpy(archive["labels"]).long()
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    if images.shape[1] != channels:
        raise ConfigError(
            f"dataset.root '{path}' holds {images.shape[1]}-channel images, "
            f"but this dataset needs {channels}."
        )
    return TensorDataset(images.contiguous(), labels)
