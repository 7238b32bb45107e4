"""Determinism: the same seed gives the same reconstructions, metrics and picture."""

from __future__ import annotations

from tests.helpers import run_config


def test_same_seed_gives_identical_reconstructions(tmp_path):
    overrides = [
        "model.width=32",
        "attack.optim.iterations=4",
        "dataset.num_victims=2",
        "attack.restarts=2",
    ]
    first = run_config(overrides, tmp_path / "a")
    second = run_config(overrides, tmp_path / "b")
    assert first["per_image"] == second["per_image"]
    assert first["metrics"]["psnr"] == second["metrics"]["psnr"]
    pictures = [(tmp_path / d / "reconstruction.png").read_bytes() for d in ("a", "b")]
    assert pictures[0] == pictures[1]
