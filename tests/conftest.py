"""Shared test set-up: offline W&B in a temporary folder, one thread, helpers to run configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _offline_wandb(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.getbasetemp() / "wandb"
    monkeypatch.setenv(
        "WANDB_MODE", "offline"
    )  # each test starts offline, whatever an earlier run left
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(base))
