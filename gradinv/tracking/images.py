"""The picture of what leaked, readable without zooming, and the raw tensors beside it.

``reconstruction.png`` shows originals above reconstructions, each column titled with its
PSNR, SSIM and label (and the predicted label when it differs), under a title naming the cell;
images are scaled up with nearest-neighbour interpolation so that one MNIST digit is legible.
``reconstruction.pt`` keeps the matched originals and reconstructions (pixel space, [0, 1]) so
that analysis can recompute any metric later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from gradinv.schema import TENSORS_FILE, ImageScore  # noqa: E402

MIN_PIXELS = 96  # each image is shown at least this many screen pixels wide


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
) -> None:
    """Write the labelled figure to ``path`` and the tensors to ``TENSORS_FILE`` beside it."""
    torch.save({"originals": originals.cpu(), "reconstructions": reconstructions.cpu()},
               path.parent / TENSORS_FILE)
    count, size = len(originals), originals.shape[-1]
    inches = max(size, MIN_PIXELS) / 100
    figure, axes = plt.subplots(
        2, count, figsize=(max(inches * count, 3.2), inches * 2 + 0.9), squeeze=False, dpi=100
    )
    for column in range(count):
        for row, images in enumerate((originals, reconstructions)):
            ax = axes[row][column]
            image = images[column].detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
            ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image,
                      cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        if column < len(per_image):
            axes[1][column].set_xlabel(_caption(per_image[column]), fontsize=7)
    axes[0][0].set_ylabel("original", fontsize=8)
    axes[1][0].set_ylabel("reconstruction", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=8, wrap=True)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _caption(row: ImageScore) -> str:
    """'31.2 dB / SSIM 0.91' over 'label 3' (with 'as 5' when the recovered label differs)."""
    parts = []
    if row.psnr is not None:
        parts.append(f"{row.psnr:.1f} dB")
    if row.ssim is not None:
        parts.append(f"SSIM {row.ssim:.2f}")
    label = f"label {row.label}"
    if row.predicted_label not in (None, row.label):
        label += f" as {row.predicted_label}"
    return "\n".join([" / ".join(parts), label])
