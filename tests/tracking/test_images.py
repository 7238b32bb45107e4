"""The reconstruction picture is legible without zooming, and its tensors are kept beside it."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.helpers import run_config


def test_reconstruction_figure_is_readable_and_the_tensors_are_kept(tmp_path: Path) -> None:
    from PIL import Image

    outcome = run_config(["attack.optim.iterations=3", "dataset.num_victims=2"], tmp_path)
    width, height = Image.open(tmp_path / "reconstruction.png").size
    assert width >= 2 * 96 and height >= 2 * 96  # two 28 px digits, each scaled to >= 96 px
    saved = torch.load(tmp_path / "reconstruction.pt", weights_only=True)
    assert saved["originals"].shape == saved["reconstructions"].shape == (2, 1, 28, 28)
    assert outcome["per_image"][0]["psnr"] > 0
