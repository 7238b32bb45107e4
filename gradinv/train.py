"""Entry point: ``python gradinv/train.py dataset=... model=... defense=...`` trains and tests."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

if __package__ in (None, ""):
    # Run as a script: import the package from the repository, not its folder's modules.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from gradinv.cli import CONFIG_DIR, run_or_exit  # noqa: E402
from gradinv.utility import train  # noqa: E402


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train one cell; a configuration error ends the process with its one-sentence message."""
    outcome = run_or_exit(train, cfg)
    return None if outcome is None else outcome["metrics"]["test_accuracy"]


if __name__ == "__main__":
    main()
