"""Build the configured architecture for a dataset's shape, check its contract, load its weights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gradinv.data.spec import DataSpec
from gradinv.errors import ConfigError, instantiate
from gradinv.models.dropout import check_rate
from gradinv.models.protocol import check_model


def build_model(
    cfg: DictConfig | dict[str, Any],
    spec: DataSpec,
    seed: int,
    prepare: Callable[[nn.Module], nn.Module] | None = None,
) -> nn.Module:
    """Instantiate ``cfg`` (a ``model`` group entry) for ``spec``; weights from the seed or a checkpoint.

    The model is checked against ``gradinv.models.protocol`` (after ``prepare``, as the client
    trains it), so a model that breaks the contract stops here with one sentence.

    ``prepare`` (a defense's ``prepare_model``) changes the model before its checkpoint is
    loaded, so that a checkpoint trained with a model-side defense loads with its parameters.
    """
    fields = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    checkpoint = fields.pop("checkpoint", None)
    check_rate(fields.get("dropout", 0.0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = instantiate(fields, input_shape=spec.shape, num_classes=spec.num_classes)
        if prepare is not None:
            model = prepare(model)
    check_model(model, spec, fields["_target_"].rsplit(".", 1)[-1])
    if checkpoint is not None:
        _load_checkpoint(model, Path(checkpoint))
    return model


def _load_checkpoint(model: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"model.checkpoint must be an existing file, got '{path}'.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle, zip and weights-only errors alike
        raise ConfigError(
            f"model.checkpoint '{path}' is not a PyTorch state_dict file "
            f"({type(error).__name__}); save one with torch.save(model.state_dict(), path)."
        ) from None
    if not isinstance(state, dict):
        raise ConfigError(
            f"model.checkpoint '{path}' holds a {type(state).__name__}, not a state_dict."
        )
    state = state.get("state_dict", state)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ConfigError(
            f"model.checkpoint '{path}' does not match the configured architecture: {error}"
        ) from error
