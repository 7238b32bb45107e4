"""Image-quality metrics and the matching of reconstructions to originals."""

from gradinv.metrics.image_quality import image_quality

__all__ = ["image_quality"]
