"""The picture of what leaked, readable without zooming, and the raw tensors beside it.

``reconstruction.png`` shows originals above reconstructions in one framed panel per victim,
each original titled with its true label, each reconstruction captioned with its PSNR, SSIM and
its label (given to the attacker, or the one it inferred), under a title naming the cell; images
are scaled up with nearest-neighbour interpolation so that one MNIST digit is legible.
``reconstruction.pt`` keeps the matched originals and reconstructions (pixel space, [0, 1]) so
that analysis can recompute any metric later.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from gradinv.schema import TENSORS_FILE, ImageScore  # noqa: E402

MIN_PIXELS = 96  # each image is shown at least this many screen pixels wide
MAX_COLUMNS = 8  # victims' panels wrap to a new row beyond this many images
ROW_NAMES = 0.35  # inches the first panel of a row adds for 'original' and 'reconstruction'


def reconstruction_grid(originals: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """A 2-row grid (originals above reconstructions) of images in [0, 1], e.g. for W&B."""
    pairs = torch.cat([originals.cpu(), reconstructions.cpu()])
    return make_grid(pairs, nrow=len(originals), padding=2, pad_value=1.0)


def save_reconstruction(
    originals: torch.Tensor,
    reconstructions: torch.Tensor,
    path: Path,
    per_image: Sequence[ImageScore] = (),
    title: str = "",
    labels_known: bool = True,
) -> None:
    """Write the labelled figure to ``path`` and the tensors to ``TENSORS_FILE`` beside it."""
    torch.save(
        {"originals": originals.cpu(), "reconstructions": reconstructions.cpu()},
        path.parent / TENSORS_FILE,
    )
    figure = reconstruction_figure(originals, reconstructions, per_image, title, labels_known)
    figure.savefig(path)
    plt.close(figure)


def reconstruction_figure(
    originals: torch.Tensor,
    reconstructions: torch.Tensor,
    per_image: Sequence[ImageScore] = (),
    title: str = "",
    labels_known: bool = True,
) -> Figure:
    """Originals above reconstructions, one framed panel per victim, panels wrapped to at most
    ``MAX_COLUMNS`` images a row; each original titled with its true label, each reconstruction
    captioned with its PSNR, SSIM and its label: given to the attacker, or inferred."""
    victims = _victims(per_image, len(originals))
    batch = max(len(images) for images in victims)
    columns = min(len(victims), max(1, MAX_COLUMNS // batch))
    rows = -(-len(victims) // columns)
    inches = max(originals.shape[-1], MIN_PIXELS) / 100
    widths = [batch * inches + 0.15 + ROW_NAMES * (column == 0) for column in range(columns)]
    figure = plt.figure(
        figsize=(max(sum(widths), 3.2), rows * (2 * inches + 1.05) + 0.35),
        layout="constrained",
        dpi=100,
    )
    panels = figure.subfigures(
        rows, columns, squeeze=False, width_ratios=widths, edgecolor="0.6", linewidth=1.0
    )
    for number, images in enumerate(victims):
        panel = panels[number // columns][number % columns]
        axes = panel.subplots(2, batch, squeeze=False)
        for column, image_index in enumerate(images):
            _show(axes[0][column], originals[image_index])
            _show(axes[1][column], reconstructions[image_index])
            if image_index < len(per_image):
                score = per_image[image_index]
                axes[0][column].set_title(f"true label {score.label}", fontsize=7)
                axes[1][column].set_xlabel(_caption(score, labels_known), fontsize=7)
        for column in range(len(images), batch):
            axes[0][column].set_axis_off()
            axes[1][column].set_axis_off()
        if number % columns == 0:
            axes[0][0].set_ylabel("original", fontsize=8)
            axes[1][0].set_ylabel("reconstruction", fontsize=8)
        if len(victims) > 1:
            panel.suptitle(f"victim {number}", fontsize=8)
    for unused in panels.flat[len(victims) :]:
        unused.set_frameon(False)
    if title:
        figure.suptitle(title, fontsize=8, wrap=True)
    return figure


def _victims(per_image: Sequence[ImageScore], count: int) -> list[list[int]]:
    """The positions of each victim's images (all in one victim without scores)."""
    if len(per_image) != count:
        return [list(range(count))]
    victims: dict[int, list[int]] = {}
    for position, score in enumerate(per_image):
        victims.setdefault(score.victim, []).append(position)
    return list(victims.values())


def _show(ax, image: torch.Tensor) -> None:
    pixels = image.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
    ax.imshow(
        pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels,
        cmap="gray",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _caption(row: ImageScore, labels_known: bool) -> str:
    """'31.2 dB' over 'SSIM 0.91' over 'label given' (or 'inferred 5': the attack's label)."""
    lines = []
    if row.psnr is not None:
        lines.append(f"{row.psnr:.1f} dB")
    if row.ssim is not None:
        lines.append(f"SSIM {row.ssim:.2f}")
    lines.append("label given" if labels_known else f"inferred {row.predicted_label}")
    return "\n".join(lines)
