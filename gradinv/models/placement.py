"""Where a convolutional model puts its dropout: one field shared by the grid's conv models.

The DIA authors' code holds only an MLP and a ViT, so dropout placement in gradinv's CNN and
ResNet-18 is gradinv's choice, offered both ways: ``classifier`` drops the hidden units of the
classifier only (as AlexNet and VGG place it), ``spatial`` also drops feature-map entries after
the convolutional blocks.
"""

from __future__ import annotations

from gradinv.errors import ConfigError

PLACEMENTS = ("classifier", "spatial")


def check_placement(placement: str) -> bool:
    """Whether ``placement`` puts dropout on feature maps; a wrong value stops with the field."""
    if placement not in PLACEMENTS:
        raise ConfigError(
            f"model.dropout_placement must be one of {PLACEMENTS}, got '{placement}'."
        )
    return placement == "spatial"
