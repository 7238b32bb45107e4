"""A real sweep for the analysis's reports: Hydra's records, offline W&B runs and failed cells."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

#: IG and DIA on the MNIST MLP at p = 0 and 0.25, a few steps each, and two cells that fail
#: (p = 1.0 is refused): what a real sweep leaves for the analysis, W&B runs included.
SWEEP = [
    "attack=ig,dia",
    "model.dropout=0,0.25,1.0",
    "model.width=16",
    "attack.optim.iterations=4",
    "attack.log_psnr_every=2",
    "trainer.enable_progress_bar=false",
    "metrics.lpips_download=false",
]


@dataclass(frozen=True)
class Sweep:
    """A sweep that ran: its folder, the ``hydra.sweep.dir`` it was given and its W&B group."""

    folder: Path
    given: str
    group: str


@pytest.fixture(scope="session")
def real_sweep(tmp_path_factory) -> Sweep:
    """``SWEEP``, run once per test session (W&B offline, in its own folders) into a folder named
    as Hydra's default is, by the time it started: its W&B group is that folder resolved."""
    given = f"{tmp_path_factory.mktemp('real_sweep')}/sweep-${{now:%H-%M-%S}}"
    wandb = tmp_path_factory.mktemp("real_sweep_wandb")
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        **{
            var: str(wandb)
            for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR")
        },
    }
    done = subprocess.run(
        [sys.executable, "gradinv/main.py", "-m", *SWEEP, f"hydra.sweep.dir={given}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = re.search(r"gradinv: sweep (\S+): 4 ok, 2 not ok", done.stderr)
    assert summary, done.stderr[-3000:]
    return Sweep(Path(summary[1]), given, summary[1])  # the summary names the folder as the group
