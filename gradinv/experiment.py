"""One configured run: data, model, client, attack, evaluation, and the run's records."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gradinv.attacks.base import Attack, AttackRuntime, ServerView
from gradinv.config_names import check_top_level
from gradinv.data.datasets import ImageDataset
from gradinv.defenses.base import Defense
from gradinv.device import run_device
from gradinv.errors import ConfigError, instantiate
from gradinv.evaluation import Scores, evaluate
from gradinv.federated.client import FederatedClient
from gradinv.metrics.lpips import fetch_weights
from gradinv.metrics.monitor import ConvergenceMonitor
from gradinv.models.build import build_model
from gradinv.schema import (
    GROUPS,
    OK,
    PICTURE_FILE,
    WANDB_METRICS_PREFIX,
    WANDB_PICTURE,
    WANDB_PRIVACY,
    WANDB_TIMING_PREFIX,
    RunRecord,
    Timing,
)
from gradinv.tracking.console import set_verbosity
from gradinv.tracking.images import reconstruction_grid, save_reconstruction
from gradinv.tracking.progress import AttackProgressBar
from gradinv.tracking.results import ResultsFile, recording
from gradinv.tracking.resume import drop_unused_attack_fields, resumed
from gradinv.tracking.wandb_logger import finish_run
from gradinv.tracking.wandb_tables import log_per_image_table
from gradinv.typecheck import check_fields, matches

log = logging.getLogger(__name__)


def choices(cfg: DictConfig, groups: tuple[str, ...] = GROUPS) -> dict[str, Any]:
    """The grid cell of this run: group choices, dropout rate and seed."""
    picked = HydraConfig.get().runtime.choices
    cell: dict[str, Any] = {group: picked.get(group) for group in groups}
    cell["dropout"] = _number(cfg.model.get("dropout", 0.0), float)
    cell["seed"] = _number(cfg.seed, int)
    return cell


def _number(value: Any, kind: type) -> Any:
    """``value`` as ``kind`` when it is a number; as given otherwise (the checks then name it)."""
    return kind(value) if matches(value, float) else value


def run_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Execute the run and return its results.json content; the file says 'running' until it
    ends 'ok' or 'failed'.

    With ``resume=true`` a finished run of the same configuration in the run's folder is
    returned as it is (``gradinv.tracking.resume``); without it, a folder holding a finished
    run is refused (``recording``).
    """
    set_verbosity(bool(cfg.get("verbose", False)))
    cell = choices(cfg)
    drop_unused_attack_fields(cfg, cell["attack"])
    config = OmegaConf.to_container(cfg, resolve=True)
    if cfg.get("resume"):
        stored = resumed(run_dir(), config)
        if stored is not None:
            return stored
    with recording(run_dir(), RunRecord(choices=cell, config=config), resumable=True) as results:
        return _execute(cfg, cell, results)


def build_setting(cfg: DictConfig) -> tuple[ImageDataset, Defense, nn.Module]:
    """Check every group's values against its target's types, seed everything, then build the
    dataset, the defense and the (defended) global model."""
    check_top_level(cfg, HydraConfig.get().job.config_name)
    check_seed(cfg.seed)
    check_trainer(cfg.trainer, attacks="attack" in cfg)
    for group in ("dataset", "model", "client", "defense", "attack"):
        if group in cfg:
            check_fields(group, cfg[group], handled=MODEL_FIELDS if group == "model" else ())
    L.seed_everything(cfg.seed, verbose=False)
    dataset = instantiate(cfg.dataset)
    defense = instantiate(cfg.defense)
    return dataset, defense, build_model(cfg.model, dataset.spec, cfg.seed, defense.prepare_model)


#: The model field ``build_model`` reads itself, beside the model class's own.
MODEL_FIELDS = ("checkpoint",)
#: numpy's seed range, which Lightning's ``seed_everything`` enforces.
SEEDS = (0, 2**32 - 1)
#: The accelerators gradinv runs on; Lightning's others (tpu, hpu, mps) are untested here.
ACCELERATORS = ("auto", "cpu", "cuda", "gpu")
#: The precision every attack runs in, as Lightning spells float32: with 64-true or bf16-true the
#: optimization attacks meet float32 tensors and stop, and 16-mixed on a CPU becomes bf16-mixed,
#: which runs with other numbers.
PRECISIONS = ("32-true", "32", 32)


def check_seed(seed: Any) -> None:
    """The seed is an integer numpy accepts."""
    low, high = SEEDS
    if not (matches(seed, int) and low <= seed <= high):
        raise ConfigError(f"seed must be an integer in [{low}, {high}], got {seed!r}.")


def check_trainer(trainer: DictConfig, attacks: bool) -> None:
    """An accelerator gradinv runs on and, for an attack, a precision the attacks run in."""
    accelerator = trainer.get("accelerator")
    if accelerator not in ACCELERATORS:
        raise ConfigError(
            f"trainer.accelerator must be one of {', '.join(ACCELERATORS)}, got {accelerator!r}."
        )
    precision = trainer.get("precision")
    if attacks and precision not in PRECISIONS:
        raise ConfigError(
            f"trainer.precision must be 32-true, the precision every attack runs in, got {precision!r}."
        )


def check_compatible(
    cell: dict[str, Any], attack: Attack, defense: Defense, client: FederatedClient
) -> None:
    """Stop on an attack that cannot invert what this defense and client share: a closed-form
    attack (``needs_exact_update``) inverts one exact gradient, neither a perturbed update nor
    FedAvg's local steps."""
    if attack.needs_exact_update and defense.perturbs_update:
        raise ConfigError(
            f"defense={cell['defense']} perturbs the update, which attack={cell['attack']} "
            "cannot invert: use defense=none or an optimization attack."
        )
    if attack.needs_exact_update and client.local_steps is not None:
        raise ConfigError(
            f"attack={cell['attack']} inverts one exact gradient, not FedAvg's local steps: "
            "use client=fedsgd or an optimization attack."
        )


def _execute(cfg: DictConfig, cell: dict[str, Any], results: ResultsFile) -> dict[str, Any]:
    started = time.perf_counter()
    dataset, defense, model = build_setting(cfg)
    spec = dataset.spec
    attack = instantiate(cfg.attack)
    client = instantiate(cfg.client, model=model, defense=defense)
    check_compatible(cell, attack, defense, client)
    victims = dataset.victims(cfg.seed)
    device = run_device(cfg.trainer.accelerator)
    client = client.to(device)
    server = ServerView.of(
        model, spec, client.batch_statistics, defense.skippable_parameters(model)
    )
    updates, records = zip(*(client.share(victim) for victim in victims))
    privacy = client.privacy(updates[0].batch_size)

    logger = instantiate(cfg.logger) if cfg.get("logger") else None
    if logger is not None:
        settings = {**cell, "iterations": budget(cfg)}
        logger.log_hyperparams(
            settings if privacy is None else {**settings, WANDB_PRIVACY: privacy}
        )

    def make_trainer(callbacks: list[L.Callback]) -> L.Trainer:
        bar = [AttackProgressBar()] if cfg.trainer.get("enable_progress_bar", True) else []
        return instantiate(
            cfg.trainer, logger=logger or False, callbacks=[*callbacks, *bar], max_epochs=1
        )

    monitor = ConvergenceMonitor(
        [r.images for r in records],
        [r.masks for r in records],
        spec,
        int(cfg.attack.get("log_psnr_every", 0)),
    )
    runtime = AttackRuntime(seed=int(cfg.seed), make_trainer=make_trainer, monitors=[monitor])
    attack_started = time.perf_counter()
    reconstructions = attack.reconstruct(server, list(updates), runtime)
    attack_seconds = time.perf_counter() - attack_started

    if cfg.get("metrics", {}).get("lpips_download", False):
        fetch_weights(verbose=bool(cfg.get("verbose", False)))
    scores = evaluate(records, reconstructions, spec, attack.gradient_metric)
    save_reconstruction(
        scores.originals,
        scores.reconstructions,
        run_dir() / PICTURE_FILE,
        scores.per_image,
        title=cell_title(cell),
        labels_known=client.share_labels,
    )
    steps = sum(rec.iterations for rec in reconstructions)
    timing = Timing(
        total_seconds=time.perf_counter() - started,
        attack_seconds=attack_seconds,
        iterations=budget(cfg),
        optimizer_steps=steps,
        seconds_per_iteration=attack_seconds / steps if steps else None,
    )
    if logger is not None:
        _log_final(logger, scores, timing)
    results.write(
        status=OK,
        knowledge={**attack.knowledge(), **client.knowledge()},
        privacy=privacy,
        attack_report=attack.report(),
        metrics=scores.metrics,
        unavailable=scores.unavailable,
        per_image=scores.per_image,
        timing=timing,
        curve=monitor.curve,
        picture=PICTURE_FILE,
        device=str(device),
    )
    log.info(
        "PSNR %s dB, SSIM %s, LPIPS %s in %.1f s",
        _fmt(scores.metrics["psnr"]),
        _fmt(scores.metrics["ssim"]),
        _fmt(scores.metrics["lpips"]),
        timing.total_seconds,
    )
    return results.record.to_dict()


def budget(cfg: DictConfig) -> int | None:
    """The attack's iteration budget (``attack.optim.iterations``; None for closed-form attacks)."""
    return cfg.attack.get("optim", {}).get("iterations")


def cell_title(cell: dict[str, Any]) -> str:
    """The cell in one line, e.g. 'dataset=mnist model=mlp p=0.25 defense=none attack=dia'."""
    return (
        f"dataset={cell['dataset']} model={cell['model']} p={cell['dropout']} "
        f"defense={cell['defense']} attack={cell['attack']}"
    )


def _log_final(logger, scores: Scores, timing: Timing) -> None:
    final = {f"{WANDB_METRICS_PREFIX}{k}": v for k, v in scores.metrics.items() if v is not None}
    final.update(
        {f"{WANDB_TIMING_PREFIX}{k}": v for k, v in timing.to_dict().items() if v is not None}
    )
    logger.log_metrics(final)
    if hasattr(logger, "log_image"):
        grid = reconstruction_grid(scores.originals, scores.reconstructions)
        logger.log_image(WANDB_PICTURE, [grid], caption=["originals (top) vs reconstructions"])
    logger.finalize("success")
    if isinstance(logger, WandbLogger):
        log_per_image_table(logger, scores)
        finish_run(logger)


def _fmt(value: float | None) -> str:
    return "null" if value is None else f"{value:.3f}"
