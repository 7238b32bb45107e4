"""The datasets of the grid; each loads real data from ``root`` or falls back to shipped samples."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision import datasets, transforms

from gradinv.data.archive import SAMPLES, load_archive
from gradinv.data.spec import DataSpec
from gradinv.data.victims import VictimBatch, select_indices
from gradinv.errors import ConfigError
from gradinv.metrics.image_quality import MIN_IMAGE_SIZE, SSIM_WINDOW

log = logging.getLogger(__name__)


class ImageDataset:
    """A labelled image source plus the fields that pick the victims' batches from it."""

    spec: DataSpec
    #: The field that points at this dataset's images, named in errors about them.
    source_field = "dataset.root"

    def __init__(
        self,
        root: str | None = None,
        download: bool = False,
        split: str = "test",
        num_victims: int = 1,
        batch_size: int = 1,
        victim_indices: list[int] | None = None,
    ) -> None:
        if split not in ("train", "test"):
            raise ConfigError(f"dataset.split must be 'train' or 'test', got '{split}'.")
        self.root = root
        self.download = download
        self.split = split
        self.num_victims = num_victims
        self.batch_size = batch_size
        self.victim_indices = victim_indices

    def load(self) -> Dataset:
        """The images as a dataset of ([0, 1] tensor C x H x W, int label) pairs."""
        if self.root is not None and str(self.root).endswith(".npz"):
            return load_archive(self.root, self.spec.channels)
        if self.root is None and not self.download:
            return self.fallback()
        root = str(self.root or "data")
        try:
            return self.from_torchvision(root)
        except (RuntimeError, OSError) as error:
            raise ConfigError(
                f"dataset.root '{root}' does not hold torchvision's {self.spec.name} files "
                f"({error}); point it at them, at an .npz archive of images and labels, "
                "or set dataset.download=true where the network allows."
            ) from None

    def fallback(self) -> Dataset:
        raise ConfigError(
            f"dataset.root is required for dataset={self.spec.name}: point it at the dataset "
            "folder or at an .npz archive of images and labels."
        )

    def from_torchvision(self, root: str) -> Dataset:
        raise NotImplementedError

    def victims(self, seed: int) -> list[VictimBatch]:
        """The victim batches, normalized for the model, in a fixed order."""
        images = self.load()
        chosen = select_indices(
            len(images),
            self.num_victims,
            self.batch_size,
            self.victim_indices,
            seed,
            self.source_field,
        )
        batches = []
        for indices in chosen:
            pairs = [images[i] for i in indices]
            batch = torch.stack([self.check_shape(image) for image, _ in pairs])
            labels = torch.as_tensor([int(label) for _, label in pairs])
            if int(labels.max()) >= self.spec.num_classes or int(labels.min()) < 0:
                raise ConfigError(
                    f"dataset.num_classes must exceed every label, got a label {int(labels.max())}."
                )
            batches.append(VictimBatch(self.spec.normalize(batch), labels, tuple(indices)))
        return batches

    def check_shape(self, image: torch.Tensor) -> torch.Tensor:
        if tuple(image.shape) != self.spec.shape:
            raise ConfigError(
                f"dataset={self.spec.name} expects images of shape {self.spec.shape}, "
                f"got {tuple(image.shape)}; check dataset.root."
            )
        return image


class _ShippedSamples(ImageDataset):
    """A dataset that serves the real samples shipped in the package when no root is given."""

    sample_file: str

    def fallback(self) -> Dataset:
        log.info(
            "dataset.root is not set: using the %s samples shipped with gradinv (%s).",
            self.spec.name,
            self.sample_file,
        )
        return load_archive(SAMPLES / self.sample_file, self.spec.channels)


class MNIST(_ShippedSamples):
    """MNIST handwritten digits, 1 x 28 x 28, 10 classes."""

    spec = DataSpec("mnist", 1, 28, 10, (0.1307,), (0.3081,))
    sample_file = "mnist_sample.npz"

    def from_torchvision(self, root: str) -> Dataset:
        return datasets.MNIST(
            root,
            train=self.split == "train",
            download=self.download,
            transform=transforms.ToTensor(),
        )


class CIFAR10(_ShippedSamples):
    """CIFAR-10 natural images, 3 x 32 x 32, 10 classes."""

    spec = DataSpec("cifar10", 3, 32, 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    sample_file = "cifar10_sample.npz"

    def from_torchvision(self, root: str) -> Dataset:
        return datasets.CIFAR10(
            root,
            train=self.split == "train",
            download=self.download,
            transform=transforms.ToTensor(),
        )


class ImageNet(ImageDataset):
    """ImageNet (ILSVRC 2012), resized to 256 and center-cropped to 3 x 224 x 224, 1000 classes."""

    spec = DataSpec("imagenet", 3, 224, 1000, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    def from_torchvision(self, root: str) -> Dataset:
        if self.download:
            raise ConfigError(
                "dataset.download is not possible for dataset=imagenet: torchvision cannot "
                "download ImageNet; set dataset.root to your copy."
            )
        return datasets.ImageNet(
            root,
            split="train" if self.split == "train" else "val",
            transform=transforms.Compose(
                [transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()]
            ),
        )


class ImageFolder(ImageDataset):
    """A researcher's own images: class sub-folders, or a flat folder with one ``label``."""

    source_field = "dataset.path"

    def __init__(
        self,
        path: str | None = None,
        size: int = 32,
        channels: int = 3,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        num_classes: int = 10,
        label: int | None = None,
        **fields,
    ) -> None:
        super().__init__(**fields)
        if path is None:
            raise ConfigError(
                "dataset.path is required for dataset=folder: set it to a folder of images."
            )
        if not Path(path).is_dir():
            raise ConfigError(f"dataset.path must be an existing folder, got '{path}'.")
        if channels not in (1, 3):
            raise ConfigError(f"dataset.channels must be 1 or 3, got {channels}.")
        if size < MIN_IMAGE_SIZE:
            raise ConfigError(
                f"dataset.size must be at least {MIN_IMAGE_SIZE} pixels, the smallest image SSIM's "
                f"{SSIM_WINDOW}-pixel window takes, got {size}."
            )
        mean = list(mean) if mean is not None else [0.5] * channels
        std = list(std) if std is not None else [0.5] * channels
        if len(mean) != channels or len(std) != channels:
            raise ConfigError(
                f"dataset.mean and dataset.std must list {channels} values, one per channel."
            )
        if label is not None and not 0 <= label < num_classes:
            raise ConfigError(f"dataset.label must lie in [0, {num_classes}), got {label}.")
        self.path = Path(path)
        self.label = label
        self.spec = DataSpec("folder", channels, size, num_classes, tuple(mean), tuple(std))

    def load(self) -> Dataset:
        steps = [transforms.Resize(self.spec.size), transforms.CenterCrop(self.spec.size)]
        if self.spec.channels == 1:
            steps.append(transforms.Grayscale(1))
        transform = transforms.Compose([*steps, transforms.ToTensor()])
        has_classes = any(entry.is_dir() for entry in self.path.iterdir())
        if has_classes:
            if self.label is not None:
                raise ConfigError(
                    "dataset.label applies to a flat folder only: dataset.path has class "
                    "sub-folders, whose sorted names are the labels; remove dataset.label."
                )
            return datasets.ImageFolder(str(self.path), transform=transform, loader=_rgb)
        if self.label is None:
            raise ConfigError(
                "dataset.label is required when dataset.path is a flat folder of images "
                "(without class sub-folders)."
            )
        return _FlatFolder(self.path, transform, self.label)


def _rgb(path: str):
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError as error:  # PIL's UnidentifiedImageError and truncated files are OSErrors
        raise ConfigError(
            f"dataset.path holds an image that cannot be read, '{path}' ({error}); "
            "remove or replace it."
        ) from None


class _FlatFolder(Dataset):
    """Every image file directly inside a folder, all with one label."""

    def __init__(self, folder: Path, transform, label: int) -> None:
        self.files = sorted(
            p for p in folder.iterdir() if p.suffix.lower() in datasets.folder.IMG_EXTENSIONS
        )
        if not self.files:
            raise ConfigError(f"dataset.path '{folder}' holds no image files.")
        self.transform = transform
        self.label = label

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        return self.transform(_rgb(str(self.files[index]))), self.label
