"""Datasets: shipped samples, .npz archives, user folders, and victim selection."""

import numpy as np
import pytest
import torch
from PIL import Image

from gradinv.data.archive import SAMPLES
from gradinv.data.datasets import CIFAR10, MNIST, ImageFolder, ImageNet
from gradinv.errors import ConfigError
from tests.conftest import SHARED_DATA


def test_shipped_mnist_samples_are_real_digits_normalized():
    victims = MNIST(num_victims=2, batch_size=3).victims(seed=1)
    assert [tuple(v.images.shape) for v in victims] == [(3, 1, 28, 28)] * 2
    raw = np.load(SAMPLES / "mnist_sample.npz")  # the samples that ship inside the package
    first = victims[0]
    index = first.indices[0]
    pixels = MNIST.spec.denormalize(first.images[:1])
    torch.testing.assert_close(pixels[0, 0], torch.from_numpy(raw["images"][index]).float() / 255)
    assert first.labels[0].item() == raw["labels"][index]


def test_victims_follow_the_seed_or_the_given_indices():
    a = CIFAR10(num_victims=2, batch_size=2).victims(seed=3)
    b = CIFAR10(num_victims=2, batch_size=2).victims(seed=3)
    c = CIFAR10(num_victims=2, batch_size=2).victims(seed=4)
    assert [v.indices for v in a] == [v.indices for v in b] != [v.indices for v in c]
    given = CIFAR10(num_victims=2, batch_size=1, victim_indices=[5, 9]).victims(seed=0)
    assert [v.indices for v in given] == [(5,), (9,)]
    with pytest.raises(
        ConfigError, match="dataset.victim_indices must lie in \\[0, 128\\), got 500."
    ):
        CIFAR10(num_victims=1, batch_size=1, victim_indices=[500]).victims(seed=0)


def test_imagenet_loads_an_npz_archive_and_refuses_no_root(tmp_path):
    archive = tmp_path / "imagenet.npz"
    pixels = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    np.savez(archive, images=pixels, labels=np.array([7, 999]))
    victims = ImageNet(root=str(archive), num_victims=2).victims(seed=0)
    assert [tuple(v.images.shape) for v in victims] == [(1, 3, 224, 224)] * 2
    assert sorted(int(v.labels[0]) for v in victims) == [7, 999]
    with pytest.raises(ConfigError, match="dataset.root is required for dataset=imagenet"):
        ImageNet().victims(seed=0)


@pytest.mark.skipif(
    not (SHARED_DATA / "imagenet_sample.npz").is_file(),
    reason="the ImageNet sample lives in ../shared/data, which a user's clone does not have",
)
def test_the_shared_imagenet_sample_loads_when_present():
    victims = ImageNet(root=str(SHARED_DATA / "imagenet_sample.npz")).victims(seed=0)
    assert tuple(victims[0].images.shape) == (1, 3, 224, 224)


def _write_images(folder, count, size=40):
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(np.full((size, size + 8, 3), 40 * i, dtype=np.uint8)).save(
            folder / f"{i}.png"
        )


def test_folder_dataset_with_class_subfolders_and_flat(tmp_path):
    _write_images(tmp_path / "tree" / "cat", 2)
    _write_images(tmp_path / "tree" / "dog", 2)
    tree = ImageFolder(
        path=str(tmp_path / "tree"), size=16, channels=1, num_classes=2, num_victims=1, batch_size=4
    )
    victim = tree.victims(seed=0)[0]
    assert tuple(victim.images.shape) == (4, 1, 16, 16)
    assert sorted(victim.labels.tolist()) == [0, 0, 1, 1]
    _write_images(tmp_path / "flat", 3)
    flat = ImageFolder(path=str(tmp_path / "flat"), size=16, label=7, batch_size=3)
    assert flat.victims(seed=0)[0].labels.tolist() == [7, 7, 7]
    with pytest.raises(ConfigError, match="dataset.label is required"):
        ImageFolder(path=str(tmp_path / "flat"), size=16).victims(seed=0)
    with pytest.raises(ConfigError, match="dataset.path must be an existing folder"):
        ImageFolder(path=str(tmp_path / "missing"))
