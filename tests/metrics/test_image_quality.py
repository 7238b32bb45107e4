"""Metrics: one registry of image metrics, matching, PSNR/SSIM conventions, and LPIPS only with
verified weights."""

import hashlib
import logging
import sys

import pytest
import torch
from torchmetrics import MeanSquaredError
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure
from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

from gradinv.metrics import lpips as lpips_module
from gradinv.metrics.image_quality import PER_IMAGE, image_quality
from gradinv.schema import IMAGE_METRICS


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(lpips_module, "DOWNLOAD", {})
    for cached in (
        lpips_module.unavailable_reason,
        lpips_module._warn_once,
        lpips_module.fetch_weights,
    ):
        cached.cache_clear()
    yield tmp_path / "checkpoints"
    for cached in (
        lpips_module.unavailable_reason,
        lpips_module._warn_once,
        lpips_module.fetch_weights,
    ):
        cached.cache_clear()


#: The torchmetrics class of each metric, whose ``higher_is_better`` the registry must agree with.
TORCHMETRICS = {
    "mse": MeanSquaredError,
    "psnr": PeakSignalNoiseRatio,
    "ssim": StructuralSimilarityIndexMeasure,
    "lpips": LearnedPerceptualImagePatchSimilarity,
}


def test_each_image_metric_has_one_function_and_the_direction_torchmetrics_gives_it():
    assert list(PER_IMAGE) == list(
        IMAGE_METRICS
    )  # same names, same order: the functions of the schema's metrics
    missing = set(IMAGE_METRICS) - set(TORCHMETRICS)
    assert not missing, f"name the torchmetrics class of {missing} in TORCHMETRICS"
    assert {m: IMAGE_METRICS[m].higher_is_better for m in IMAGE_METRICS} == {
        m: TORCHMETRICS[m].higher_is_better for m in IMAGE_METRICS
    }


def test_matching_undoes_a_permutation_and_psnr_follows_its_definition(hub):
    torch.manual_seed(0)
    originals = torch.rand(3, 1, 28, 28)
    noisy = (originals + 0.01 * torch.randn_like(originals)).clamp(0, 1)
    quality = image_quality(originals, noisy[[2, 0, 1]])
    assert quality["order"] == [1, 2, 0]
    mse = (noisy - originals).pow(2).flatten(1).mean(1)
    assert quality["mse"] == pytest.approx(mse.tolist(), rel=1e-5)
    assert quality["psnr"] == pytest.approx((10 * torch.log10(1 / mse)).tolist(), rel=1e-5)
    assert all(s > 0.9 for s in quality["ssim"])


def test_lpips_is_null_with_a_reason_when_weights_are_absent(hub, caplog):
    with caplog.at_level(logging.WARNING):
        first = image_quality(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
        image_quality(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    assert first["lpips"] == [None, None]
    assert "alexnet-owt-7be5be79.pth are not in" in first["lpips_reason"]
    warnings = [r for r in caplog.records if "LPIPS is recorded as null" in r.message]
    assert len(warnings) == 1 and str(hub) in warnings[0].message
    assert warnings[0].message.endswith("or let metrics.lpips_download=true download it.")


def test_lpips_refuses_a_file_whose_hash_does_not_match(hub):
    hub.mkdir(parents=True)
    (hub / lpips_module.WEIGHTS_FILE).write_bytes(b"not the weights")
    quality = image_quality(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    assert quality["lpips"] == [None]
    assert "does not match its SHA-256 prefix" in quality["lpips_reason"]


def test_lpips_is_computed_when_verified_weights_are_present(hub, monkeypatch):
    from torchvision.models import alexnet

    hub.mkdir(parents=True)
    path = hub / lpips_module.WEIGHTS_FILE
    torch.manual_seed(0)
    torch.save(alexnet(weights=None).state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(lpips_module, "SHA256_PREFIX", digest[:8])
    lpips_module._metric.cache_clear()
    images = torch.rand(2, 1, 28, 28)
    same = image_quality(images, images)
    other = image_quality(images, torch.rand(2, 1, 28, 28))
    lpips_module._metric.cache_clear()
    assert same["lpips"] == pytest.approx([0.0, 0.0], abs=1e-6)
    assert all(v > 0 for v in other["lpips"])


@pytest.mark.parametrize("verbose", [False, True])
def test_lpips_download_without_network_falls_back_to_null_with_the_reason(
    hub, monkeypatch, capsys, caplog, verbose
):
    from torchvision.models import AlexNet_Weights

    def offline(self, *args, **kwargs):
        sys.stdout.write("Downloading: alexnet\n")  # as torch.hub announces a download
        raise OSError("Name or service not known")

    monkeypatch.setattr(type(AlexNet_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    reason = lpips_module.fetch_weights(timeout=0.1, verbose=verbose)
    assert ("Downloading: alexnet" in capsys.readouterr().out) is verbose
    assert (
        "are not in" in reason
        and "downloading it failed (OSError: Name or service not known)" in reason
    )
    with caplog.at_level(logging.WARNING):
        assert (
            lpips_module.lpips_per_image(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)) is None
        )
    (warning,) = [
        r.getMessage() for r in caplog.records if "LPIPS is recorded as null" in r.getMessage()
    ]
    assert "\n" not in warning and reason in warning
    assert warning.endswith("or set metrics.lpips_download=false to skip the download attempt.")


def test_lpips_download_puts_verified_weights_in_the_hub_cache(hub, monkeypatch):
    from torchvision.models import AlexNet_Weights

    def download(self, *args, **kwargs):
        hub.mkdir(parents=True, exist_ok=True)
        (hub / lpips_module.WEIGHTS_FILE).write_bytes(b"pretend weights")

    monkeypatch.setattr(type(AlexNet_Weights.IMAGENET1K_V1), "get_state_dict", download)
    monkeypatch.setattr(
        lpips_module, "SHA256_PREFIX", hashlib.sha256(b"pretend weights").hexdigest()[:8]
    )
    assert lpips_module.fetch_weights() is None


def test_ssim_takes_images_down_to_the_smallest_size_a_dataset_may_have(hub):
    from gradinv.metrics.image_quality import MIN_IMAGE_SIZE

    small = image_quality(
        torch.rand(1, 3, MIN_IMAGE_SIZE, MIN_IMAGE_SIZE),
        torch.rand(1, 3, MIN_IMAGE_SIZE, MIN_IMAGE_SIZE),
    )
    assert -1 <= small["ssim"][0] <= 1
    smaller = MIN_IMAGE_SIZE - 1
    with pytest.raises(RuntimeError, match="Padding size should be less than"):
        image_quality(torch.rand(1, 3, smaller, smaller), torch.rand(1, 3, smaller, smaller))
