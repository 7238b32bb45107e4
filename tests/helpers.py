"""Compose and run gradinv configs in-process, as ``python gradinv/main.py`` (and
``gradinv/train.py``) would, and build the models several test packages share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from gradinv.cli import CONFIG_DIR
from gradinv.data.datasets import CIFAR10
from gradinv.defenses.precode import Precode
from gradinv.experiment import run
from gradinv.models.build import build_model

REPO_ROOT = Path(__file__).resolve().parents[1]
CONF = str(CONFIG_DIR)  # as initialize_config_dir takes it
QUIET = ["logger=none", "trainer.enable_progress_bar=false"]
OFFLINE = ["metrics.lpips_download=false"]  # tests never reach for the network


def compose_config(overrides: list[str], run_dir: Path) -> DictConfig:
    """The job config for ``overrides`` with its Hydra run folder set to ``run_dir``."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[*QUIET, *OFFLINE, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    return cfg


def composed(*overrides: str, hydra: bool = False) -> DictConfig:
    """The config ``gradinv/main.py`` composes for ``overrides`` (with Hydra's own block if
    ``hydra``), without running it."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def option(group: str, name: str) -> DictConfig:
    """One option of a config group as Hydra composes it (its defaults list applied)."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=[f"{group}={name}"])[group]


def run_config(overrides: list[str], run_dir: Path) -> dict[str, Any]:
    """Run one grid cell in-process and return its outcome (results.json is in ``run_dir``)."""
    cfg = compose_config(overrides, run_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return run(cfg)


def compose_train(overrides: list[str], run_dir: Path):
    """The training job config for ``overrides``, ready to train as ``python gradinv/train.py``
    would (its Hydra run folder set to ``run_dir``)."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", overrides=[*QUIET, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def precode_model(name: str = "mlp", defense: Precode | None = None) -> torch.nn.Module:
    """A grid model for CIFAR-10 with PRECODE's bottleneck (or ``defense``'s) before its head."""
    cfg = option("model", name)
    return build_model(cfg, CIFAR10.spec, 0, (defense or Precode(latent=16)).prepare_model)
