"""Entry point: ``python gradinv/main.py [overrides]`` or ``-m`` for a sweep over the grid."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

if __package__ in (None, ""):
    # Run as a script: import the package from the repository, not its folder's modules.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from gradinv.cli import CONFIG_DIR, run_or_exit  # noqa: E402
from gradinv.experiment import run  # noqa: E402


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run one grid cell; a configuration error ends the process with its one-sentence message."""
    outcome = run_or_exit(run, cfg)
    return None if outcome is None else outcome["metrics"]["psnr"]


if __name__ == "__main__":
    main()
