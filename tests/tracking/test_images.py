"""The reconstruction picture is legible without zooming, and its tensors are kept beside it."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from gradinv.schema import ImageScore
from gradinv.tracking.images import reconstruction_figure
from tests.helpers import run_config


def test_reconstruction_figure_is_readable_and_the_tensors_are_kept(tmp_path: Path) -> None:
    from PIL import Image

    outcome = run_config(["attack.optim.iterations=3", "dataset.num_victims=2"], tmp_path)
    width, height = Image.open(tmp_path / "reconstruction.png").size
    assert width >= 2 * 96 and height >= 2 * 96  # two 28 px digits, each scaled to >= 96 px
    saved = torch.load(tmp_path / "reconstruction.pt", weights_only=True)
    assert saved["originals"].shape == saved["reconstructions"].shape == (2, 1, 28, 28)
    for i, row in enumerate(outcome["per_image"]):  # the picture's tensors are the scored ones
        mse = (saved["originals"][i] - saved["reconstructions"][i]).pow(2).mean()
        assert row["psnr"] == pytest.approx(float(10 * torch.log10(1 / mse)), abs=1e-3)


def _overlap(a, b) -> bool:
    """Whether two display boxes share more than an edge."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5 and min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5


@pytest.mark.parametrize(
    "victims, batch, labels_known",
    [
        (1, 1, True),
        (1, 4, False),
        (1, 8, True),
        (2, 4, False),
        (3, 4, True),
        (2, 8, False),
        (8, 1, False),
    ],
)
def test_captions_never_overlap_and_each_victim_has_its_own_panel(victims, batch, labels_known):
    count = victims * batch
    scores = [
        ImageScore(
            victim=i // batch,
            index=i,
            label=i % 10,
            predicted_label=(3 * i) % 10,
            mse=0.01,
            psnr=22.4 + i,
            ssim=0.7328,
            lpips=None,
        )
        for i in range(count)
    ]
    figure = reconstruction_figure(
        torch.rand(count, 3, 32, 32),
        torch.rand(count, 3, 32, 32),
        scores,
        "dataset=cifar10 attack=ig",
        labels_known,
    )
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    panels = figure.subfigs[:victims]
    texts, images = [], []
    for victim, panel in enumerate(panels):
        for ax in panel.axes:
            images.append(ax.get_window_extent(renderer))
            assert (
                panel.bbox.x0 <= images[-1].x0 and images[-1].x1 <= panel.bbox.x1
            )  # inside its panel
            assert panel.bbox.y0 <= images[-1].y0 and images[-1].y1 <= panel.bbox.y1
            texts += [t for t in (ax.title, ax.xaxis.label, ax.yaxis.label) if t.get_text()]
        if victims > 1:
            (title,) = panel.texts
            assert title.get_text() == f"victim {victim}"
            texts.append(title)
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert not any(_overlap(a, b) for a, b in combinations(boxes, 2))
    assert not any(_overlap(text, image) for text in boxes for image in images)
    assert not any(_overlap(a.bbox, b.bbox) for a, b in combinations(panels, 2))
    words = [t.get_text() for t in texts]
    assert [w for w in words if w.startswith("true label")] == [
        f"true label {s.label}" for s in scores
    ]
    last_lines = [w.splitlines()[-1] for w in words if "dB" in w]
    assert last_lines == (
        ["label given"] * count
        if labels_known
        else [f"inferred {s.predicted_label}" for s in scores]
    )
    plt.close(figure)
