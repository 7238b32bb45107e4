"""W&B through Lightning's WandbLogger, offline unless it can actually reach its server.

A run never waits on the network: ``mode=auto`` goes online only with an API key and a server
that answers within a second; otherwise W&B writes offline files for ``wandb sync`` later.
"""

from __future__ import annotations

import logging
import os

import wandb
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import WandbLogger

from gradinv.errors import ConfigError
from gradinv.tracking.wandb_server import has_api_key, server_reachable

log = logging.getLogger(__name__)
MODES = ("auto", "online", "offline")


def resolve_mode(mode: str) -> str:
    """'online' or 'offline' for the requested mode; auto falls back to offline."""
    if mode not in MODES:
        raise ConfigError(f"logger.mode must be one of {MODES}, got '{mode}'.")
    if os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        return "offline"
    if mode == "auto":
        return "online" if has_api_key() and server_reachable() else "offline"
    if mode == "online" and not has_api_key():
        raise ConfigError(
            "logger.mode=online needs a W&B API key (set WANDB_API_KEY or run `wandb login` "
            "first); logger.mode=auto or offline writes offline runs to sync later."
        )
    return mode


def sweep_group() -> str | None:
    """The Hydra sweep folder when this job is part of a multirun (its runs share a W&B group)."""
    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    return str(hydra.sweep.dir) if hydra.mode == RunMode.MULTIRUN else None


def make_wandb_logger(
    save_dir: str,
    mode: str = "auto",
    project: str = "gradinv",
    entity: str | None = None,
    group: str | None = None,
    name: str | None = None,
    tags: list[str] | None = None,
) -> WandbLogger:
    """A WandbLogger writing under ``save_dir``, online only when that cannot block the run.

    Without an explicit ``group``, the jobs of one sweep are grouped by their sweep folder.
    """
    if wandb.run is not None:
        # Left open by an earlier job of this sweep that failed (a finished job closes its run):
        # without this, Lightning would log this job into that run.
        wandb.finish(exit_code=1)
    resolved = resolve_mode(mode)
    if resolved == "offline":
        log.info("W&B runs offline in %s; upload later with `wandb sync`.", save_dir)
    logger = WandbLogger(
        save_dir=save_dir,
        offline=resolved == "offline",
        project=project,
        entity=entity,
        group=group or sweep_group(),
        name=name,
        tags=list(tags or []),
        settings={"init_timeout": 30, "silent": True},
    )
    # Lightning passes anonymous=None to wandb.init, which current wandb answers with a
    # deprecation warning on every run; the key has no effect, so it is not passed on.
    logger._wandb_init.pop("anonymous", None)
    return logger


def finish_run(logger: WandbLogger) -> None:
    """Close the W&B run of a finished job, so that the next job of a sweep starts its own."""
    logger.experiment.finish()
