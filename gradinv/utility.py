"""Train the model with its defense and measure test accuracy: the utility side of a defense.

The client's own LightningModule trains on mini-batches (each optimizer step uses the update
its defense would share) and is scored on held-out images. Without a dataset root, the shipped
samples are split by the seed into train and test; with a torchvision root, the official
splits serve. The trained weights are saved as a plain state_dict for ``model.checkpoint``.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset, Subset

from gradinv.data.datasets import ImageDataset
from gradinv.data.spec import DataSpec
from gradinv.errors import ConfigError, instantiate
from gradinv.experiment import build_setting, choices, run_dir
from gradinv.federated.client import FederatedClient
from gradinv.schema import OK, TrainingRecord
from gradinv.tracking.console import set_verbosity
from gradinv.tracking.results import ResultsFile, recording
from gradinv.typecheck import matches, positive_int

log = logging.getLogger(__name__)
GROUPS = ("dataset", "model", "defense")
WEIGHTS = "model.pt"


class Normalized(Dataset):
    """Images in [0, 1] mapped to the model's input space, labels as integers."""

    def __init__(self, images: Dataset, spec: DataSpec) -> None:
        self.images = images
        self.spec = spec

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.images[index]
        return self.spec.normalize(image), int(label)


def train_test_sets(
    dataset: ImageDataset, test_fraction: float, seed: int
) -> tuple[Dataset, Dataset, str]:
    """Train and test images, and a sentence saying where they come from."""
    if dataset.download or (dataset.root is not None and not str(dataset.root).endswith(".npz")):
        parts = []
        for split in ("train", "test"):
            source = copy.copy(dataset)
            source.split = split
            parts.append(source.load())
        return parts[0], parts[1], "the dataset's official train and test splits"
    if not 0 < test_fraction < 1:
        raise ConfigError(f"train.test_fraction must lie in (0, 1), got {test_fraction}.")
    images = dataset.load()
    held_out = max(1, round(test_fraction * len(images)))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)).tolist()
    description = (
        f"one image source split by the seed: {len(images) - held_out} train / {held_out} test"
    )
    return Subset(images, order[held_out:]), Subset(images, order[:held_out]), description


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run the training and return its results.json content; the file says 'running' until it
    ends 'ok' or 'failed'."""
    set_verbosity(bool(cfg.get("verbose", False)))
    cell = choices(cfg, GROUPS)
    config = OmegaConf.to_container(cfg, resolve=True)
    with recording(run_dir(), TrainingRecord(choices=cell, config=config)) as results:
        return _execute(cfg, cell, results)


def check_training(fields: Any) -> None:
    """The ``train`` block: positive integers for epochs and batch size, a positive step size."""
    for key in ("epochs", "batch_size"):
        value = fields.get(key)
        if not positive_int(value):
            raise ConfigError(f"train.{key} must be a positive integer, got {value!r}.")
    lr = fields.get("lr")
    if not (matches(lr, float) and lr > 0):
        raise ConfigError(f"train.lr must be a positive number, got {lr!r}.")
    workers = fields.get("num_workers", 0)
    if not (matches(workers, int) and workers >= 0):
        raise ConfigError(f"train.num_workers must be a non-negative integer, got {workers!r}.")


def _execute(cfg: DictConfig, cell: dict[str, Any], results: ResultsFile) -> dict[str, Any]:
    started = time.perf_counter()
    check_training(cfg.train)
    dataset, defense, model = build_setting(cfg)
    if defense.acts_per_example:
        raise ConfigError(
            f"defense={cell['defense']} computes the gradients of a federated round "
            "per example, which gradinv's training does not do: train with another defense "
            "(Opacus' PrivacyEngine trains with DP-SGD) and attack with this one."
        )
    spec = dataset.spec
    client = FederatedClient(model, defense, lr=cfg.train.lr)
    train_set, test_set, split = train_test_sets(dataset, cfg.train.test_fraction, cfg.seed)

    def loader(images: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            Normalized(images, spec),
            batch_size=cfg.train.batch_size,
            shuffle=shuffle,
            num_workers=cfg.train.num_workers,
        )

    logger = instantiate(cfg.logger) if cfg.get("logger") else None
    if logger is not None:
        logger.log_hyperparams({**cell, **cfg.train})
    trainer = instantiate(
        cfg.trainer, logger=logger or False, max_epochs=cfg.train.epochs, callbacks=[]
    )
    trainer.fit(client, loader(train_set, True))
    train_seconds = time.perf_counter() - started
    accuracy = trainer.test(client, loader(test_set, False), verbose=False)[0]["test/accuracy"]
    torch.save(model.state_dict(), run_dir() / WEIGHTS)
    if logger is not None:
        logger.finalize("success")
    results.write(
        status=OK,
        metrics={"test_accuracy": accuracy},
        split=split,
        weights=WEIGHTS,
        timing={"total_seconds": time.perf_counter() - started, "train_seconds": train_seconds},
    )
    log.info("test accuracy %.3f (%s); weights in %s", accuracy, split, run_dir() / WEIGHTS)
    return results.record.to_dict()
