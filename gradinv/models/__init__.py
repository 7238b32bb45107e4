"""Architectures of the grid and the dropout module they share."""

from gradinv.models.build import build_model
from gradinv.models.dropout import MaskedDropout, dropout_sites

__all__ = ["MaskedDropout", "build_model", "dropout_sites"]
