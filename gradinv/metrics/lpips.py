"""LPIPS (AlexNet) through torchmetrics, used only when its backbone weights are verifiably present.

The backbone is torchvision's ImageNet AlexNet. We look for the file in the torch hub cache and
check its SHA-256 against the prefix in its name; when it is absent, ``fetch_weights`` asks
torchvision's weights API for it (hash-checked, with a short network timeout, never a prompt,
torchvision's "Downloading" line only when verbose). Otherwise LPIPS is reported as unavailable
(null) with a reason, in one warning that says how to enable it or skip the download attempt.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import socket
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"
SHA256_PREFIX = "7be5be79"
MIN_SIZE = 32
#: Why this process's download attempt failed ("failed"), once ``fetch_weights`` tried.
DOWNLOAD: dict[str, str] = {}


def weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@cache
def unavailable_reason() -> str | None:
    """Why LPIPS cannot be computed here, or None when the verified weights are in place."""
    path = weights_path()
    if not path.is_file():
        reason = f"LPIPS backbone weights {WEIGHTS_FILE} are not in {path.parent}"
    elif not sha256_of(path).startswith(SHA256_PREFIX):
        reason = f"{path} does not match its SHA-256 prefix {SHA256_PREFIX}"
    else:
        return None
    if "failed" in DOWNLOAD:
        reason += f", and downloading it failed ({DOWNLOAD['failed']})"
    return reason


@cache
def fetch_weights(timeout: float = 10.0, verbose: bool = False) -> str | None:
    """Download the backbone into the hub cache unless it is there; None when LPIPS can run,
    else why not. Tried once per process; a machine without network fails within ``timeout``.
    Torchvision's "Downloading" line is shown only when ``verbose``."""
    if unavailable_reason() is None:
        return None
    from torchvision.models import AlexNet_Weights

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        with contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO()):
            AlexNet_Weights.IMAGENET1K_V1.get_state_dict(progress=verbose, check_hash=True)
    except Exception as error:  # noqa: BLE001 - any network or hash failure means: no LPIPS
        DOWNLOAD["failed"] = f"{type(error).__name__}: {error}"
    finally:
        socket.setdefaulttimeout(previous)
        unavailable_reason.cache_clear()
    return unavailable_reason()


@cache
def _metric():
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    return LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True, reduction="none")


def lpips_per_image(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """LPIPS of each image pair in [0, 1], or None (after one warning) when unavailable.

    Grayscale images are repeated to three channels; images below 32 px are upsampled
    bilinearly to 32 px, the smallest input AlexNet's feature stack accepts.
    """
    reason = unavailable_reason()
    if reason is not None:
        _warn_once(reason)
        return None
    if preds.shape[1] == 1:
        preds, target = preds.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
    if preds.shape[-1] < MIN_SIZE:
        preds = F.interpolate(preds, size=MIN_SIZE, mode="bilinear", align_corners=False)
        target = F.interpolate(target, size=MIN_SIZE, mode="bilinear", align_corners=False)
    metric = _metric()
    with torch.no_grad():
        values = metric(preds.cpu().float(), target.cpu().float())
    metric.reset()
    return values.view(-1)


@cache
def _warn_once(reason: str) -> None:
    """One line: LPIPS is null, why, and how to enable it or to skip the download attempt."""
    skip = (
        "or set metrics.lpips_download=false to skip the download attempt"
        if "failed" in DOWNLOAD
        else "or let metrics.lpips_download=true download it"
    )
    log.warning(
        "LPIPS is recorded as null: %s; place torchvision's AlexNet weights file %s in %s to "
        "enable it, %s.",
        reason,
        WEIGHTS_FILE,
        weights_path().parent,
        skip,
    )
